#!/usr/bin/env bash
# tests/e2e/smime-inbound.sh: inbound domain S/MIME (issue 14 point 4,
# R76-R89, Table 1 receiving column) through a real Postfix.
#
# The gateway is agency-a.govt.nz with smime.mode = on, its DCA identity
# from a fresh test PKI (testdata/smime/make-fixtures.sh with OUT and a
# CDP_URL on loopback, whose CRL a python3 http.server serves), the test
# CA as trust anchor and agency-b/agency-r on the SEEMail list. Peer
# gateways are simulated by `openssl cms` (and gpgsm when installed),
# sending from 127.0.0.2 over TLS with SPF passing.
#
#   a. agency-b signs (detached) and encrypts to agency-a: the copy at the
#      sink is decrypted (no pkcs7 anywhere), carries X-NZ-Secure-email and
#      Authentication-Results smime=pass; the signer is learned into the
#      peer store (R50, R83) with its capabilities (R84).
#   b. the same opaque-signed (openssl cms -nodetach): verified likewise.
#   c. agency-r (its certificate revoked in the CRL fetched over HTTP)
#      signs and encrypts: delivered decrypted with the UNVERIFIED warning
#      101, and agency-a's postmaster gets a notice with code 101.
#   d. agency-b signs but does not encrypt: warning 008.
#   e. encrypted to agency-b's certificate, not ours (R80): delivered as
#      received (the encrypted original attached to the warning), with
#      warning 112, not tagged, smime=permerror.
#   f. (gpgsm installed) agency-b signs and encrypts with gpgsm: verified.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init smime-inbound
e2e_need openssl python3
DOMAIN=agency-a.govt.nz
USER=user@$DOMAIN
ADMIN=postmaster@$DOMAIN
EXPECT_ONE=()
EXPECT_NONE=()

# ------------------------------------------------------------ the PKI
e2e_pki

cat >"$WORK/zone" <<EOF
; smime-inbound.sh (tests/e2e/dnsd). The peer gateways send from 127.0.0.2.
agency-b.govt.nz.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
agency-r.govt.nz.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
$DOMAIN.            300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]" \
	--set 'outbound.seemail_domains=["agency-b.govt.nz","agency-r.govt.nz"]' \
	--set 'smime.mode="on"' \
	--set "smime.identities=[\"$DOMAIN:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]" \
	--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" \
	--set "smime.peers=\"$WORK/peers\"" --set "smime.crl_dir=\"$WORK/crl\"" --set 'smime.crl_timeout="5s"'
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# peer_eml FILE ID FROM KIND SIGNER RCPTCERT: a peer gateway's message
# (CRLF): outer headers, then openssl cms output. KIND: detached, opaque
# (signed then encrypted to RCPTCERT), signonly.
peer_eml() {
	local file=$1 id=$2 from=$3 kind=$4 signer=$5 rcpt=$6
	printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nKia ora,\r\n\r\nThe figures are [IN-CONFIDENCE] until Friday (%s).\r\n' "$id" >"$file.inner"
	local sign=(openssl cms -sign -in "$file.inner" -signer "$PKI/$signer.crt" -inkey "$PKI/$signer.key" -certfile "$PKI/ca.crt" -outform SMIME -crlfeol)
	[[ $kind == detached ]] || sign+=(-nodetach)
	{
		printf '%s\r\n' "From: Officer <$from>" "To: <$USER>" "Subject: e2e smime-inbound $id" "X-Test-Id: $id" \
			"Date: $(date -R)" "Message-ID: <$id@peer.e2e.test>"
		if [[ $kind == signonly ]]; then
			"${sign[@]}"
		else
			"${sign[@]}" | openssl cms -encrypt -aes256 -outform SMIME -crlfeol "$PKI/$rcpt.crt"
		fi
	} >"$file"
}

# deliver_peer ID FROM LABEL: send $WORK/ID.eml inbound over TLS; it must
# be accepted and reach the sink; sets GOT (the sink file) and GOT_H (its
# unfolded headers).
deliver_peer() {
	local id=$1 from=$2 label=$3 rc=0
	GOT= GOT_H=$WORK/$id.headers
	send --tls --from "$from" --to "$USER" --data "$WORK/$id.eml" || rc=$?
	expect_accepted "$rc" "$id" "$label: accepted (250)" "$label: accepted"
	if wait_id "$id" 30; then
		GOT=$(sink_grep "^X-Test-Id: $id\$" | head -n 1)
		unfolded_headers "$GOT" >"$GOT_H"
	else
		fail "$label: message $id reached the sink"
		GOT=/nonexistent GOT_H=/nonexistent
	fi
}

# verified LABEL: the sink copy is the decrypted, verified message.
verified() {
	local label=$1
	assert_not_contains "$GOT" 'pkcs7|smime\.p7' "$label (R88-R89): delivered decrypted, the S/MIME layers stripped (no pkcs7 in the sink copy)"
	assert_contains "$GOT" 'The figures are \[IN-CONFIDENCE\] until Friday' "$label: the recipient reads the decrypted text"
	assert_contains "$GOT_H" '^X-NZ-Secure-email: compliant; classification="IN-CONFIDENCE"' "$label (R60, R76): tagged X-NZ-Secure-email, classified on the decrypted content"
	assert_contains "$GOT_H" '^Authentication-Results: .*smime=pass body\.smime-identifier=domain-confidentiality-authority@agency-b\.govt\.nz' "$label: Authentication-Results smime=pass for agency-b's DCA"
	assert_not_contains "$GOT_H" '^X-NZ-Secure-Warning:' "$label: no warning"
}

# ------------------------------------------------------------------ a
id_a=$(unique_id)
peer_eml "$WORK/$id_a.eml" "$id_a" officer@agency-b.govt.nz detached agency-b agency-a-new
assert_not_contains "$WORK/$id_a.eml" 'IN-CONFIDENCE' "a: test setup: the marking is not readable in the encrypted message"
deliver_peer "$id_a" officer@agency-b.govt.nz "a (detached, openssl)"
verified "a (detached, openssl)"
if compgen -G "$WORK/peers/agency-b.govt.nz/*.pem" >/dev/null; then
	pass "a (R50, R83): agency-b's certificate learned into the peer store"
else
	fail "a (R50, R83): agency-b's certificate learned into the peer store ($(ls -R "$WORK/peers" 2>&1 | tr '\n' ' '))"
fi
assert_contains "$WORK/peers/agency-b.govt.nz/capabilities" '^2\.16\.840\.1\.101\.3\.4\.1\.42$' "a (R84): agency-b's S/MIME capabilities cached (AES-256-CBC announced by openssl)"

# ------------------------------------------------------------------ b
id_b=$(unique_id)
peer_eml "$WORK/$id_b.eml" "$id_b" officer@agency-b.govt.nz opaque agency-b agency-a-new
deliver_peer "$id_b" officer@agency-b.govt.nz "b (opaque, openssl)"
verified "b (opaque, openssl)"

# ------------------------------------------------------------------ c
id_c=$(unique_id)
peer_eml "$WORK/$id_c.eml" "$id_c" officer@agency-r.govt.nz detached revoked agency-a-new
deliver_peer "$id_c" officer@agency-r.govt.nz "c (revoked signer)"
assert_contains "$GOT_H" '^X-NZ-Secure-Warning: 101 UNVERIFIED MESSAGE' "c (Table 1): revoked sender's certificate: UNVERIFIED warning 101"
assert_not_contains "$GOT" 'pkcs7' "c (Table 1: deliver): delivered decrypted under the warning"
assert_not_contains "$GOT_H" '^X-NZ-Secure-email:' "c: not tagged compliant"
assert_contains "$GOT_H" 'smime=policy' "c: Authentication-Results smime=policy (good signature, revoked certificate)"
has_notice_c() { [[ -n $(generated_for "$ADMIN" "e2e smime-inbound $id_c") ]]; }
if wait_until 30 has_notice_c; then
	n=$(generated_for "$ADMIN" "e2e smime-inbound $id_c")
	assert_contains "$n" 'Code: 101' "c (Table 1): the recipient's postmaster is notified with code 101"
else
	fail "c (Table 1): a notice about $id_c reached $ADMIN within 30s"
fi
if compgen -G "$WORK/peers/agency-r.govt.nz/*.pem" >/dev/null; then
	fail "c (R50): a revoked certificate was learned"
else
	pass "c (R50): the revoked certificate was not learned"
fi

# ------------------------------------------------------------------ d
id_d=$(unique_id)
peer_eml "$WORK/$id_d.eml" "$id_d" officer@agency-b.govt.nz signonly agency-b agency-a-new
deliver_peer "$id_d" officer@agency-b.govt.nz "d (signed only)"
assert_contains "$GOT_H" '^X-NZ-Secure-Warning: 008 UNVERIFIED MESSAGE' "d (Table 3): signed but not encrypted by a participating agency: warning 008"
assert_not_contains "$GOT_H" '^X-NZ-Secure-email:' "d: not tagged compliant"

# ------------------------------------------------------------------ e
id_e=$(unique_id)
peer_eml "$WORK/$id_e.eml" "$id_e" officer@agency-b.govt.nz detached agency-b agency-b
deliver_peer "$id_e" officer@agency-b.govt.nz "e (not for us, R80)"
assert_contains "$GOT_H" '^X-NZ-Secure-Warning: 112 UNVERIFIED MESSAGE' "e (R80): undecryptable: delivered with the UNVERIFIED warning 112"
assert_contains "$GOT" 'application/pkcs7-mime' "e (R80): delivered as received (the encrypted original attached)"
assert_not_contains "$GOT_H" '^X-NZ-Secure-email:' "e: not tagged compliant"
assert_contains "$GOT_H" 'smime=permerror' "e: Authentication-Results smime=permerror"

# ------------------------------------------------------------------ f
if command -v gpgsm >/dev/null 2>&1; then
	id_f=$(unique_id)
	# A short home: gpg-agent's socket path must fit in 108 bytes.
	G=$(mktemp -d /tmp/nzsm-e2e-XXXXXX)
	chmod 700 "$G"
	printf 'allow-loopback-pinentry\n' >"$G/gpg-agent.conf"
	gs() { GNUPGHOME=$G gpgsm --batch --disable-crl-checks --disable-policy-checks "$@"; }
	gs --import "$PKI/ca.crt" "$PKI/agency-a-new.crt" >"$WORK/gpgsm.log" 2>&1 || true
	gpgsm_import_key "$G" "$PKI/agency-b.crt" "$PKI/agency-b.key" "$WORK/gpgsm.log" ||
		fail "f (gpgsm): setup: gpgsm imported agency-b's key" "$WORK/gpgsm.log"
	# Trust the test CA without asking (gpgsm's trustlist).
	fpr=$(openssl x509 -in "$PKI/ca.crt" -noout -fingerprint -sha1 | sed 's/.*=//')
	printf '%s S relax\n' "$fpr" >"$G/trustlist.txt"
	printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nKia ora,\r\n\r\nThe figures are [IN-CONFIDENCE] until Friday (%s).\r\n' "$id_f" >"$WORK/$id_f.inner"
	rc=0
	printf 'e2e\n' | gs --pinentry-mode loopback --passphrase-fd 0 -u domain-confidentiality-authority@agency-b.govt.nz \
		--sign -o "$WORK/$id_f.sig" "$WORK/$id_f.inner" >>"$WORK/gpgsm.log" 2>&1 || rc=$?
	{ printf 'Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n'; base64 -w 76 "$WORK/$id_f.sig" | sed 's/$/\r/'; } >"$WORK/$id_f.signed" 2>/dev/null || rc=1
	gs -r domain-confidentiality-authority@agency-a.govt.nz --encrypt -o "$WORK/$id_f.env" "$WORK/$id_f.signed" >>"$WORK/gpgsm.log" 2>&1 || rc=$?
	if ((rc == 0)); then
		{
			printf '%s\r\n' "From: Officer <officer@agency-b.govt.nz>" "To: <$USER>" "Subject: e2e smime-inbound $id_f" "X-Test-Id: $id_f" \
				"Date: $(date -R)" "Message-ID: <$id_f@peer.e2e.test>" "MIME-Version: 1.0" \
				'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"' "Content-Transfer-Encoding: base64" ""
			base64 -w 76 "$WORK/$id_f.env" | sed 's/$/\r/'
		} >"$WORK/$id_f.eml"
		deliver_peer "$id_f" officer@agency-b.govt.nz "f (gpgsm)"
		verified "f (gpgsm)"
	else
		fail "f: gpgsm signed and encrypted the test message" "$WORK/gpgsm.log"
	fi
	GNUPGHOME=$G gpgconf --kill gpg-agent >/dev/null 2>&1 || true
	rm -rf "$G"
else
	e2e_log "gpgsm not installed: scenario f not run"
fi

assert_nothing_lost_or_doubled smime-inbound
stop_milter
e2e_finish
