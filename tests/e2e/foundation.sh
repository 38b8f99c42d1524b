#!/usr/bin/env bash
# tests/e2e/foundation.sh: the "foundation" scenarios through a real Postfix.
#
#   a. TLS message from the internet: accepted, delivered once, X-Test-Id and
#      Subject intact, the client's forged X-NZ-Secure-email removed from
#      the header section (R60) and warning 002 added (R76).
#   b. Plaintext message from the internet: 5xx with 5.7.10 at MAIL FROM
#      (profile sge requires TLS >= 1.2 inbound); nothing delivered.
#   c. Milter killed (SIGKILL): Postfix's milter_default_action=tempfail gives
#      4xx; mail already queued is still delivered; after a restart the same
#      message is accepted; every message id arrives exactly once.
#   d. SIGTERM while a transaction is in flight: the transaction completes
#      (accepted, or a clean 4xx that is then retried), the milter exits 0.
#   e. SIGHUP with an invalid policy file: errors logged, old policy kept;
#      SIGHUP with a valid seemail policy: plaintext now accepted.
#
# The milter resolves through the loopback test DNS server (tests/e2e/dnsd):
# sender.example publishes an SPF record that passes the test client
# 127.0.0.2, so these messages come from a well-behaved internet sender.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init foundation
e2e_need perl
perl -MNet::SMTP -MIO::Socket::SSL -e 1 || {
	echo "foundation: slow-smtp.pl needs IO::Socket::SSL (libio-socket-ssl-perl)" >&2
	exit 1
}

DOMAINS='domains=["agency.govt.nz"]'
FROM=sender@sender.example
TO=user@agency.govt.nz
EXPECT_ONE=() # X-Test-Ids that must be at the sink exactly once at the end
EXPECT_NONE=() # X-Test-Ids that must never reach the sink

# send_msg ID [SWAKS ARGS...]: a message from the internet with X-Test-Id ID.
send_msg() {
	local id=$1
	shift
	send --from "$FROM" --to "$TO" --header "Subject: e2e $id" \
		--add-header "X-Test-Id: $id" "$@"
}

# id_count ID: how many complete messages at the sink carry X-Test-Id ID.

# wait_id ID [TIMEOUT]: wait until the message with ID is at the sink.


# refused_4xx: the transcript shows a 4xx reply and no acceptance.
refused_4xx() {
	grep -Eq '^ *<\*\* +4[0-9][0-9][ -]' "$SEND_OUT" && ! accepted &&
		! grep -Eq '^ *<\*\* +5[0-9][0-9][ -]' "$SEND_OUT"
}

cat >"$WORK/zone" <<'EOF'
; foundation.sh: the sender's domain (tests/e2e/dnsd). Other names: NXDOMAIN.
sender.example. 300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "$DOMAINS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id_a=$(unique_id)
rc=0
send_msg "$id_a" --tls --add-header "X-NZ-Secure-email: forged" || rc=$?
if ((rc == 0)) && accepted; then
	pass "a: TLS message from the internet accepted (250)"
	EXPECT_ONE+=("$id_a")
else
	fail "a: TLS message from the internet accepted (swaks exit $rc)" "$SEND_OUT"
fi
# The milter logs one JSON line per decision, keyed by Postfix's queue ID.
qid=$(grep -Eo 'queued as [0-9A-Za-z]+' "$SEND_OUT" | awk '{print $3}' | tail -n 1)
grep -F "\"queue_id\":\"${qid:-none}\"" "$WORK/milter.log" >"$WORK/a.decision" || true
assert_contains "$WORK/a.decision" '"queue_id"' "a: milter logged the decision for queue id ${qid:-?}"
if grep -q '"action":"accept"' "$WORK/a.decision" && grep -q '"direction":"inbound"' "$WORK/a.decision" &&
	grep -q '"reasons":' "$WORK/a.decision"; then
	pass "a: decision log line has action=accept, direction=inbound, reasons"
else
	fail "a: decision log line has action=accept, direction=inbound, reasons" "$WORK/a.decision"
fi
if wait_id "$id_a" 20; then
	f=$(sink_grep "^X-Test-Id: $id_a\$" | head -n 1)
	sink_headers "$f" >"$WORK/a.headers"
	assert_eq 1 "$(id_count "$id_a")" "a: delivered to the sink exactly once"
	assert_contains "$WORK/a.headers" "^X-Test-Id: $id_a\$" "a: X-Test-Id intact"
	assert_contains "$WORK/a.headers" "^Subject: e2e $id_a\$" "a: Subject intact"
	assert_contains "$WORK/a.headers" "using TLSv1\.[23] " "a: received over TLS >= 1.2 (Received header)"
	# R60 is about the delivered message's header section; with
	# warning_mode "wrap" the original (as received) is attached below.
	if grep -Eiq '^X-NZ-Secure-email:' "$WORK/a.headers"; then
		fail "a: client-supplied X-NZ-Secure-email header removed (R60)" "$f"
	else
		pass "a: client-supplied X-NZ-Secure-email header removed (R60)"
	fi
	# R76: unverified mail that carried X-NZ-Secure-email gets the
	# UNVERIFIED warning (code 002).
	assert_contains "$WORK/a.headers" '^X-NZ-Secure-Warning: 002 ' \
		"a: it carried an unverified X-NZ-Secure-email: warning 002 (R76)"
else
	fail "a: message $id_a reached the sink"
fi

# ------------------------------------------------------------------ b
id_b=$(unique_id)
EXPECT_NONE+=("$id_b")
rc=0
send_msg "$id_b" || rc=$?
reply=$(reply_to "MAIL FROM" "$SEND_OUT" | tail -n 1)
if ((rc == 23)) && [[ $reply =~ ^5[0-9][0-9][\ -]5\.7\.10[\ ] ]]; then
	pass "b: plaintext refused at MAIL FROM with 5xx 5.7.10 ($reply)"
else
	fail "b: plaintext refused at MAIL FROM with 5xx 5.7.10 (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi
if [[ $reply =~ [Tt][Ll][Ss] ]]; then
	pass "b: the refusal says why (mentions TLS)"
else
	fail "b: the refusal says why (mentions TLS): '$reply'"
fi
if grep '"action":"reject"' "$WORK/milter.log" | grep '"direction":"inbound"' | grep -q '"reasons":\[".*TLS'; then
	pass "b: milter logged the refusal (action=reject, direction=inbound, reasons)"
else
	fail "b: milter logged the refusal (action=reject, direction=inbound, reasons)"
fi

# ------------------------------------------------------------------ c
# A message is queued while the sink is down (milter up), then the milter is
# SIGKILLed: new mail gets 4xx, the queued one is still delivered.
stop_sink
id_q=$(unique_id)
rc=0
send_msg "$id_q" --tls || rc=$?
if ((rc == 0)) && accepted; then
	pass "c: message accepted while the sink is down (queued)"
	EXPECT_ONE+=("$id_q")
else
	fail "c: message accepted while the sink is down (swaks exit $rc)" "$SEND_OUT"
fi
check "c: message waits in Postfix's queue" wait_until 10 pf_queue_nonempty

kill_milter
id_m=$(unique_id)
rc=0
send_msg "$id_m" --tls || rc=$?
if ((rc != 0)) && refused_4xx; then
	pass "c: milter down: TLS message gets 4xx ($(grep -Eo '^ *<\*\* +4[0-9][0-9].*' "$SEND_OUT" | head -n 1 | sed 's/^ *<\*\* *//'))"
else
	fail "c: milter down: TLS message gets 4xx (swaks exit $rc)" "$SEND_OUT"
fi

start_sink
pf_postqueue -f >/dev/null 2>&1 || true
if wait_id "$id_q" 20; then
	pass "c: queued message delivered while the milter is down"
else
	fail "c: queued message delivered while the milter is down"
fi
check "c: the 4xx message did not reach the sink" test "$(id_count "$id_m")" = 0

start_milter --set "$DOMAINS"
rc=0
send_msg "$id_m" --tls || rc=$?
if ((rc == 0)) && accepted; then
	pass "c: milter restarted: the same message is accepted"
	EXPECT_ONE+=("$id_m")
else
	fail "c: milter restarted: the same message is accepted (swaks exit $rc)" "$SEND_OUT"
fi
if wait_id "$id_m" 20 && pf_queue_wait_empty 20; then
	n_a=$(id_count "$id_a") n_q=$(id_count "$id_q") n_m=$(id_count "$id_m")
	assert_eq "1 1 1" "$n_a $n_q $n_m" "c: exactly one copy of each message at the sink (a, queued, resent)"
else
	fail "c: resent message delivered and queue drained"
fi

# ------------------------------------------------------------------ d
# Postfix talks to the milter at connect, HELO, MAIL and RCPT, then hands the
# milter connection to cleanup, which sends headers, body and end-of-message
# once the client's "." has arrived. slow-smtp.pl stops halfway through DATA,
# so SIGTERM reaches the milter with a transaction open on it; then the
# client sends the rest. This is deterministic: no timing race, the signal is
# sent only once the client reports it is inside DATA. The transaction must
# end either accepted or with a clean 4xx (then retried after a restart), and
# the milter must exit 0 once it is over.
id_d=$(unique_id)
ctl=$WORK/inflight
mkdir -p "$ctl"
perl "$E2E_DIR/slow-smtp.pl" --port "$SMTP_PORT" --server "$SERVER_IP" --local "$CLIENT_IP" \
	--tls --from "$FROM" --to "$TO" --id "$id_d" --ctl "$ctl" --wait 30 \
	>"$WORK/inflight.out" 2>&1 &
client=$!
e2e_track "$client"
if wait_until 20 test -e "$ctl/in-data"; then
	pass "d: client inside DATA with a transaction open on the milter"
else
	fail "d: client inside DATA with a transaction open on the milter" "$WORK/inflight.out"
fi
milter_pid=$MILTER_PID
log_lines=$(wc -l <"$WORK/milter.log")
milter_signal TERM
sleep 0.5
touch "$ctl/go"
client_rc=0
if wait_pid_exit "$client" 40; then
	wait "$client" || client_rc=$?
else
	client_rc=timeout
fi
reply=$(cat "$ctl/reply" 2>/dev/null || true)
case $client_rc in
0)
	pass "d: in-flight transaction completed after SIGTERM: accepted ($reply)"
	EXPECT_ONE+=("$id_d")
	;;
4)
	pass "d: in-flight transaction ended cleanly with 4xx after SIGTERM ($reply)"
	;;
*)
	fail "d: in-flight transaction completed after SIGTERM (client exit $client_rc, reply '$reply')" "$WORK/inflight.out"
	;;
esac
# Shows the test held a transaction open on the milter when it got SIGTERM.
if tail -n +"$((log_lines + 1))" "$WORK/milter.log" | grep -q '"in_flight":[1-9]'; then
	pass "d: milter reported the transaction in flight at SIGTERM"
else
	fail "d: milter reported the transaction in flight at SIGTERM"
fi
if wait_pid_exit "$milter_pid" 30; then
	MILTER_EXIT=0
	wait "$milter_pid" || MILTER_EXIT=$?
	MILTER_PID=
	assert_eq 0 "$MILTER_EXIT" "d: milter exited 0 after SIGTERM once the transaction was over"
else
	fail "d: milter exited after SIGTERM (still running 30s later)"
	kill_milter
fi
start_milter --set "$DOMAINS"
if [[ $client_rc == 4 ]]; then
	# The client was told to try again later: do so, like an MTA would.
	rc=0
	send_msg "$id_d" --tls || rc=$?
	if ((rc == 0)) && accepted; then
		pass "d: the deferred message is accepted on retry"
		EXPECT_ONE+=("$id_d")
	else
		fail "d: the deferred message is accepted on retry (swaks exit $rc)" "$SEND_OUT"
	fi
fi
if wait_id "$id_d" 20; then
	assert_eq 1 "$(id_count "$id_d")" "d: the in-flight message is at the sink exactly once"
else
	fail "d: the in-flight message reached the sink"
fi

# ------------------------------------------------------------------ e
stop_milter
check "e: milter stopped with SIGTERM exits 0" test "$MILTER_EXIT" = 0
POLICY=$WORK/policy.toml
printf '%s\n' 'profile = "sge"' 'domains = ["agency.govt.nz"]' >"$POLICY"
if "$NZBIN" lint "$POLICY" >"$WORK/lint-valid.out" 2>&1; then
	pass "e: lint accepts the valid sge policy"
else
	fail "e: lint accepts the valid sge policy" "$WORK/lint-valid.out"
fi
start_milter --policy "$POLICY"

printf '%s\n' 'profile = "nope"' 'domains = ["agency.govt.nz"]' 'no_such_key = 1' >"$WORK/bad.toml"
rc=0
"$NZBIN" lint "$WORK/bad.toml" >"$WORK/lint-bad.out" 2>&1 || rc=$?
assert_eq 1 "$rc" "e: lint exits 1 on an invalid policy file"

cp "$WORK/bad.toml" "$POLICY"
log_lines=$(wc -l <"$WORK/milter.log")
milter_signal HUP
new_log() { tail -n +"$((log_lines + 1))" "$WORK/milter.log"; }
refused_logged() { new_log | grep -q 'reload refused'; }
if wait_until 10 refused_logged; then
	pass "e: SIGHUP with an invalid policy: reload refused and logged"
else
	fail "e: SIGHUP with an invalid policy: reload refused and logged"
fi
new_log >"$WORK/hup-bad.log"
assert_contains "$WORK/hup-bad.log" 'nope' "e: the log names the bad profile value"
assert_contains "$WORK/hup-bad.log" 'no_such_key' "e: the log names the unknown key (every error is logged)"
check "e: milter still running after the bad reload" pid_alive "$MILTER_PID"

id_e1=$(unique_id)
rc=0
send_msg "$id_e1" --tls || rc=$?
if ((rc == 0)) && accepted; then
	pass "e: old policy in force: TLS message accepted"
	EXPECT_ONE+=("$id_e1")
else
	fail "e: old policy in force: TLS message accepted (swaks exit $rc)" "$SEND_OUT"
fi
id_e2=$(unique_id)
EXPECT_NONE+=("$id_e2")
rc=0
send_msg "$id_e2" || rc=$?
reply=$(reply_to "MAIL FROM" "$SEND_OUT" | tail -n 1)
if ((rc == 23)) && [[ $reply =~ ^5[0-9][0-9][\ -]5\.7\.10[\ ] ]]; then
	pass "e: old policy in force: plaintext still refused with 5.7.10"
else
	fail "e: old policy in force: plaintext still refused with 5.7.10 (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi

# seemail turns smime.mode on (issue 14): its peer store and CRL cache
# stay in the work directory, not in /var/lib.
printf '%s\n' 'profile = "seemail"' 'domains = ["agency.govt.nz"]' '[smime]' "peers = \"$WORK/peers\"" "crl_dir = \"$WORK/crl\"" >"$POLICY"
log_lines=$(wc -l <"$WORK/milter.log")
milter_signal HUP
reloaded_logged() { new_log | grep -q '"policy reloaded".*"profile":"seemail"'; }
if wait_until 10 reloaded_logged; then
	pass "e: SIGHUP with a valid seemail policy: reloaded (logged)"
else
	fail "e: SIGHUP with a valid seemail policy: reloaded (logged)"
fi
id_e3=$(unique_id)
rc=0
send_msg "$id_e3" || rc=$?
if ((rc == 0)) && accepted; then
	pass "e: new policy in force: plaintext now accepted"
	EXPECT_ONE+=("$id_e3")
else
	fail "e: new policy in force: plaintext now accepted (swaks exit $rc)" "$SEND_OUT"
fi

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled

stop_milter
e2e_finish
