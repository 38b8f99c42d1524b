#!/usr/bin/env bash
# tests/e2e/outbound.sh: outbound mail through authenticated submission.
#
# The private Postfix gets a submission listener (STARTTLS required, SASL
# PLAIN via a Cyrus sasldb, milter_macro_daemon_name=ORIGINATING); the milter
# runs with domains=["agency.govt.nz"]. Clients connect from 127.0.0.2, which
# is not an internal network: only the SASL login makes the mail outbound.
#
#   a. alice (login "alice") sends From: alice@agency.govt.nz to
#      someone@partner.example: 250, the decision is outbound with
#      {auth_authen}=alice@agency.govt.nz and {daemon_name}=ORIGINATING, and
#      the message arrives once with X-NZ-Secure-email: compliant;
#      classification="UNCLASSIFIED"; profile=sge; gateway=...
#   b. the same with the login "alice@agency.govt.nz": accepted too.
#   c. alice sends From: bob@agency.govt.nz: 550 5.7.1 ... (R66).
#   d. alice sends a message without From:: 550 5.7.1 ... (R65).
#   e. the submission port: a wrong password gets 535, no login gets no
#      relaying (5.7.1 at RCPT).
#   f. alice's message to the ping address ping@agency.govt.nz is consumed
#      and answered (R96); the answer, submitted by the milter with
#      "sendmail -C" into the private Postfix, reaches the sink.
#   all: nothing refused reaches the sink; the queue ends empty.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init outbound
DOMAIN=agency.govt.nz
TO=someone@partner.example
EXPECT_ONE=()
EXPECT_NONE=()

# auth_msg LOGIN ID [SWAKS ARGS...]: alice's message with X-Test-Id ID.
auth_msg() {
	local login=$1 id=$2
	shift 2
	send_auth "$login" "$ALICE_PASS" --from "alice@$DOMAIN" --to "$TO" \
		--header "Subject: e2e outbound $id" --add-header "X-Test-Id: $id" "$@"
}

ALICE_PASS=alice-secret-1
# Whatever the milter looks up stays on loopback (start_milter uses DNS_ADDR).
cat >"$WORK/zone" <<EOF
; outbound.sh (tests/e2e/dnsd). Other names: NXDOMAIN.
$DOMAIN. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]"
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id_a=$(unique_id)
rc=0
auth_msg alice "$id_a" || rc=$?
if ((rc == 0)) && accepted; then
	pass "a: alice (SASL login \"alice\") sending From: alice@$DOMAIN accepted (250)"
	EXPECT_ONE+=("$id_a")
else
	fail "a: alice sending From: alice@$DOMAIN accepted (swaks exit $rc: $(last_reply))" "$SEND_OUT"
fi
decision_for "$(queue_id)" >"$WORK/a.decision" || true
auth_a=$(grep -o '"auth":"[^"]*"' "$WORK/a.decision" | head -n 1 | sed 's/^"auth":"//; s/"$//')
assert_eq "alice@$DOMAIN" "$auth_a" "a: the milter got {auth_authen}=alice@$DOMAIN"
assert_contains "$WORK/a.decision" '"direction":"outbound"' "a: decision is outbound (client 127.0.0.2 is not internal: the SASL login made it so)"
assert_contains "$WORK/a.decision" '"daemon":"ORIGINATING"' "a: the milter got {daemon_name}=ORIGINATING"
assert_contains "$WORK/a.decision" '"action":"accept"' "a: decision action=accept"
if wait_id "$id_a" 20; then
	f=$(sink_grep "^X-Test-Id: $id_a\$" | head -n 1)
	sink_headers "$f" >"$WORK/a.headers"
	assert_eq 1 "$(id_count "$id_a")" "a: delivered to the sink exactly once"
	assert_contains "$WORK/a.headers" \
		'^X-NZ-Secure-email: compliant; classification="UNCLASSIFIED"; profile=sge; gateway=[^;[:space:]]+$' \
		"a: X-NZ-Secure-email: compliant; classification=\"UNCLASSIFIED\"; profile=sge; gateway=... ($(grep -m1 '^X-NZ-Secure-email:' "$WORK/a.headers" | sed 's/.*gateway=/gateway=/'))"
	assert_eq 1 "$(grep -c '^X-NZ-Secure-email:' "$WORK/a.headers")" "a: exactly one X-NZ-Secure-email header"
	assert_contains "$WORK/a.headers" 'with ESMTPSA ' "a: Received header shows authenticated TLS submission (ESMTPSA)"
else
	fail "a: message $id_a reached the sink"
fi

# ------------------------------------------------------------------ b
id_b=$(unique_id)
rc=0
auth_msg "alice@$DOMAIN" "$id_b" || rc=$?
if ((rc == 0)) && accepted; then
	pass "b: SASL login \"alice@$DOMAIN\" sending From: alice@$DOMAIN accepted (250)"
	EXPECT_ONE+=("$id_b")
else
	fail "b: SASL login \"alice@$DOMAIN\" accepted (swaks exit $rc: $(last_reply))" "$SEND_OUT"
fi
decision_for "$(queue_id)" >"$WORK/b.decision" || true
assert_contains "$WORK/b.decision" "\"auth\":\"alice@$DOMAIN\"" "b: the same {auth_authen}=alice@$DOMAIN"

# ------------------------------------------------------------------ c
id_c=$(unique_id)
EXPECT_NONE+=("$id_c")
rc=0
auth_msg alice "$id_c" --header "From: Bob <bob@$DOMAIN>" || rc=$?
reply=$(last_reply)
if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.1\ .*\(R66\)$ ]]; then
	pass "c: alice sending From: bob@$DOMAIN refused after DATA: $reply"
else
	fail "c: alice sending From: bob@$DOMAIN refused with 550 5.7.1 ... (R66) (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi
if [[ $reply == *"bob@$DOMAIN"* ]]; then
	pass "c: the refusal names the From: address"
else
	fail "c: the refusal names the From: address: '$reply'"
fi
if grep '"action":"reject"' "$WORK/milter.log" | grep -F "\"auth\":\"alice@$DOMAIN\"" | grep -q 'R66'; then
	pass "c: milter logged the R66 refusal with the SASL user"
else
	fail "c: milter logged the R66 refusal with the SASL user"
fi

# ------------------------------------------------------------------ d
id_d=$(unique_id)
EXPECT_NONE+=("$id_d")
printf '%s\r\n' "To: <$TO>" "Subject: e2e outbound $id_d (no From:)" "X-Test-Id: $id_d" \
	"Date: $(date -R)" "Message-ID: <$id_d@client.e2e.test>" "" "A message without a From: header." \
	>"$WORK/nofrom.eml"
rc=0
send_auth alice "$ALICE_PASS" --from "alice@$DOMAIN" --to "$TO" --data "$WORK/nofrom.eml" || rc=$?
reply=$(last_reply)
if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.1\ .*\(R65\)$ ]]; then
	pass "d: message without From: refused after DATA: $reply"
else
	fail "d: message without From: refused with 550 5.7.1 ... (R65) (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ e
id_e1=$(unique_id)
EXPECT_NONE+=("$id_e1")
rc=0
send_auth alice wrong-password --from "alice@$DOMAIN" --to "$TO" --add-header "X-Test-Id: $id_e1" || rc=$?
reply=$(last_reply)
if ((rc == 28)) && [[ $reply =~ ^535[\ -]5\.7\.8 ]]; then
	pass "e: wrong password refused: $reply"
else
	fail "e: wrong password refused with 535 5.7.8 (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi
id_e2=$(unique_id)
EXPECT_NONE+=("$id_e2")
SEND_SEQ=$((SEND_SEQ + 1))
SEND_OUT=$WORK/send-$SEND_SEQ.txt
rc=0
swaks --server "$SERVER_IP" --port "$SUBMISSION_PORT" --local-interface "$CLIENT_IP" --ehlo client.e2e.test \
	--timeout 30 --suppress-data --tls --from "alice@$DOMAIN" --to "$TO" --add-header "X-Test-Id: $id_e2" \
	>"$SEND_OUT" 2>&1 || rc=$?
reply=$(last_reply)
if ((rc == 24)) && [[ $reply =~ ^5[0-9][0-9][\ -]5\.7\.1\  ]]; then
	pass "e: submission without login: no relaying ($reply)"
else
	fail "e: submission without login refused at RCPT with 5.7.1 (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ f
# Mail the milter generates goes through "sendmail -C" into the private
# Postfix (lib.sh start_milter), which relays it to the sink.
id_f=$(unique_id)
EXPECT_NONE+=("$id_f")
rc=0
send_auth alice "$ALICE_PASS" --from "alice@$DOMAIN" --to "ping@$DOMAIN" \
	--header "Subject: e2e ping $id_f" --add-header "X-Test-Id: $id_f" || rc=$?
if ((rc == 0)) && accepted; then
	pass "f: message to the ping address ping@$DOMAIN accepted"
else
	fail "f: message to the ping address ping@$DOMAIN accepted (swaks exit $rc: $(last_reply))" "$SEND_OUT"
fi
ping_reply() { sink_grep "^Subject: PING REPLY: e2e ping $id_f\$" >/dev/null; }
if wait_until 30 ping_reply; then
	f=$(sink_grep "^Subject: PING REPLY: e2e ping $id_f\$" | head -n 1)
	pass "f: the ping reply reached the sink through the private Postfix (notify.sendmail)"
	assert_contains "$f" "^X-Rcpt-Args: <alice@$DOMAIN>" "f: the ping reply went to the sender alice@$DOMAIN"
else
	fail "f: a ping reply (Subject: PING REPLY: ...) reached the sink within 30s"
fi

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled

stop_milter
e2e_finish
