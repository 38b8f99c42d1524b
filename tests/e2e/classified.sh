#!/usr/bin/env bash
# tests/e2e/classified.sh: classified mail in and out (issues 4 and 7):
# M-IN, M-OUT, R110, R111, R113, R115, G-DLP, through a real Postfix.
#
# The milter runs under the default sge profile with domains=
# ["agency.govt.nz"] and outbound.secure_domains=["secure.example"];
# alice submits on the SASL submission port (outbound), the internet
# client is 127.0.0.2 (inbound, STARTTLS).
#
#   a. inbound "[RESTRICTED]" in the Subject from sender@sender.example (an
#      internet sender, SPF pass): delivered with X-NZ-Secure-Warning: 004,
#      wrapped (warning_mode "wrap"): a multipart/mixed message, the Table 2
#      text "UNVERIFIED MESSAGE" first and the original as message/rfc822
#      (M-IN, Table 3 004).
#   b. alice sends "[IN-CONFIDENCE]" in a base64 body (not in the Subject, not
#      in the raw text: the scanner must decode) to user@secure.example:
#      delivered, X-NZ-Secure-email: ...; classification="IN-CONFIDENCE"
#      (R115, M-OUT: secure-only).
#   c. the same to user@gmail.example only: 550 5.7.1 Message classified
#      [IN-CONFIDENCE] refused ... (R115, G-DLP).
#   d. the same to user@secure.example and user@gmail.example: 250, only
#      the secure.example copy at the sink (gmail.example removed,
#      outbound.partial = "split"), and alice gets a NON DELIVERY REPORT at
#      the sink naming user@gmail.example (R74, M-OUT).
#   e. "[SECRET]" to user@secure.example: 250 but HELD (postqueue -p shows
#      "QUEUEID!"), not at the sink; the administrator notice reaches
#      postmaster@agency.govt.nz; postsuper -H releases it and it is
#      delivered exactly once (R110).
#   R113: the milter log has an "audit: classified mail breach attempt" line
#      for each of c, d and e.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init classified
DOMAIN=agency.govt.nz
ADMIN=postmaster@$DOMAIN
ALICE=alice@$DOMAIN
ALICE_PASS=alice-secret-4
SECURE=user@secure.example
GMAIL=user@gmail.example
EXPECT_ONE=()
EXPECT_NONE=()

# classified_eml FILE ID SUBJECT WORD RCPT...: alice's message, its body
# base64 (so the marking is not in the raw text), the marking WORD inside.
classified_eml() {
	local file=$1 id=$2 subject=$3 word=$4 to
	shift 4
	to=$(printf '<%s>, ' "$@")
	to=${to%, }
	{
		printf '%s\r\n' "From: Alice <$ALICE>" "To: $to" "Subject: $subject" "X-Test-Id: $id" \
			"Date: $(date -R)" "Message-ID: <$id@client.e2e.test>" "MIME-Version: 1.0" \
			"Content-Type: text/plain; charset=utf-8" "Content-Transfer-Encoding: base64" ""
		printf 'Kia ora,\r\n\r\nThis note is %s and for the named recipients only.\r\n' "$word" |
			base64 -w 76 | sed 's/$/\r/'
	} >"$file"
}
# first_body_line FILE: the first line of a message's (base64) body, as an
# extended regexp that matches it literally.
first_body_line() { sed '1,/^\r\{0,1\}$/d' "$1" | head -n 1 | tr -d '\r' | sed 's/[][\.*^$+?(){}|]/\\&/g'; }
# send_classified ID SUBJECT WORD RCPT...: alice submits it.
send_classified() {
	local id=$1 subject=$2 word=$3
	shift 3
	local rcpts
	# swaks takes one --to, a comma-separated list (a second --to replaces it).
	rcpts=$(IFS=,; echo "$*")
	classified_eml "$WORK/$id.eml" "$id" "$subject" "$word" "$@"
	send_auth alice "$ALICE_PASS" --from "$ALICE" --to "$rcpts" --data "$WORK/$id.eml"
}

e2e_need python3 base64
cat >"$WORK/zone" <<EOF
; classified.sh (tests/e2e/dnsd). The test client is 127.0.0.2. Other
; names: NXDOMAIN.
sender.example.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
$DOMAIN.          300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]" --set 'outbound.secure_domains=["secure.example"]'
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id_a=$(unique_id)
rc=0
send --tls --from sender@sender.example --to "user@$DOMAIN" --header "Subject: [RESTRICTED] e2e classified $id_a" \
	--add-header "X-Test-Id: $id_a" --body "Original text of $id_a." || rc=$?
expect_accepted "$rc" "$id_a" "a (M-IN): inbound [RESTRICTED] from an internet sender accepted (250)" "a (M-IN): inbound [RESTRICTED] accepted"
if wait_id "$id_a" 20; then
	f=$(sink_grep "^X-Test-Id: $id_a\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/a.headers"
	assert_contains "$WORK/a.headers" '^X-NZ-Secure-Warning: 004 ' "a (M-IN): X-NZ-Secure-Warning: 004 (Table 3: trigger word from a non-Participating Agency)"
	assert_contains "$WORK/a.headers" '^Content-Type: multipart/mixed' "a (M-IN): wrapped: the delivered message is multipart/mixed"
	sink_body "$f" >"$WORK/a.body"
	assert_contains "$WORK/a.body" 'UNVERIFIED MESSAGE' "a (M-IN, R78): the warning part has the Table 2 text UNVERIFIED MESSAGE"
	assert_contains "$WORK/a.body" '^Content-Type: message/rfc822' "a (M-IN): the original is attached as message/rfc822"
	assert_contains "$WORK/a.body" "Original text of $id_a\\." "a (M-IN): the original text is inside, unchanged"
	if awk '/UNVERIFIED MESSAGE/ { w = NR } /^Content-Type: message\/rfc822/ { r = NR } END { exit !(w && r && w < r) }' "$WORK/a.body"; then
		pass "a (M-IN): the warning comes first, the original after it"
	else
		fail "a (M-IN): the warning comes first, the original after it" "$WORK/a.body"
	fi
else
	fail "a (M-IN): message $id_a reached the sink"
fi

# ------------------------------------------------------------------ b
id_b=$(unique_id)
rc=0
send_classified "$id_b" "e2e classified $id_b" "[IN-CONFIDENCE]" "$SECURE" || rc=$?
if grep -q 'IN-CONFIDENCE' "$WORK/$id_b.eml"; then
	fail "b: test setup: the marking must not be readable in the raw message" "$WORK/$id_b.eml"
fi
expect_accepted "$rc" "$id_b" "b (R115, M-OUT): [IN-CONFIDENCE] (in a base64 body) to $SECURE accepted (250)" "b (R115, M-OUT): [IN-CONFIDENCE] to $SECURE accepted"
if wait_id "$id_b" 20; then
	f=$(sink_grep "^X-Test-Id: $id_b\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/b.headers"
	assert_contains "$WORK/b.headers" '^X-NZ-Secure-email: compliant; classification="IN-CONFIDENCE"; profile=sge; ' \
		"b (R60, R115): delivered tagged X-NZ-Secure-email: compliant; classification=\"IN-CONFIDENCE\" (found in the decoded base64 body)"
	assert_contains "$WORK/b.headers" "^X-Rcpt-Args: <$SECURE>" "b (R115): delivered to $SECURE"
else
	fail "b (R115): message $id_b reached the sink"
fi

# ------------------------------------------------------------------ c
id_c=$(unique_id)
EXPECT_NONE+=("$id_c")
n0=$(audit_count)
rc=0
send_classified "$id_c" "e2e classified $id_c" "[IN-CONFIDENCE]" "$GMAIL" || rc=$?
reply=$(last_reply)
if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.1\ Message\ classified\ \[IN-CONFIDENCE\]\ refused ]]; then
	pass "c (R115, G-DLP): [IN-CONFIDENCE] to $GMAIL only refused after DATA: $reply"
else
	fail "c (R115, G-DLP): refused with 550 5.7.1 Message classified [IN-CONFIDENCE] refused (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi
if [[ $reply == *gmail.example* ]]; then
	pass "c (R115): the refusal names the recipient"
else
	fail "c (R115): the refusal names the recipient: '$reply'"
fi
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/c.audit"
assert_contains "$WORK/c.audit" '"classification":"IN-CONFIDENCE"' "c (R113): audit: classified mail breach attempt logged (IN-CONFIDENCE)"

# ------------------------------------------------------------------ d
id_d=$(unique_id)
n0=$(audit_count)
rc=0
send_classified "$id_d" "e2e classified $id_d" "[IN-CONFIDENCE]" "$SECURE" "$GMAIL" || rc=$?
expect_accepted "$rc" "$id_d" "d (R115, M-OUT): [IN-CONFIDENCE] to $SECURE and $GMAIL accepted (250, split)" "d (R115, M-OUT): mixed recipients accepted"
if wait_id "$id_d" 20; then
	sleep 1 # a second copy (to gmail.example) would have arrived by now
	assert_eq 1 "$(id_count "$id_d")" "d (R115): exactly one copy at the sink"
	f=$(sink_grep "^X-Test-Id: $id_d\$" | head -n 1)
	sink_headers "$f" >"$WORK/d.headers"
	assert_contains "$WORK/d.headers" "^X-Rcpt-Args: <$SECURE>" "d (R115): the copy went to $SECURE"
	assert_not_contains "$WORK/d.headers" '^X-Rcpt-Args: <[^>]*gmail\.example>' "d (R115, G-DLP): $GMAIL removed: never delivered"
else
	fail "d (R115): message $id_d reached the sink"
fi
ndr_d() { ndr_for "$ALICE" "e2e classified $id_d"; }
has_ndr_d() { [[ -n $(ndr_d) ]]; }
if wait_until 30 has_ndr_d; then
	pass "d (R74, M-OUT): alice got a NON DELIVERY REPORT at the sink"
	qp_decode "$(ndr_d)" >"$WORK/d.ndr"
	assert_contains "$WORK/d.ndr" "^Not delivered to: .*$GMAIL" "d (R74): the report names $GMAIL"
	assert_not_contains "$WORK/d.ndr" "^Not delivered to: .*$SECURE" "d (R74): the report does not name $SECURE"
	assert_contains "$WORK/d.ndr" "^From: Postmaster <$ADMIN>" "d (R92): the report comes from $ADMIN"
	assert_not_contains "$WORK/d.ndr" "$(first_body_line "$WORK/$id_d.eml")" "d (R77): the report does not carry the original body"
else
	fail "d (R74): a NON DELIVERY REPORT (Subject: NON DELIVERY REPORT: e2e classified $id_d) reached $ALICE within 30s"
fi
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/d.audit"
assert_contains "$WORK/d.audit" '"classification":"IN-CONFIDENCE".*gmail\.example' "d (R113): audit: classified mail breach attempt logged for the removed recipient $GMAIL"

# ------------------------------------------------------------------ e
id_e=$(unique_id)
n0=$(audit_count)
rc=0
send_classified "$id_e" "e2e classified $id_e" "[SECRET]" "$SECURE" || rc=$?
qid_e=
if ((rc == 0)) && accepted; then
	qid_e=$(queue_id)
	pass "e (R110): [SECRET] to $SECURE accepted (250, queue id $qid_e)"
else
	fail "e (R110): [SECRET] to $SECURE accepted (250) (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
expect_held "$qid_e" e "e (R110): held: postqueue -p shows $qid_e!" "e (R110)"
notice_e() { generated_for "$ADMIN" "e2e classified $id_e"; }
has_notice_e() { [[ -n $(notice_e) ]]; }
if wait_until 30 has_notice_e; then
	f=$(notice_e)
	pass "e (R110): the administrator notice reached $ADMIN ($(unfolded_headers "$f" | grep -m1 '^Subject:'))"
	qp_decode "$f" >"$WORK/e.notice"
	assert_contains "$WORK/e.notice" "postsuper -H $qid_e" "e (R110, R56): the notice names the release command postsuper -H $qid_e"
	assert_not_contains "$WORK/e.notice" "$(first_body_line "$WORK/$id_e.eml")" "e (R77): the notice does not carry the original body"
else
	fail "e (R110): an administrator notice about '$id_e' reached $ADMIN within 30s"
fi
sleep 1
assert_eq 0 "$(id_count "$id_e")" "e (R110): the held message is not at the sink"
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/e.audit"
assert_contains "$WORK/e.audit" '"classification":"SECRET"' "e (R113): audit: classified mail breach attempt logged (SECRET, held)"
if [[ -n $qid_e ]]; then
	pf_postsuper -H "$qid_e" >"$WORK/e.postsuper" 2>&1 || true
	pf_postqueue -i "$qid_e" >/dev/null 2>&1 || true
	if wait_id "$id_e" 30; then
		pass "e (R110): postsuper -H $qid_e released it and it reached the sink"
		EXPECT_ONE+=("$id_e")
	else
		fail "e (R110): postsuper -H $qid_e released it to the sink within 30s" "$WORK/e.postsuper"
	fi
fi

# ------------------------------------------------------------------ R113
assert_eq 3 "$(audit_count)" "R113: one audit line per breach attempt (c, d, e), none for a and b"

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled

stop_milter
e2e_finish
