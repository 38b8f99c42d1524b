#!/usr/bin/env bash
# tests/e2e/senderauth.sh: sender authentication inbound (issue 5):
# M-RCV-SPF, M-RCV-SID, M-RCV-SM, M-SEC, G-TLS, through a real Postfix.
#
# The milter runs under the default sge profile with domains=
# ["agency.govt.nz"], inbound.spf="enforce" and inbound.senderid="enforce",
# resolving through the loopback DNS server (tests/e2e/dnsd). Every message
# comes from the "internet" client 127.0.0.2 over STARTTLS (TLS >= 1.2)
# unless said otherwise; the zone gives each case its sender domain:
#
#   a. pass.example (v=spf1 ip4:127.0.0.2 -all): accepted, delivered with
#      Authentication-Results: ...; spf=pass ... (RFC 8601)
#   b. fail.example (-all, not us): 550 5.7.23 after DATA (M-RCV-SPF;
#      since issue 12 a fail waits for DKIM, which could pass DMARC)
#   c. soft.example (~all): accepted (softfail is not enforced), spf=softfail
#   d. none.example (no record): accepted, spf=none
#   e. perm.example (record with an unknown mechanism): 550 5.7.24 after
#      DATA (SPF permerror, M-RCV-SPF; decided at end of message like b)
#   f. broken.example (dnsd answers SERVFAIL): 451 4.4.3 at MAIL FROM
#      (temperror: never an accept); nothing queued
#   g. Sender ID: MAIL FROM sender@pass.example, From: ceo@forged.example
#      (spf2.0/pra ip4:192.0.2.1 -all): 550 5.7.1 after DATA (M-RCV-SID,
#      decided at end of headers)
#   h. apparent SecureMail sender securemail.x.example (v=spf1
#      ip4:127.0.0.2 ~all): 550 5.7.1 "Refused by the SecureMail rules
#      (M-SEC): ... does not end in "-all"" at MAIL FROM (M-RCV-SM) under
#      sge; securemail.ok.example (-all, spf2.0/mfrom,pra -all, passing)
#      over TLS 1.2+ with an AEAD forward-secret cipher: accepted.
#   i. weak TLS: a second smtpd of the same Postfix that allows TLS 1.1
#      (OpenSSL @SECLEVEL=0); swaks forces --tls-protocol tlsv1_1:
#      550 5.7.10 "TLSv1.1 is below the minimum TLS 1.2 ..." at MAIL FROM
#      (M-RCV-TLS, G-TLS). If the TLS 1.1 handshake cannot be made on this
#      machine, the plaintext refusal (530 5.7.10) is asserted instead and
#      the output says so.
#   all: nothing refused reaches the sink; every accepted message arrives
#      exactly once; the queue ends empty.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init senderauth
DOMAIN=agency.govt.nz
TO=user@$DOMAIN
EXPECT_ONE=()
EXPECT_NONE=()
pick_port WEAK_PORT

# msg ID MAILFROM [SWAKS ARGS...]: a TLS message from the internet to $TO.
msg() {
	local id=$1 from=$2
	shift 2
	send --tls --from "$from" --to "$TO" --header "Subject: e2e senderauth $id" \
		--add-header "X-Test-Id: $id" "$@"
}

# expect_accept CASE ID AR_PATTERN: the send was accepted; the message
# arrives once with an Authentication-Results header matching AR_PATTERN.
expect_accept() {
	local c=$1 id=$2 ar=$3 f
	if accepted; then
		pass "$c: accepted (250)"
		EXPECT_ONE+=("$id")
	else
		fail "$c: accepted (250) (reply '$(last_reply)')" "$SEND_OUT"
		return 0
	fi
	if wait_id "$id" 20; then
		f=$(sink_grep "^X-Test-Id: $id\$" | head -n 1)
		unfolded_headers "$f" >"$WORK/$id.headers"
		assert_contains "$WORK/$id.headers" "^Authentication-Results: [^;]+;.* $ar" \
			"$c: delivered with Authentication-Results: ... $ar (RFC 8601)"
	else
		fail "$c: message $id reached the sink"
	fi
}

# expect_refused CASE ID RC REGEX WHAT: the send ended with swaks exit RC
# and the last 4xx/5xx reply matches REGEX.
expect_refused() {
	local c=$1 id=$2 want_rc=$3 re=$4 what=$5 got_rc=$6 reply
	EXPECT_NONE+=("$id")
	reply=$(last_reply)
	if ((got_rc == want_rc)) && [[ $reply =~ $re ]]; then
		pass "$c: $what: $reply"
	else
		fail "$c: $what (swaks exit $got_rc, want $want_rc; reply '$reply')" "$SEND_OUT"
	fi
}

cat >"$WORK/zone" <<'EOF'
; senderauth.sh (tests/e2e/dnsd). The test client is 127.0.0.2; 192.0.2.1
; (TEST-NET-1) stands for "some other host". Other names: NXDOMAIN.
pass.example.            300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
fail.example.            300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
fail.example.            300 IN TXT "spf2.0/pra ip4:192.0.2.1 -all"
soft.example.            300 IN TXT "v=spf1 ip4:192.0.2.1 ~all"
; "foo:bar" is no SPF mechanism: permerror (RFC 7208 section 5).
perm.example.            300 IN TXT "v=spf1 ip4:127.0.0.2 foo:bar -all"
$FAULT broken.example SERVFAIL
; Sender ID: this domain's PRA record authorises only 192.0.2.1.
forged.example.          300 IN TXT "spf2.0/pra ip4:192.0.2.1 -all"
forged.example.          300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
; Apparent SecureMail senders (M-RCV-SM).
securemail.x.example.    300 IN TXT "v=spf1 ip4:127.0.0.2 ~all"
securemail.ok.example.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
securemail.ok.example.   300 IN TXT "spf2.0/mfrom,pra ip4:127.0.0.2 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]" --set 'inbound.spf="enforce"' --set 'inbound.senderid="enforce"'
# A second smtpd that still speaks TLS 1.1 (case i): OpenSSL 3 needs
# security level 0 for TLS 1.0/1.1 (their handshake signs with MD5+SHA1).
POSTFIX_EXTRA_MASTER="# senderauth.sh: an old-TLS listener (TLS 1.1 allowed), same milter.
$SERVER_IP:$WEAK_PORT inet n - n - - smtpd
  -o syslog_name=postfix-e2e-$E2E_NAME/weaktls
  -o smtpd_tls_protocols=>=TLSv1
  -o smtpd_tls_mandatory_protocols=>=TLSv1
  -o smtpd_tls_ciphers=medium
  -o tls_medium_cipherlist=DEFAULT:@SECLEVEL=0"
POSTFIX_EXTRA_PORTS=$WEAK_PORT
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id=$(unique_id)
rc=0
msg "$id" sender@pass.example || rc=$?
expect_accept "a (M-RCV-SPF pass)" "$id" 'spf=pass smtp\.mailfrom=sender@pass\.example'
assert_contains "$WORK/$id.headers" '^Authentication-Results: .*sender-id=pass header\.from=' \
	"a (M-RCV-SID pass): Authentication-Results records sender-id=pass for the From: (PRA)"

# ------------------------------------------------------------------ b
id=$(unique_id)
rc=0
# From: a domain whose PRA passes, so that the enforced Sender ID check
# at end of headers does not decide first.
msg "$id" ceo@fail.example --header "From: <sender@pass.example>" || rc=$?
expect_refused "b (M-RCV-SPF fail)" "$id" 26 '^550[ -]5\.7\.23 SPF check failed for ceo@fail\.example: .*\(M-RCV-SPF\)$' \
	"SPF fail refused after DATA with 550 5.7.23" "$rc"
if [[ $(mail_reply) == 250* ]]; then
	pass "b (M-RCV-SPF): MAIL FROM accepted; the refusal waited for DKIM (RFC 7489 section 10.1)"
else
	fail "b (M-RCV-SPF): MAIL FROM accepted before the end-of-message refusal ('$(mail_reply)')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ c
id=$(unique_id)
rc=0
msg "$id" sender@soft.example || rc=$?
expect_accept "c (M-RCV-SPF softfail)" "$id" 'spf=softfail smtp\.mailfrom=sender@soft\.example'

# ------------------------------------------------------------------ d
id=$(unique_id)
rc=0
msg "$id" sender@none.example || rc=$?
expect_accept "d (M-RCV-SPF none)" "$id" 'spf=none smtp\.mailfrom=sender@none\.example'

# ------------------------------------------------------------------ e
id=$(unique_id)
rc=0
msg "$id" sender@perm.example --header "From: <sender@pass.example>" || rc=$?
expect_refused "e (M-RCV-SPF permerror)" "$id" 26 '^550[ -]5\.7\.24 SPF record of perm\.example is not valid: .*\(M-RCV-SPF\)$' \
	"SPF permerror (syntax error in the record) refused after DATA with 550 5.7.24" "$rc"

# ------------------------------------------------------------------ f
id=$(unique_id)
rc=0
msg "$id" sender@broken.example || rc=$?
expect_refused "f (M-RCV-SPF temperror)" "$id" 23 '^451[ -]4\.4\.3 Temporary DNS failure checking SPF for broken\.example' \
	"DNS SERVFAIL: 451 4.4.3 at MAIL FROM, never an accept" "$rc"
if grep -q 'broken.example' "$WORK/dns.log"; then
	pass "f: the SPF lookup of broken.example reached the test DNS server (and got SERVFAIL)"
else
	fail "f: the SPF lookup of broken.example reached the test DNS server" "$WORK/dns.log"
fi

# ------------------------------------------------------------------ g
id=$(unique_id)
rc=0
msg "$id" sender@pass.example --header "From: The CEO <ceo@forged.example>" || rc=$?
expect_refused "g (M-RCV-SID fail)" "$id" 26 '^550[ -]5\.7\.1 Sender ID check failed: forged\.example is not authorised to send as ceo@forged\.example \(M-RCV-SID\)$' \
	"Sender ID fail on the forged From: (PRA) refused after DATA with 550 5.7.1" "$rc"
if [[ $(mail_reply) == 250* ]]; then
	pass "g (M-RCV-SID): MAIL FROM of the passing domain was accepted (SPF pass); the PRA decided"
else
	fail "g (M-RCV-SID): MAIL FROM accepted before the PRA check ('$(mail_reply)')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ h
id=$(unique_id)
rc=0
msg "$id" user@securemail.x.example || rc=$?
expect_refused "h (M-RCV-SM, M-SEC)" "$id" 23 \
	'^550[ -]5\.7\.1 Refused by the SecureMail rules \(M-SEC\): the SPF record of securemail\.x\.example does not end in "-all"$' \
	"apparent SecureMail sender with ~all refused at MAIL FROM under sge" "$rc"
id=$(unique_id)
rc=0
msg "$id" user@securemail.ok.example || rc=$?
expect_accept "h (M-RCV-SM, M-SEC)" "$id" 'spf=pass smtp\.mailfrom=user@securemail\.ok\.example'

# ------------------------------------------------------------------ i
# Weak TLS (G-TLS). Does this machine manage a TLS 1.1 handshake at all?
id=$(unique_id)
rc=0
SMTP_PORT=$WEAK_PORT msg "$id" sender@pass.example --tls-protocol tlsv1_1 --tls-cipher 'DEFAULT:@SECLEVEL=0' || rc=$?
if grep -Eq 'TLS started with cipher TLSv1\.1' "$SEND_OUT"; then
	expect_refused "i (M-RCV-TLS, G-TLS)" "$id" 23 \
		'^550[ -]5\.7\.10 TLSv1\.1 is below the minimum TLS 1\.2 this gateway accepts \(NZ SGE policy, G-TLS\)$' \
		"TLS 1.1 session refused at MAIL FROM with 550 5.7.10" "$rc"
	if grep '"action":"reject"' "$WORK/milter.log" | grep -q '"tls_version":"TLSv1.1"'; then
		pass "i (G-TLS): the milter saw {tls_version}=TLSv1.1 and logged the refusal"
	else
		fail "i (G-TLS): the milter saw {tls_version}=TLSv1.1 and logged the refusal"
	fi
else
	EXPECT_NONE+=("$id")
	echo "NOTE: i: no TLS 1.1 handshake possible here (swaks exit $rc: $(grep -Eim1 'tls|ssl' "$SEND_OUT" || true)); asserting the plaintext refusal instead"
	id=$(unique_id)
	rc=0
	send --from sender@pass.example --to "$TO" --header "Subject: e2e senderauth $id" --add-header "X-Test-Id: $id" || rc=$?
	expect_refused "i (M-RCV-TLS, G-TLS; plaintext instead of TLS 1.1)" "$id" 23 \
		'^530[ -]5\.7\.10 Must issue a STARTTLS command first' "plaintext refused at MAIL FROM with 530 5.7.10" "$rc"
fi

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled

stop_milter
e2e_finish
