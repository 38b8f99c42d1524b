#!/usr/bin/env bash
# tests/e2e/notices.sh: warnings, receipts and the ping responder (issue 8):
# R76, R199, R73, R96-R99, through a real Postfix.
#
# The milter runs under the default sge profile (inbound.warning_mode
# "wrap") with domains=["agency.govt.nz"]. Mail the milter generates goes
# through "sendmail -C" into the private Postfix and on to the sink.
#
#   a. inbound From: ceo@agency.govt.nz (our own domain) from the internet
#      client 127.0.0.2 (MAIL FROM sender@sender.example, SPF pass, TLS):
#      delivered wrapped with warning 005 (X-NZ-Secure-Warning: 005,
#      multipart/mixed, UNVERIFIED MESSAGE first, the original attached)
#      (R76, Table 3 005).
#   a2. the same with a List-Id header (list-server mail): only the
#      X-NZ-Secure-Warning: 005 header, the body unchanged, not wrapped
#      (R199).
#   b. alice (SASL, outbound) sends "[RSVPDR]" to someone@partner.example:
#      delivered, and a DELIVERY RECEIPT with Table 4's wording ("Your
#      message has been successfully delivered to the organisation
#      responsible for handling the addressee's messages. This is not a
#      read receipt.", quoted-printable: decoded before the check) reaches
#      alice at the sink, from postmaster@agency.govt.nz (R73, R92).
#   c. a ping from the internet (sender@sender.example to
#      ping@agency.govt.nz): answered at the sink with the product name and
#      version and the environment (R96, R99); the ping itself is not
#      delivered. (tests/e2e/outbound.sh covers an authenticated ping.)
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init notices
DOMAIN=agency.govt.nz
ADMIN=postmaster@$DOMAIN
ALICE=alice@$DOMAIN
ALICE_PASS=alice-secret-8
SENDER=sender@sender.example
TO=user@$DOMAIN
EXPECT_ONE=()
EXPECT_NONE=()

# assert_has_text FILE TEXT MSG: TEXT (a fixed string) is in FILE.
assert_has_text() {
	if [[ -f $1 ]] && grep -qF -- "$2" "$1"; then pass "$3"; else fail "$3 (expected the text '$2')" "$1"; fi
}
e2e_need python3
cat >"$WORK/zone" <<EOF
; notices.sh (tests/e2e/dnsd). The test client is 127.0.0.2. Other names:
; NXDOMAIN. agency.govt.nz has no DMARC record here: under p=reject the
; spoof of case a would be refused before any warning.
sender.example.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
$DOMAIN.          300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]"
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id_a=$(unique_id)
rc=0
send --tls --from "$SENDER" --to "$TO" --header "From: The CEO <ceo@$DOMAIN>" \
	--header "Subject: e2e notices $id_a" --add-header "X-Test-Id: $id_a" --body "Please pay invoice $id_a today." || rc=$?
expect_accepted "$rc" "$id_a" "a (R76): inbound From: ceo@$DOMAIN from the internet accepted (250)" "a (R76): inbound From: ceo@$DOMAIN accepted"
if wait_id "$id_a" 20; then
	f=$(sink_grep "^X-Test-Id: $id_a\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/a.headers"
	sink_body "$f" >"$WORK/a.body"
	assert_contains "$WORK/a.headers" '^X-NZ-Secure-Warning: 005 ' "a (R76, Table 3 005): X-NZ-Secure-Warning: 005 (our own agency's address from outside)"
	assert_contains "$WORK/a.headers" '^Content-Type: multipart/mixed' "a (R76, R78): wrapped: multipart/mixed"
	assert_contains "$WORK/a.body" 'UNVERIFIED MESSAGE' "a (R78): the warning part has the Table 2 text UNVERIFIED MESSAGE"
	assert_contains "$WORK/a.body" '^Content-Type: message/rfc822' "a (R76): the original is attached as message/rfc822"
	assert_contains "$WORK/a.body" "Please pay invoice $id_a today\\." "a (R76): the original text is inside, unchanged"
else
	fail "a (R76): message $id_a reached the sink"
fi

# ------------------------------------------------------------------ a2
id_a2=$(unique_id)
body_a2="List mail $id_a2, plain text."
rc=0
send --tls --from "$SENDER" --to "$TO" --header "From: The CEO <ceo@$DOMAIN>" \
	--header "Subject: e2e notices $id_a2" --add-header "X-Test-Id: $id_a2" \
	--add-header "List-Id: Staff news <news.lists.sender.example>" --body "$body_a2" || rc=$?
qid_a2=
if ((rc == 0)) && accepted; then
	qid_a2=$(queue_id)
	pass "a2 (R199): the same From: with List-Id accepted (250)"
	EXPECT_ONE+=("$id_a2")
else
	fail "a2 (R199): the same From: with List-Id accepted (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
if wait_id "$id_a2" 20; then
	f=$(sink_grep "^X-Test-Id: $id_a2\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/a2.headers"
	sink_body "$f" | tr -d '\r' >"$WORK/a2.body"
	assert_contains "$WORK/a2.headers" '^X-NZ-Secure-Warning: 005 ' "a2 (R199): list mail gets only the X-NZ-Secure-Warning: 005 header"
	assert_not_contains "$WORK/a2.headers" '^Content-Type: multipart/' "a2 (R199): not wrapped (no multipart)"
	assert_eq "$body_a2" "$(sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$WORK/a2.body")" "a2 (R199): the body is unchanged"
	decision_for "$qid_a2" >"$WORK/a2.decision"
	assert_contains "$WORK/a2.decision" '"warning_mode":"header"' "a2 (R199): the decision log says warning_mode header"
	assert_contains "$WORK/a2.decision" '"warning_severity":"soft"' "a2 (R199): the warning is downgraded to soft"
else
	fail "a2 (R199): message $id_a2 reached the sink"
fi

# ------------------------------------------------------------------ b
id_b=$(unique_id)
rc=0
send_auth alice "$ALICE_PASS" --from "$ALICE" --to someone@partner.example \
	--header "Subject: [RSVPDR] e2e notices $id_b" --add-header "X-Test-Id: $id_b" \
	--body "Please confirm delivery of $id_b." || rc=$?
expect_accepted "$rc" "$id_b" "b (R73): alice's [RSVPDR] message accepted (250)" "b (R73): alice's [RSVPDR] message accepted"
if wait_id "$id_b" 20; then
	pass "b (R73): the [RSVPDR] message was delivered"
else
	fail "b (R73): the [RSVPDR] message $id_b reached the sink"
fi
receipt_b() { generated_for "$ALICE" "e2e notices $id_b" | xargs -r grep -l '^Subject: DELIVERY RECEIPT: ' 2>/dev/null | head -n 1; }
has_receipt_b() { [[ -n $(receipt_b) ]]; }
if wait_until 30 has_receipt_b; then
	f=$(receipt_b)
	pass "b (R73): a DELIVERY RECEIPT reached $ALICE at the sink ($(unfolded_headers "$f" | grep -m1 '^Subject:'))"
	qp_decode "$f" >"$WORK/b.receipt"
	assert_has_text "$WORK/b.receipt" "Your message has been successfully delivered to the organisation responsible for handling the addressee's messages. This is not a read receipt." \
		"b (R73, Table 4): the receipt has the exact wording (after quoted-printable decoding)"
	assert_has_text "$WORK/b.receipt" "DELIVERY RECEIPT – " "b (Table 4): it opens with \"DELIVERY RECEIPT – \""
	assert_contains "$WORK/b.receipt" "^From: Postmaster <$ADMIN>" "b (R92): the receipt comes from $ADMIN"
	assert_not_contains "$WORK/b.receipt" "Please confirm delivery of" "b (R77): the receipt does not carry the original body"
else
	fail "b (R73): a DELIVERY RECEIPT about '$id_b' reached $ALICE within 30s"
fi

# ------------------------------------------------------------------ c
id_c=$(unique_id)
EXPECT_NONE+=("$id_c")
product=$("$NZBIN" version | awk 'NR == 1 { print $1 " " $2 }')
rc=0
send --tls --from "$SENDER" --to "ping@$DOMAIN" --header "Subject: e2e notices ping $id_c" \
	--add-header "X-Test-Id: $id_c" || rc=$?
if ((rc == 0)) && accepted; then
	pass "c (R96): a ping from the internet to ping@$DOMAIN accepted (250)"
else
	fail "c (R96): a ping from the internet accepted (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
ping_c() { generated_for "$SENDER" "e2e notices ping $id_c" | xargs -r grep -l '^Subject: PING REPLY: ' 2>/dev/null | head -n 1; }
has_ping_c() { [[ -n $(ping_c) ]]; }
if wait_until 30 has_ping_c; then
	pass "c (R96): the ping answer reached $SENDER at the sink"
	qp_decode "$(ping_c)" >"$WORK/c.reply"
	assert_has_text "$WORK/c.reply" "Gateway software: $product" "c (R99): the answer names the product and version ($product)"
	assert_contains "$WORK/c.reply" '^Secure Email environment: .+' "c (R99): the answer names the Secure Email environment ($(grep -m1 '^Secure Email environment:' "$WORK/c.reply" || true))"
else
	fail "c (R96): a ping answer (Subject: PING REPLY: ...) reached $SENDER within 30s"
fi
sleep 1
assert_eq 0 "$(id_count "$id_c")" "c (R96): the ping itself is not delivered"

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled consumed

stop_milter
e2e_finish
