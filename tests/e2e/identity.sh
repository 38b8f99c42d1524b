#!/usr/bin/env bash
# tests/e2e/identity.sh: sender identity (issue 12 points 1, 2 and 7): the
# one author parser (message.Authors) behind Table 3's 002/005 (R76) and
# R66, through a real Postfix.
#
# The milter runs under the default sge profile (inbound.warning_mode
# "wrap", inbound.dmarc "enforce") with domains=["agency.govt.nz"]. Inbound
# mail comes from the internet client 127.0.0.2 over STARTTLS with MAIL
# FROM sender@sender.example (SPF pass); agency.govt.nz publishes no DMARC
# record here (under p=reject the spoofs would be refused before any
# warning). Each case has a legitimate twin that must NOT be warned or
# refused, so every check can fail both ways.
#
#   a. From: Smith, John <john@agency.govt.nz> (an unquoted comma in the
#      display name, which the old parser could not read, so no warning):
#      delivered with X-NZ-Secure-Warning: 005 (R76, Table 3 005).
#   a'. From: Smith, John <john@sender.example> (the same form, the
#      sender's own verified domain): delivered with no warning.
#   b. From: "ceo@agency.govt.nz" <ceo@sender.example> (a display name that
#      spells our CEO's address, the address elsewhere; SPF passes for the
#      address): delivered with X-NZ-Secure-Warning: 005, the decision log
#      naming the impersonation.
#   b'. From: "Sender Ltd CEO (ceo@sender.example)" <ceo@sender.example>:
#      delivered with no warning.
#   d. From: "John <john@agency.govt.nz> (an unclosed quote: no author can
#      be told): unverified, delivered with X-NZ-Secure-Warning: 005 (the
#      domain it names is ours and publishes no DMARC record).
#   d2. From: "Boss <boss@reject.example> (unclosed quote naming a domain
#      whose DMARC record says p=reject; SPF passes only for
#      sender.example): refused after DATA with 550 5.7.1 "Message rejected
#      by the DMARC policy of reject.example" (G-DMARC-IN, RFC 7489 section
#      6.6.1: the strictest policy of every domain the From: names).
#   e. From: ceo@agency.gov.nz (a lookalike of our domain, inbound.lookalike
#      "warn"): delivered with X-NZ-Secure-Warning: 005, the decision log
#      naming agency.govt.nz as the domain it looks like.
#   e2. From: ceo@xn--gency-3ve.govt.nz (a Cyrillic a, as an A-label): 005,
#      "confusable characters".
#   f. From: accounts@sender.example with Sender: ceo@agency.govt.nz (Outlook
#      shows "ceo@agency.govt.nz on behalf of accounts@sender.example"),
#      not verified: 005. f2. From: ceo%agency.govt.nz@sender.example (our
#      domain in the local part): 005.
#   c. alice (SASL submission) sends From: alice@agency.govt.nz with
#      Sender: bob@agency.govt.nz: refused after DATA, 550 5.7.1 "Sender:
#      address <bob@agency.govt.nz> does not match the authenticated sender
#      ... (R66)".
#   c2. the same with Resent-From: alice@outside.example: 550 5.7.1
#      "Resent-From: address <alice@outside.example> is not in one of this
#      agency's domains (R66)".
#   c'. alice with Sender: and Resent-From: alice@agency.govt.nz:
#      delivered.
#   all: nothing refused reaches the sink; every accepted message arrives
#      exactly once; the queue ends empty.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init identity
DOMAIN=agency.govt.nz
ALICE=alice@$DOMAIN
ALICE_PASS=alice-secret-12
SENDER=sender@sender.example
TO=user@$DOMAIN
EXPECT_ONE=()
EXPECT_NONE=()

# inbound CASE FROM WARN [SWAKS_ARGS...]: an inbound message with header
# From: FROM; WARN=005 wants X-NZ-Secure-Warning: 005 on the delivered copy,
# WARN="" wants no warning header at all. Leaves the decision log line in
# $WORK/CASE.decision.
inbound() {
	local c=$1 from=$2 warn=$3 id rc=0 qid f
	shift 3
	id=$(unique_id)
	send --tls --from "$SENDER" --to "$TO" --header "From: $from" \
		--header "Subject: e2e identity $id" --add-header "X-Test-Id: $id" --body "Please pay invoice $id today." "$@" || rc=$?
	if ((rc == 0)) && accepted; then
		qid=$(queue_id)
		pass "$c: inbound From: $from accepted (250)"
		EXPECT_ONE+=("$id")
	else
		fail "$c: inbound From: $from accepted (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
		return 0
	fi
	if ! wait_id "$id" 20; then
		fail "$c: message $id reached the sink"
		return 0
	fi
	f=$(sink_grep "^X-Test-Id: $id\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/$c.headers"
	decision_for "$qid" >"$WORK/$c.decision"
	if [[ -n $warn ]]; then
		assert_contains "$WORK/$c.headers" "^X-NZ-Secure-Warning: $warn " "$c (R76, Table 3 $warn): delivered with X-NZ-Secure-Warning: $warn"
		assert_contains "$WORK/$c.decision" "\"warning_code\":\"$warn\"" "$c (R76): the decision log records warning $warn"
	else
		assert_not_contains "$WORK/$c.headers" '^X-NZ-Secure-Warning:' "$c (R76): delivered with no warning"
		assert_contains "$WORK/$c.decision" '"warning_code":""' "$c (R76): the decision log records no warning"
	fi
}

# outbound CASE WANT_RE SWAKS_ARGS...: alice submits; WANT_RE="" wants the
# message delivered, otherwise a 550 after DATA whose text matches WANT_RE.
outbound() {
	local c=$1 want=$2 id rc=0 reply
	shift 2
	id=$(unique_id)
	send_auth alice "$ALICE_PASS" --from "$ALICE" --to "$TO" --header "From: Alice <$ALICE>" \
		--header "Subject: e2e identity $id" --add-header "X-Test-Id: $id" "$@" || rc=$?
	if [[ -z $want ]]; then
		if ((rc == 0)) && accepted; then
			pass "$c (R66): accepted (250)"
			EXPECT_ONE+=("$id")
		else
			fail "$c (R66): accepted (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
		fi
		return 0
	fi
	EXPECT_NONE+=("$id")
	reply=$(last_reply)
	if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.1\ .*$want ]]; then
		pass "$c (R66): refused after DATA: $reply"
	else
		fail "$c (R66): refused after DATA with 550 5.7.1 /$want/ (swaks exit $rc, reply '$reply')" "$SEND_OUT"
	fi
}

cat >"$WORK/zone" <<EOF
; identity.sh (tests/e2e/dnsd). The test client is 127.0.0.2. Other names:
; NXDOMAIN (no DMARC record anywhere: the warnings decide, not p=reject).
sender.example.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
_dmarc.reject.example. 300 IN TXT "v=DMARC1; p=reject"
$DOMAIN.          300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]"
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a, a'
inbound a "Smith, John <john@$DOMAIN>" 005
assert_contains "$WORK/a.decision" "our own domain $DOMAIN" "a: the decision log names our domain as the From: domain"
inbound a1 "Smith, John <john@sender.example>" ""

# ------------------------------------------------------------------ b, b'
inbound b "\"ceo@$DOMAIN\" <ceo@sender.example>" 005
assert_contains "$WORK/b.decision" "names our own domain $DOMAIN but the address is <ceo@sender.example>: impersonation" \
	"b (issue 12 point 2): the decision log names the display-name impersonation"
inbound b1 "Sender Ltd CEO (ceo@sender.example) <ceo@sender.example>" ""

# ------------------------------------------------------------------ d, d2
inbound d "\"John <john@$DOMAIN>" 005
assert_contains "$WORK/d.decision" "cannot be read for one author \\(unclosed quoted string\\) and names our own domain $DOMAIN" \
	"d (issue 12 point 1): the decision log says the From: cannot be read and names our domain"
id=$(unique_id)
rc=0
send --tls --from "$SENDER" --to "$TO" --header 'From: "Boss <boss@reject.example>' \
	--header "Subject: e2e identity $id" --add-header "X-Test-Id: $id" || rc=$?
EXPECT_NONE+=("$id")
reply=$(last_reply)
if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.1\ Message\ rejected\ by\ the\ DMARC\ policy\ of\ reject\.example ]]; then
	pass "d2 (G-DMARC-IN, issue 12 point 1): unparseable From: naming a p=reject domain refused after DATA: $reply"
else
	fail "d2 (G-DMARC-IN): unparseable From: naming a p=reject domain refused with 550 5.7.1 (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ e, e2
inbound e "CEO <ceo@agency.gov.nz>" 005
assert_contains "$WORK/e.decision" "From: domain agency.gov.nz looks like our own domain $DOMAIN \\(gov.nz instead of govt.nz\\): impersonation" \
	"e (inbound.lookalike): the decision log names the domain the From: looks like"
inbound e2 "ceo@xn--gency-3ve.govt.nz" 005
assert_contains "$WORK/e2.decision" "looks like our own domain $DOMAIN \\(confusable characters\\)" \
	"e2 (inbound.lookalike): a Cyrillic letter in the From: domain is a confusable of ours"

# ------------------------------------------------------------------ f, f2
inbound f "Accounts <accounts@sender.example>" 005 --add-header "Sender: CEO <ceo@$DOMAIN>"
assert_contains "$WORK/f.decision" "Sender: names our own domain $DOMAIN \\(shown as sending on behalf of the author\\)" \
	"f (R76): the decision log names the Sender: that is ours"
inbound f2 "ceo%$DOMAIN@sender.example" 005
assert_contains "$WORK/f2.decision" "names our own domain $DOMAIN but the address is <ceo%$DOMAIN@sender.example>: impersonation" \
	"f2 (issue 12 point 2): our domain in the local part is impersonation"

# ------------------------------------------------------------------ c, c2, c'
outbound c 'Sender: address <bob@agency\.govt\.nz> does not match the authenticated sender .*\(R66\)$' \
	--header "Sender: Bob <bob@$DOMAIN>"
outbound c2 "Resent-From: address <alice@outside\\.example> is not in one of this agency's domains \\(R66\\)$" \
	--header "Resent-From: alice@outside.example"
outbound c1 "" --header "Sender: Alice <$ALICE>" --header "Resent-From: $ALICE"

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled

stop_milter
e2e_finish
