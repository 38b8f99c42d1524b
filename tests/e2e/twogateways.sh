#!/usr/bin/env bash
# tests/e2e/twogateways.sh: two agency gateways on loopback, one per domain
# (issue 14, "End-to-end through two Postfix+milter gateways").
#
#   gateway A: agency-a.govt.nz, lib.sh's private Postfix (submission on)
#              with its milter; mail for agency-b.govt.nz is relayed
#              (transport_maps) through a capturing TCP proxy to gateway B,
#              everything else goes to the sink.
#   gateway B: agency-b.govt.nz, a second private Postfix (lib.sh's
#              gw_b_* helpers: its own config, queue, ports, myhostname
#              mx-b.e2e.test) with a second milter; it relays to the sink.
#              Its internal_networks exclude loopback, so A's connection is
#              inbound at B.
#   Both use one test PKI (make-fixtures.sh, CRL on a loopback HTTP server):
#   A holds agency-a's identities and agency-b's certificate, B agency-b's
#   identity and agency-a's certificate.
#
#   a. alice@agency-a -> bob@agency-b.govt.nz: accepted at A; the capture
#      between A and B shows application/pkcs7-mime (enveloped-data) and
#      not the text; it reaches the sink once, through B.
#   b. B's inbound side (decrypt, verify, X-NZ-Secure-email,
#      Authentication-Results smime=): the message arrives at the sink
#      decrypted, with alice's text, X-NZ-Secure-email and smime=pass.
#      This is the inbound helper's work (issue 14 point 4): on a branch
#      without it these checks FAIL (B passes the enveloped data on as
#      it came).
#   c. alice -> bob@agency-b.govt.nz + someone@internet.example: each gets
#      exactly one copy; only the copy that crossed to B is encrypted, the
#      internet one (straight from A to the sink) is plain.
#   d. R62: alice's [RSVPDR] message to bob (A now uses STARTTLS towards B,
#      so B sees alice verified): B's DELIVERY RECEIPT to alice is signed
#      by agency-b and encrypted to agency-a's certificate.
#   e. Table 1 sending column and R57 across the gateways: the distribution
#      point publishes a short-lived CRL that lists agency-b's certificate
#      (tests/e2e/mkcrl); A (restarted on an empty CRL cache) holds alice's
#      message in its own store with SECURE DELIVERY DELAYED 201 to alice
#      and A's postmaster, nothing crosses to B; the distribution point then
#      publishes a CRL that no longer lists it, and A's automatic retry
#      (smime.retry_interval) sends the message, signed and encrypted, once
#      the short CRL has expired: it arrives at B verified, once, and A's
#      store is empty.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init twogateways
e2e_need python3
A=agency-a.govt.nz
B=agency-b.govt.nz
ALICE_PASS=alice-secret-1
BODY_LINE="Minutes of the joint steering group, for agency B."

# ------------------------------------------------------------------- PKI
e2e_pki

mkdir -p "$WORK/peers-a/$B" "$WORK/peers-b/$A"
cp "$PKI/agency-b.crt" "$WORK/peers-a/$B/agency-b.pem"
cp "$PKI/agency-a-new.crt" "$WORK/peers-b/$A/agency-a-new.pem"

cat >"$WORK/zone" <<EOF
; twogateways.sh (tests/e2e/dnsd). Other names: NXDOMAIN.
$A. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
$B. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink

# ------------------------------------------------ capture and gateway B
# lib.sh: start_capture_proxy, gw_b_milter, gw_b_postfix, gw_b_queue_empty.
start_capture_proxy || { fail "capture proxy listens" "$WORK/proxy.log"; e2e_finish; }
if ! gw_b_milter || ! gw_b_postfix; then
	fail "gateway B (milter on $B_MILTER_PORT, Postfix on $B_SMTP_PORT) started" "$GWB/milter.log" "$GWB/postfix-start.log" "$GWB/postfix.log"
	e2e_finish
fi
pass "gateway B started (Postfix on $B_SMTP_PORT, milter on $B_MILTER_PORT)"

# ------------------------------------------------------------ gateway A
start_milter --set 'profile="seemail"' --set "domains=[\"$A\"]" \
	--set "outbound.seemail_domains=[\"$B\"]" \
	--set "smime.identities=[\"$A:$PKI/agency-a-old.crt:$PKI/agency-a-old.key\", \"$A:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]" \
	--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" --set "smime.peers=\"$WORK/peers-a\"" \
	--set "smime.crl_dir=\"$WORK/crl-a\"" --set 'smime.crl_timeout="2s"'
enable_submission "$A" alice "$ALICE_PASS"
POSTFIX_EXTRA_MAIN="transport_maps = inline:{ $B=relay:[127.0.0.1]:$PROXY_PORT }"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

msg_to() {
	local id=$1 to
	shift
	to=$(IFS=,; echo "$*")
	send_auth alice "$ALICE_PASS" --from "alice@$A" --to "$to" \
		--header "Subject: e2e two gateways $id" --add-header "X-Test-Id: $id" --body "$BODY_LINE"
}

# ------------------------------------------------------------------ a
id_a=$(unique_id)
rc=0
msg_to "$id_a" "bob@$B" || rc=$?
if ((rc == 0)) && accepted; then
	pass "a: alice@$A -> bob@$B accepted at gateway A"
else
	fail "a: accepted at gateway A (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
# capture_of ID OUT: the whole SMTP DATA (up to its final ".") of the
# message with X-Test-Id ID that A sent B, into OUT; false until it is all
# in the capture.
capture_of() {
	[[ -f $CAPTURE ]] || return 1
	awk -v id="$1" '/^DATA/ {buf=""} {buf = buf $0 "\n"} $0 ~ "^X-Test-Id: " id {hit=1} /^\.\r?$/ {if (hit) {printf "%s", buf; exit}}' "$CAPTURE" >"$2"
	[[ -s $2 ]]
}
crossed() { capture_of "$id_a" "$WORK/a.capture"; }
if wait_until 30 crossed; then
	pass "a: the message crossed from A to B through the capture"
	assert_contains "$WORK/a.capture" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "a: the capture between A and B shows application/pkcs7-mime (enveloped-data)"
	assert_not_contains "$WORK/a.capture" "$BODY_LINE" "a: the text is not in clear between the gateways"
else
	fail "a: the message crossed from A to B within 30s" "$GWB/postfix.log"
fi
if wait_id "$id_a" 30; then
	assert_eq 1 "$(id_count "$id_a")" "a: it reached the sink once, through B"
	f=$(file_for "$id_a" "bob@$B")
	[[ -n $f ]] && sink_headers "$f" >"$WORK/a.headers"
	# ---------------------------------------------------------------- b
	assert_contains "$f" "$BODY_LINE" "b: B decrypted it: alice's text arrives in clear (inbound helper's work)"
	assert_not_contains "$f" 'application/pkcs7-mime' "b: no enveloped data left at delivery (inbound helper's work)"
	assert_contains "$WORK/a.headers" '^X-NZ-Secure-email: ' "b: delivered verified with X-NZ-Secure-email (inbound helper's work)"
	assert_contains "$WORK/a.headers" 'smime=pass' "b: Authentication-Results smime=pass (inbound helper's work)"
else
	fail "a: message $id_a reached the sink through B within 30s" "$GWB/postfix.log" "$GWB/milter.log"
fi

# ------------------------------------------------------------------ c
id_c=$(unique_id)
rc=0
msg_to "$id_c" "bob@$B" "someone@internet.example" || rc=$?
if ((rc == 0)) && accepted; then
	pass "c: alice -> bob@$B + someone@internet.example accepted at A"
else
	fail "c: accepted at A (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
two() { (($(id_count "$id_c") >= 2)); }
wait_until 30 two || true
sleep 1
assert_eq 2 "$(id_count "$id_c")" "c: two messages at the sink"
n_b=$(copies_for "$id_c" "bob@$B")
n_i=$(copies_for "$id_c" "someone@internet.example")
assert_eq 1 "$n_b" "c: bob@$B got exactly one copy"
assert_eq 1 "$n_i" "c: someone@internet.example got exactly one copy"
n_x=$(grep -c "^X-Test-Id: $id_c" "$CAPTURE" 2>/dev/null || true)
assert_eq 1 "${n_x:-0}" "c: one copy crossed to B (the internet one did not)"
capture_of "$id_c" "$WORK/c.capture" || true
assert_contains "$WORK/c.capture" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "c: the copy that crossed to B is encrypted"
fi_=$(file_for "$id_c" "someone@internet.example")
if [[ -n $fi_ ]]; then
	assert_contains "$fi_" "$BODY_LINE" "c: the internet copy is plain text"
	assert_not_contains "$fi_" 'pkcs7' "c: the internet copy is not S/MIME"
fi

# ------------------------------------------------------------------ d
# R62: B answers alice's [RSVPDR] with a DELIVERY RECEIPT (R73: B must see
# alice verified, SPF pass over TLS: A now offers STARTTLS to B, so the
# capture after this point is TLS); B's notifier signs and encrypts it to
# agency-a's certificate. It reaches the sink (B relays everything there)
# as application/pkcs7-mime that agency-a's key opens.
pf_postconf -e 'smtp_tls_security_level = may' >/dev/null
postfix_cmd reload >/dev/null 2>&1 || true
sleep 1
id_d=$(unique_id)
rc=0
send_auth alice "$ALICE_PASS" --from "alice@$A" --to "bob@$B" \
	--header "Subject: e2e two gateways receipt $id_d [RSVPDR]" --add-header "X-Test-Id: $id_d" --body "$BODY_LINE" || rc=$?
if ((rc == 0)) && accepted; then
	pass "d: alice -> bob@$B with [RSVPDR] accepted at A"
else
	fail "d: [RSVPDR] accepted at A (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
# B's receipt (A's own, R73 for its authenticated sender, comes from
# postmaster@$A); the Subject may be folded, so the id is matched anywhere.
receipt() {
	{ sink_grep "$id_d" | xargs -r grep -l "^X-Rcpt-Args: <alice@$A>" | xargs -r grep -l "^From: Postmaster <postmaster@$B>" |
		xargs -r grep -l '^Subject: DELIVERY RECEIPT' || true; } 2>/dev/null | head -n 1 | grep .
}
if wait_until 30 receipt; then
	fr=$(receipt)
	pass "d: B's DELIVERY RECEIPT to alice@$A reached the sink"
	assert_contains "$fr" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "d: the receipt to the peer agency is encrypted (R62)"
	if openssl cms -decrypt -recip "$PKI/agency-a-new.crt" -inkey "$PKI/agency-a-new.key" -in "$fr" -out "$WORK/d.dec" 2>"$WORK/d.err" &&
		openssl cms -verify -CAfile "$PKI/ca.crt" -in "$WORK/d.dec" -out "$WORK/d.out" 2>>"$WORK/d.err"; then
		pass "d: the receipt decrypts with agency-a's key and verifies (signed by agency-b)"
	else
		fail "d: the receipt decrypts with agency-a's key and verifies" "$WORK/d.err"
	fi
else
	fail "d: a DELIVERY RECEIPT from B to alice@$A reached the sink within 30s (B must see alice verified: TLS between the gateways and SPF pass)" "$GWB/milter.log"
fi

# ------------------------------------------------------------------ e
if go build -o "$WORK/mkcrl" "$REPO_ROOT/tests/e2e/mkcrl" 2>"$WORK/mkcrl-build.log" &&
	"$WORK/mkcrl" -ca "$PKI/ca.crt" -key "$PKI/ca.key" -revoke "$PKI/agency-b.crt" -this -5s -next 25s \
		-out "$CRL_SERVED/ca.crl.new" 2>>"$WORK/mkcrl-build.log" && mv "$CRL_SERVED/ca.crl.new" "$CRL_SERVED/ca.crl"; then
	pass "e: the distribution point publishes a CRL listing agency-b (nextUpdate in 25s)"
else
	fail "e: a short-lived CRL listing agency-b" "$WORK/mkcrl-build.log"
fi
stop_milter
start_milter --set 'profile="seemail"' --set "domains=[\"$A\"]" \
	--set "outbound.seemail_domains=[\"$B\"]" \
	--set "smime.identities=[\"$A:$PKI/agency-a-old.crt:$PKI/agency-a-old.key\", \"$A:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]" \
	--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" --set "smime.peers=\"$WORK/peers-a\"" \
	--set "smime.crl_dir=\"$WORK/crl-a-e\"" --set 'smime.crl_timeout="2s"' \
	--set "smime.held_dir=\"$WORK/held-a\"" --set 'smime.retry_interval="1m"'
held_count() { find "$WORK/held-a" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l; }
b_enveloped_count() { grep -c 'inbound S/MIME: layers enveloped+signed' "$GWB/milter.log" || true; }
b_enveloped=$(b_enveloped_count)
id_e=$(unique_id)
rc=0
msg_to "$id_e" "bob@$B" || rc=$?
if ((rc == 0)) && accepted; then
	pass "e: alice -> bob@$B (certificate revoked) accepted at A for holding"
else
	fail "e: accepted at A for holding (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT" "$WORK/milter.log"
fi
delayed_to() {
	{ sink_grep "e2e two gateways $id_e" | xargs -r grep -l "^X-Rcpt-Args: <$1>" |
		xargs -r grep -l 'SECURE DELIVERY DELAYED' || true; } 2>/dev/null | head -n 1 | grep .
}
for who in "alice@$A" "postmaster@$A"; do
	if wait_until 20 delayed_to "$who"; then
		assert_contains "$(delayed_to "$who")" 'Code: 201' "e: SECURE DELIVERY DELAYED [Code: 201] to $who"
	else
		fail "e: a SECURE DELIVERY DELAYED notice to $who within 20s" "$WORK/milter.log"
	fi
done
assert_eq 1 "$(held_count)" "e: the message is in A's own held-mail store"
assert_eq "$b_enveloped" "$(b_enveloped_count)" "e: nothing reached B while the certificate is revoked"
if "$WORK/mkcrl" -ca "$PKI/ca.crt" -key "$PKI/ca.key" -this 0s -next 1h -out "$CRL_SERVED/ca.crl.new" 2>>"$WORK/mkcrl-build.log" &&
	mv "$CRL_SERVED/ca.crl.new" "$CRL_SERVED/ca.crl"; then
	pass "e: the distribution point publishes a CRL that no longer lists agency-b"
else
	fail "e: a CRL lifting the revocation" "$WORK/mkcrl-build.log"
fi
if wait_id "$id_e" 150; then
	assert_eq 1 "$(id_count "$id_e")" "e: the automatic retry sent it: it reached the sink once, through B"
	# The link is TLS since d, so B's decision log is the witness.
	assert_eq $((b_enveloped + 1)) "$(b_enveloped_count)" "e: the released message reached B signed and encrypted (one more enveloped+signed message in B's log)"
	f=$(file_for "$id_e" "bob@$B")
	[[ -n $f ]] && sink_headers "$f" >"$WORK/e.headers"
	assert_contains "$WORK/e.headers" '^X-NZ-Secure-email: ' "e: it arrived at B verified (X-NZ-Secure-email)"
	assert_contains "$f" "$BODY_LINE" "e: B decrypted it"
	assert_eq 0 "$(held_count)" "e: A's held-mail store is empty"
	assert_contains "$WORK/milter.log" '"action":"held-sent"' "e: A logged the release (held-sent)"
else
	fail "e: the retry sent the message within 150s of the revocation being lifted" "$WORK/milter.log"
fi

# ------------------------------------------------------------------ end
wait_until 20 gw_b_queue_empty || true
if gw_b_queue_empty; then pass "all: gateway B's queue is empty"; else fail "all: gateway B's queue is empty" "$GWB/postfix.log"; fi
pf_queue_wait_empty 20 || true
if pf_queue_is_empty; then pass "all: gateway A's queue is empty"; else fail "all: gateway A's queue is empty"; fi

stop_milter
e2e_finish
