#!/usr/bin/env bash
# tests/e2e/certrequest.sh: certificate requests by mail between two
# gateways on loopback (R44, R51; issue 15 point 2).
#
#   gateway A: agency-a.govt.nz, lib.sh's private Postfix (submission on)
#              with its milter; mail for agency-b.govt.nz is relayed
#              through a capturing TCP proxy to gateway B, everything else
#              goes to the sink. A has NO certificate for agency-b and no
#              LDAP. Its internal_networks exclude loopback, so B's
#              connections are inbound at A (alice submits authenticated).
#   gateway B: agency-b.govt.nz, a second private Postfix and milter (the
#              gw_b_* helpers in lib.sh); mail for
#              agency-a.govt.nz goes back to A, the rest to the sink. B
#              has no certificate for agency-a either. Its
#              internal_networks are 127.0.0.2 (the test client: outbound
#              at B); A's Postfix connects from 127.0.0.1 (inbound at B).
#   One test PKI (make-fixtures.sh, CRL on a loopback HTTP server).
#
#   a. alice@agency-a -> bob@agency-b: A holds it (SECURE DELIVERY
#      DELAYED 201) and sends a signed request (multipart/signed, verified
#      with openssl cms against the CA) from
#      domain-confidentiality-authority@agency-a to
#      domain-certificate-request@agency-b, Subject
#      domain-confidentiality-authority@agency-b.
#   b. B consumes the request and answers with its DCA certificate
#      (.cer and .p7c; signed, and encrypted to agency-a's certificate,
#      learned from the signed request, R50, R62); A consumes the answer,
#      validates and stores agency-b's certificate and releases the held
#      message at once (not at smime.retry_interval, set to 1h here); it
#      arrives at B signed and encrypted and is delivered verified.
#      Neither the request nor the answer reaches a mailbox (the sink).
#   c. the converse: B's certificate for agency-a is removed; bob@agency-b
#      -> alice@agency-a is held at B, B requests, A answers with its
#      certificates, signed and encrypted to agency-b (the capture A->B
#      holds it; openssl decrypts it with agency-b's key, verifies it and
#      finds agency-a's newest certificate first in the .p7c); B consumes
#      the answer, stores agency-a's certificate and releases the message,
#      which reaches A encrypted and is delivered verified.
#   d. an unsigned request whose Subject names no DCA address of ours is
#      consumed and not answered; a valid one within the interval is
#      consumed and not answered (rate limit per requesting domain).
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init certrequest
e2e_need python3
A=agency-a.govt.nz
B=agency-b.govt.nz
ALICE_PASS=alice-secret-1
BODY_LINE="Agenda of the joint working group, for agency B only."

# ------------------------------------------------------------------- PKI
e2e_pki
# No peer certificates at all on either side.
mkdir -p "$WORK/peers-a" "$WORK/peers-b"

cat >"$WORK/zone" <<EOF
; certrequest.sh (tests/e2e/dnsd). Other names: NXDOMAIN.
$A. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
$B. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink

# ------------------------------------------------ capture and gateway B
# lib.sh: start_capture_proxy, gw_b_milter, gw_b_postfix, gw_b_queue_empty.
start_capture_proxy || { fail "capture proxy listens" "$WORK/proxy.log"; e2e_finish; }
# B's Postfix also sends mail for agency-a back to A ($SMTP_PORT).
if ! gw_b_milter --set 'internal_networks=["127.0.0.2/32"]' --set 'smime.retry_interval="1h"' ||
	! gw_b_postfix "transport_maps = inline:{ $A=relay:[127.0.0.1]:$SMTP_PORT }"; then
	fail "gateway B (milter on $B_MILTER_PORT, Postfix on $B_SMTP_PORT) started" "$GWB/milter.log" "$GWB/postfix-start.log" "$GWB/postfix.log"
	e2e_finish
fi
pass "gateway B started (Postfix on $B_SMTP_PORT, milter on $B_MILTER_PORT)"

# ------------------------------------------------------------ gateway A
start_milter --set 'profile="seemail"' --set "domains=[\"$A\"]" --set 'internal_networks=["10.255.255.0/24"]' \
	--set "outbound.seemail_domains=[\"$B\"]" \
	--set "smime.identities=[\"$A:$PKI/agency-a-old.crt:$PKI/agency-a-old.key\", \"$A:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]" \
	--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" --set "smime.peers=\"$WORK/peers-a\"" \
	--set "smime.crl_dir=\"$WORK/crl-a\"" --set 'smime.crl_timeout="2s"' \
	--set "smime.held_dir=\"$WORK/held-a\"" --set 'smime.retry_interval="1h"' \
	--set 'smime.request_by_mail=true'
enable_submission "$A" alice "$ALICE_PASS"
POSTFIX_EXTRA_MAIN="transport_maps = inline:{ $B=relay:[127.0.0.1]:$PROXY_PORT }"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# capture_msg PATTERN OUT: the DATA of the first message A sent B whose
# text matches PATTERN, SMTP dot-stuffing undone, CRLF kept.
capture_msg() {
	awk -v pat="$1" '/^DATA\r?$/ {buf=""; on=1; next} on && /^\.\r?$/ {if (hit) {printf "%s", buf; exit} on=0; hit=0; next}
		on {line=$0; if (substr(line,1,2) == "..") line=substr(line,2); buf = buf line "\n"; if (line ~ pat) hit=1}' "$CAPTURE" >"$2"
	[[ -s $2 ]]
}
held_count() { find "$WORK/held-a" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l; }
file_for() { { sink_grep "^X-Test-Id: $1\$" | xargs -r grep -l "^X-Rcpt-Args: <$2>" 2>/dev/null || true; } | head -n 1; }

# ------------------------------------------------------------------ a
id_a=$(unique_id)
rc=0
send_auth alice "$ALICE_PASS" --from "alice@$A" --to "bob@$B" \
	--header "Subject: e2e certrequest $id_a" --add-header "X-Test-Id: $id_a" --body "$BODY_LINE" || rc=$?
if ((rc == 0)) && accepted; then
	pass "a: alice@$A -> bob@$B accepted at A (to be held: no certificate for $B)"
else
	fail "a: accepted at A (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT" "$WORK/milter.log"
fi
delayed() {
	{ sink_grep "e2e certrequest $id_a" | xargs -r grep -l "^X-Rcpt-Args: <alice@$A>" |
		xargs -r grep -l 'SECURE DELIVERY DELAYED' || true; } 2>/dev/null | head -n 1 | grep .
}
if wait_until 20 delayed; then
	assert_contains "$(delayed)" 'Code: 201' "a: SECURE DELIVERY DELAYED [Code: 201] to alice (held: no certificate for $B)"
else
	fail "a: a SECURE DELIVERY DELAYED notice to alice within 20s" "$WORK/milter.log"
fi
assert_contains "$WORK/milter.log" '"kind":"cert-request".*"to":"domain-certificate-request@'"$B"'"' "a: A logged the certificate request to domain-certificate-request@$B"
# Crossed once the whole message is in the capture (up to its final "."),
# not at its first line.
request_crossed() { [[ -f $CAPTURE ]] && capture_msg "^Subject: domain-confidentiality-authority@$B" "$WORK/a.request"; }
if wait_until 30 request_crossed; then
	pass "a: the request crossed from A to B"
	assert_contains "$CAPTURE" "^MAIL FROM:<domain-confidentiality-authority@$A>" "a: its envelope sender is domain-confidentiality-authority@$A (the answer goes there)"
	assert_contains "$WORK/a.request" "^From: domain-confidentiality-authority@$A" "a: From: domain-confidentiality-authority@$A"
	assert_contains "$WORK/a.request" "^To: domain-certificate-request@$B" "a: To: domain-certificate-request@$B (R44)"
	assert_contains "$WORK/a.request" '^Content-Type: multipart/signed; protocol="application/pkcs7-signature"' "a: the request is signed (multipart/signed, RFC 8551 3.5.3)"
	if openssl cms -verify -CAfile "$PKI/ca.crt" -in "$WORK/a.request" -out "$WORK/a.request.out" -signer "$WORK/a.signer.pem" 2>"$WORK/a.verify.err"; then
		pass "a: openssl cms verifies the request's signature against the CA"
		if openssl x509 -in "$WORK/a.signer.pem" -noout -fingerprint -sha256 >"$WORK/a.fp1" 2>&1 &&
			openssl x509 -in "$PKI/agency-a-new.crt" -noout -fingerprint -sha256 >"$WORK/a.fp2" 2>&1 && cmp -s "$WORK/a.fp1" "$WORK/a.fp2"; then
			pass "a: signed by agency-a's newest valid DCA certificate (R37)"
		else
			fail "a: signed by agency-a-new" "$WORK/a.fp1" "$WORK/a.fp2"
		fi
	else
		fail "a: openssl cms verifies the request" "$WORK/a.verify.err" "$WORK/a.request"
	fi
else
	fail "a: the certificate request crossed from A to B within 30s" "$WORK/milter.log" "$WORK/postfix.log"
fi

# ------------------------------------------------------------------ b
stored() { compgen -G "$WORK/peers-a/$B/*.pem" >/dev/null; }
if wait_until 40 stored; then
	pass "b: A stored agency-b's certificate from B's answer"
	if openssl x509 -in "$(compgen -G "$WORK/peers-a/$B/*.pem" | head -n 1)" -noout -fingerprint -sha256 >"$WORK/b.fp1" 2>&1 &&
		openssl x509 -in "$PKI/agency-b.crt" -noout -fingerprint -sha256 >"$WORK/b.fp2" 2>&1 && cmp -s "$WORK/b.fp1" "$WORK/b.fp2"; then
		pass "b: the stored certificate is agency-b's DCA certificate"
	else
		fail "b: the stored certificate is agency-b's" "$WORK/b.fp1" "$WORK/b.fp2"
	fi
else
	fail "b: A stored a certificate for $B within 40s" "$GWB/milter.log" "$WORK/milter.log" "$GWB/postfix.log"
fi
assert_contains "$GWB/milter.log" 'certificate request for domain-confidentiality-authority@'"$B"' from <domain-confidentiality-authority@'"$A"'> answered' "b: B answered the request"
assert_contains "$GWB/milter.log" '"kind":"cert-answer"' "b: B logged the answer (notice cert-answer)"
# Logged in A's decision line, written just after the certificate file.
answer_consumed() { grep -q "certificate answer from $B consumed" "$WORK/milter.log"; }
if wait_until 10 answer_consumed; then
	pass "b: A consumed the answer (logged)"
else
	fail "b: A consumed the answer (logged)" "$WORK/milter.log"
fi
if wait_id "$id_a" 60; then
	pass "b: the held message was released and reached bob@$B (at once, smime.retry_interval is 1h)"
	assert_eq 1 "$(id_count "$id_a")" "b: it reached the sink once"
	f=$(file_for "$id_a" "bob@$B")
	[[ -n $f ]] && sink_headers "$f" >"$WORK/b.headers"
	assert_contains "$WORK/b.headers" '^X-NZ-Secure-email: ' "b: it arrived at B verified (X-NZ-Secure-email)"
	assert_contains "$WORK/b.headers" 'smime=pass' "b: Authentication-Results smime=pass at B"
	assert_contains "$f" "$BODY_LINE" "b: B decrypted it"
	if capture_msg "^X-Test-Id: $id_a" "$WORK/b.capture"; then
		assert_contains "$WORK/b.capture" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "b: it crossed from A to B encrypted"
		assert_not_contains "$WORK/b.capture" "$BODY_LINE" "b: the text was not in clear between the gateways"
	else
		fail "b: the released message crossed the capture" "$CAPTURE"
	fi
	assert_contains "$WORK/milter.log" 'peer certificate received by mail; retrying held mail now' "b: A retried the held mail when the certificate came"
	assert_contains "$WORK/milter.log" '"action":"held-sent"' "b: A logged the release (held-sent)"
	assert_eq 0 "$(held_count)" "b: A's held-mail store is empty"
else
	fail "b: the held message reached bob@$B within 60s of the answer" "$WORK/milter.log" "$GWB/milter.log"
fi
assert_eq 0 "$(sink_grep_count "^Subject: domain-confidentiality-authority@")" "b: the request reached no mailbox (consumed at B)"
assert_eq 0 "$(sink_grep_count "^From: domain-confidentiality-authority@$B")" "b: the answer reached no mailbox (consumed at A)"

# ------------------------------------------------------------------ c
# The converse, whole: B loses agency-a's certificate; bob@agency-b (an
# internal client of B: 127.0.0.2) -> alice@agency-a is held at B, B asks
# A, A answers (signed and encrypted to agency-b: A holds B's certificate
# now), B stores agency-a's certificate and releases the message to A.
c_before=$(grep -c '"msg":"notice queued","kind":"cert-answer"' "$WORK/milter.log" || true)
rm -f "$WORK/peers-b/$A"/*.pem
b_held_count() { find "$GWB/held" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l; }
id_c=$(unique_id)
rc=0
SMTP_PORT=$B_SMTP_PORT send --from "bob@$B" --to "alice@$A" \
	--header "Subject: e2e certrequest reply $id_c" --add-header "X-Test-Id: $id_c" --body "$BODY_LINE" || rc=$?
if ((rc == 0)) && accepted; then
	pass "c: bob@$B -> alice@$A accepted at B (to be held: B has no certificate for $A)"
else
	fail "c: accepted at B (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT" "$GWB/milter.log"
fi
assert_contains "$GWB/milter.log" '"kind":"cert-request".*"to":"domain-certificate-request@'"$A"'"' "c: B sent a certificate request to domain-certificate-request@$A"
answer_crossed() { [[ -f $CAPTURE ]] && capture_msg "^Subject: Certificate of domain-confidentiality-authority@$A" "$WORK/c.answer"; }
if wait_until 30 answer_crossed; then
	pass "c: A answered; the answer crossed to B"
	assert_contains "$WORK/milter.log" "certificate request for domain-confidentiality-authority@$A from <domain-confidentiality-authority@$B> answered" "c: A logged the request it answered"
	assert_contains "$WORK/c.answer" "^To: domain-confidentiality-authority@$B" "c: to the requester"
	assert_contains "$CAPTURE" '^MAIL FROM:<>' "c: from the null sender (R93)"
	assert_contains "$WORK/c.answer" '^Auto-Submitted: auto-replied' "c: Auto-Submitted: auto-replied (RFC 3834)"
	assert_contains "$WORK/c.answer" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "c: signed and encrypted to agency-b (R62: A holds B's certificate)"
	if openssl cms -decrypt -recip "$PKI/agency-b.crt" -inkey "$PKI/agency-b.key" -in "$WORK/c.answer" -out "$WORK/c.dec" 2>"$WORK/c.err" &&
		openssl cms -verify -CAfile "$PKI/ca.crt" -in "$WORK/c.dec" -out "$WORK/c.inner" 2>>"$WORK/c.err"; then
		pass "c: the answer decrypts with agency-b's key and verifies (signed by agency-a)"
		assert_contains "$WORK/c.inner" 'filename="certs.p7c"' "c: the answer carries a .p7c"
		assert_contains "$WORK/c.inner" 'filename="domain-confidentiality-authority-1.cer"' "c: the answer carries a .cer"
		# The .p7c holds agency-a's newest certificate first.
		awk '/filename="certs.p7c"/ {on=1; next} on && /^\r?$/ {if (started) exit; started=1; next} on && started {print}' "$WORK/c.inner" |
			tr -d '\r' | base64 -d >"$WORK/c.p7c" 2>/dev/null || true
		if openssl pkcs7 -inform DER -in "$WORK/c.p7c" -print_certs -out "$WORK/c.certs" 2>>"$WORK/c.err" &&
			[[ $(openssl x509 -in "$WORK/c.certs" -noout -fingerprint -sha256 2>/dev/null) == "$(openssl x509 -in "$PKI/agency-a-new.crt" -noout -fingerprint -sha256)" ]]; then
			pass "c: the .p7c holds agency-a's newest DCA certificate first (R37)"
		else
			fail "c: the .p7c holds agency-a-new first" "$WORK/c.err" "$WORK/c.certs"
		fi
	else
		fail "c: the answer decrypts with agency-b's key and verifies" "$WORK/c.err" "$WORK/c.answer"
	fi
else
	fail "c: A's answer crossed to B within 30s" "$WORK/milter.log" "$GWB/milter.log" "$WORK/postfix.log"
fi
consumed_b() { grep -q "certificate answer from $A consumed" "$GWB/milter.log"; }
if wait_until 20 consumed_b; then
	pass "c: B consumed A's answer"
else
	fail "c: B consumed A's answer within 20s" "$GWB/milter.log"
fi
b_stored() { compgen -G "$WORK/peers-b/$A/*.pem" >/dev/null; }
if wait_until 20 b_stored; then pass "c: B stored agency-a's certificate"; else fail "c: B stored agency-a's certificate" "$GWB/milter.log"; fi
if wait_id "$id_c" 60; then
	pass "c: B released the held message at once; it reached alice@$A"
	assert_eq 1 "$(id_count "$id_c")" "c: it reached the sink once"
	f=$(file_for "$id_c" "alice@$A")
	[[ -n $f ]] && sink_headers "$f" >"$WORK/c.headers"
	assert_contains "$WORK/c.headers" '^X-NZ-Secure-email: ' "c: it arrived at A verified (X-NZ-Secure-email)"
	assert_contains "$f" "$BODY_LINE" "c: A decrypted it"
	assert_contains "$GWB/milter.log" '"action":"held-sent"' "c: B logged the release (held-sent)"
	assert_eq 0 "$(b_held_count)" "c: B's held-mail store is empty"
else
	fail "c: the message held at B reached alice@$A within 60s" "$GWB/milter.log" "$WORK/milter.log"
fi
assert_eq 0 "$(sink_grep_count "^Subject: domain-confidentiality-authority@$A")" "c: B's request reached no mailbox (consumed at A)"

# ------------------------------------------------------------------ d
# Requests by hand (unsigned, answered as signed ones are): one whose
# Subject names no DCA address of ours is consumed, not answered; a valid
# one within smime.retry_interval of the answer in c is consumed and not
# answered (rate limit per requesting domain).
id_d=$(unique_id)
send --from "domain-confidentiality-authority@$B" --to "domain-certificate-request@$A" \
	--header "Subject: please send certificates" --add-header "X-Test-Id: $id_d" --body "x" || true
id_d2=$(unique_id)
send --from "domain-confidentiality-authority@$B" --to "domain-certificate-request@$A" \
	--header "Subject: domain-confidentiality-authority@$A" --add-header "X-Test-Id: $id_d2" --body "y" || true
sleep 3
assert_contains "$WORK/milter.log" 'not answered: its Subject \\"please send certificates\\" is not the DCA address' "d: a request with another Subject is consumed, not answered"
assert_contains "$WORK/milter.log" 'certificate mail suppressed by the rate limit' "d: a second request within the interval is not answered (rate limit)"
assert_eq "$((c_before + 1))" "$(grep -c '"msg":"notice queued","kind":"cert-answer"' "$WORK/milter.log" || true)" "d: A sent exactly one answer to $B"
assert_eq 0 "$(id_count "$id_d")" "d: the request with another Subject reached no mailbox"
assert_eq 0 "$(id_count "$id_d2")" "d: the rate-limited request reached no mailbox"

# ------------------------------------------------------------------ end
wait_until 20 gw_b_queue_empty || true
if gw_b_queue_empty; then pass "all: gateway B's queue is empty"; else fail "all: gateway B's queue is empty" "$GWB/postfix.log"; fi
pf_queue_wait_empty 20 || true
if pf_queue_is_empty; then pass "all: gateway A's queue is empty"; else fail "all: gateway A's queue is empty"; fi

stop_milter
e2e_finish
