#!/usr/bin/env bash
# tests/e2e/smime-outbound.sh: outbound domain S/MIME (RFC 3183, issue 14
# point 3, R62-R72, Table 1 sending column) through a real Postfix.
#
# A fresh test PKI (testdata/smime/make-fixtures.sh with OUT= and CDP_URL=)
# whose CRL distribution point is a loopback HTTP server this script runs.
# We are agency-a.govt.nz (profile seemail: smime.mode on by default), with
# both agency-a identities (R37: the newest signs); the peer store holds
# agency-b.govt.nz (valid) and agency-r.govt.nz (revoked in the CRL).
#
#   a. alice -> bob@agency-b.govt.nz: the sink receives one
#      application/pkcs7-mime enveloped-data message that
#      `openssl cms -decrypt -recip agency-b.crt -inkey agency-b.key` opens
#      and `openssl cms -verify -CAfile ca.crt` accepts (signed by
#      agency-a-new, R37), holding the original text; gpgsm decrypts and
#      verifies it too (when installed).
#   b. alice -> bob@agency-b.govt.nz + someone@internet.example: each gets
#      exactly one copy; only the peer's is encrypted, the internet one is
#      plain text.
#   c. alice -> rita@agency-r.govt.nz (revoked): held by the gateway, never
#      sent (in clear or otherwise); SECURE DELIVERY DELAYED [Code: 201] to
#      alice and to postmaster@agency-a.govt.nz.
#   d. the CRL server down and no CRL cached (milter restarted with an
#      empty smime.crl_dir; our own certificates CRL-bypassed, R59, so the
#      peer's status is what is unknown): alice -> bob@agency-b.govt.nz is
#      held with SECURE DELIVERY DELAYED [Code: 202].
#   all: the queue ends empty; nothing reaches agency-r or reaches agency-b
#   in clear.
#
# c and d use the gateway's hold store (smime.held_dir, the milter's
# HoldStore in serve): the held recipients are stored before the reply.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init smime-outbound
e2e_need python3
DOMAIN=agency-a.govt.nz
PEER=agency-b.govt.nz
ALICE_PASS=alice-secret-1
EXPECT_ONE=()
EXPECT_NONE=()

# ------------------------------------------------------------------- PKI
e2e_pki

PEERS=$WORK/peers
mkdir -p "$PEERS/$PEER" "$PEERS/agency-r.govt.nz"
cp "$PKI/agency-b.crt" "$PEERS/$PEER/agency-b.pem"
cp "$PKI/revoked.crt" "$PEERS/agency-r.govt.nz/revoked.pem"
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'; }

# milter_smime [--set ...]: the milter as agency-a.govt.nz's gateway.
milter_smime() {
	start_milter --set 'profile="seemail"' --set "domains=[\"$DOMAIN\"]" \
		--set "outbound.seemail_domains=[\"$PEER\", \"agency-r.govt.nz\"]" \
		--set "smime.identities=[\"$DOMAIN:$PKI/agency-a-old.crt:$PKI/agency-a-old.key\", \"$DOMAIN:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]" \
		--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" --set "smime.peers=\"$PEERS\"" \
		--set 'smime.crl_timeout="2s"' "$@"
}

cat >"$WORK/zone" <<EOF
; smime-outbound.sh (tests/e2e/dnsd). Other names: NXDOMAIN.
$DOMAIN. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink
milter_smime --set "smime.crl_dir=\"$WORK/crl\""
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# smime_msg ID RCPT... : alice's message with X-Test-Id ID to RCPTs.
BODY_LINE="The plans for the joint exercise are attached below."
smime_msg() {
	local id=$1 to
	shift
	to=$(IFS=,; echo "$*")
	send_auth alice "$ALICE_PASS" --from "alice@$DOMAIN" --to "$to" \
		--header "Subject: e2e smime $id" --add-header "X-Test-Id: $id" \
		--add-header "MIME-Version: 1.0" --add-header "Content-Type: text/plain; charset=us-ascii" \
		--add-header "Content-Transfer-Encoding: 7bit" --body "$BODY_LINE"
}

# open_smime FILE TAG: decrypt with agency-b's key, then verify against
# the CA; writes $WORK/TAG.dec and $WORK/TAG.out; status of the verify.
open_smime() {
	openssl cms -decrypt -recip "$PKI/agency-b.crt" -inkey "$PKI/agency-b.key" -in "$1" -out "$WORK/$2.dec" 2>"$WORK/$2.err" &&
		openssl cms -verify -CAfile "$PKI/ca.crt" -in "$WORK/$2.dec" -out "$WORK/$2.out" -signer "$WORK/$2.signer.pem" 2>>"$WORK/$2.err"
}

# ------------------------------------------------------------------ a
id_a=$(unique_id)
rc=0
smime_msg "$id_a" "bob@$PEER" || rc=$?
expect_accepted "$rc" "$id_a" "a: alice -> bob@$PEER accepted (250)" "a: alice -> bob@$PEER accepted"
if wait_id "$id_a" 20; then
	f=$(file_for "$id_a" "bob@$PEER")
	unfolded_headers "$f" >"$WORK/a.headers"
	assert_contains "$WORK/a.headers" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "a: the peer receives application/pkcs7-mime (enveloped-data)"
	assert_not_contains "$f" "$BODY_LINE" "a: the text is not in clear at the peer"
	assert_eq 1 "$(grep -ci '^Content-Type:' "$WORK/a.headers")" "a: one Content-Type outside (the original's moved inside the signed entity)"
	assert_eq 1 "$(grep -ci '^MIME-Version:' "$WORK/a.headers")" "a: one MIME-Version"
	assert_not_contains "$WORK/a.headers" '^Content-Transfer-Encoding: 7bit' "a: the original Content-Transfer-Encoding is not outside"
	if open_smime "$f" a; then
		pass "a: openssl cms -decrypt with agency-b's key and -verify -CAfile ca.crt accept it"
	else
		fail "a: openssl cms -decrypt/-verify accept it" "$WORK/a.err"
	fi
	assert_contains "$WORK/a.out" "$BODY_LINE" "a: the decrypted, verified content is alice's text"
	assert_contains "$WORK/a.out" '^Content-Type: text/plain; charset=us-ascii' "a: the signed entity carries the original Content-Type"
	if [[ -s $WORK/a.signer.pem ]] && [[ $(fp "$WORK/a.signer.pem") == $(fp "$PKI/agency-a-new.crt") ]]; then
		pass "a: signed with the newest agency-a certificate (R37)"
	else
		fail "a: signed with the newest agency-a certificate (R37)" "$WORK/a.err"
	fi
	if grep -q 'smime-type=signed-data' "$WORK/a.dec"; then
		pass "a: inside the encryption is a signed-data entity (sign, then encrypt)"
	else
		fail "a: inside the encryption is a signed-data entity" "$WORK/a.dec"
	fi
	if command -v gpgsm >/dev/null 2>&1; then
		# A short home under /tmp (gpg-agent's socket path is bounded).
		GH=$(mktemp -d /tmp/nzsm-e2e-gpgsm.XXXXXX)
		printf '%s\n' allow-loopback-pinentry >"$GH/gpg-agent.conf"
		printf '%s\n' disable-crl-checks disable-policy-checks >"$GH/gpgsm.conf"
		fpr=$(openssl x509 -in "$PKI/ca.crt" -noout -fingerprint -sha1 | sed 's/.*=//')
		echo "$fpr S relax" >"$GH/trustlist.txt"
		gpgsm_() { echo e2e | GNUPGHOME=$GH gpgsm --batch --status-fd 2 --pinentry-mode loopback --passphrase-fd 0 "$@"; }
		gpgsm_ --import "$PKI/ca.crt" >>"$WORK/gpgsm.log" 2>&1 || true
		gpgsm_import_key "$GH" "$PKI/agency-b.crt" "$PKI/agency-b.key" "$WORK/gpgsm.log" ||
			fail "a: setup: gpgsm imported agency-b's key" "$WORK/gpgsm.log"
		sink_body "$f" | base64 -d >"$WORK/a.p7m" 2>/dev/null || true
		if gpgsm_ --decrypt "$WORK/a.p7m" >"$WORK/a.gpgsm.dec" 2>>"$WORK/gpgsm.log" &&
			tr -d '\r' <"$WORK/a.gpgsm.dec" | sed '1,/^$/d' | base64 -d >"$WORK/a.gpgsm.p7s" 2>/dev/null &&
			gpgsm_ --verify --output "$WORK/a.gpgsm.out" "$WORK/a.gpgsm.p7s" 2>"$WORK/gpgsm.verify.log" &&
			grep -q 'GOODSIG' "$WORK/gpgsm.verify.log" && grep -q "$BODY_LINE" "$WORK/a.gpgsm.out"; then
			pass "a: gpgsm decrypts and verifies it (GOODSIG)"
		else
			fail "a: gpgsm decrypts and verifies it" "$WORK/gpgsm.log" "$WORK/gpgsm.verify.log"
		fi
		GNUPGHOME=$GH gpgconf --kill all >/dev/null 2>&1 || true
		rm -rf "$GH"
	fi
else
	fail "a: message $id_a reached the sink"
fi
decision_for "$(queue_id)" >"$WORK/a.decision" || true
assert_contains "$WORK/a.decision" '"kind":"smime-sign-encrypt"' "a: the decision lists the smime-sign-encrypt transform"

# ------------------------------------------------------------------ b
id_b=$(unique_id)
rc=0
smime_msg "$id_b" "bob@$PEER" "someone@internet.example" || rc=$?
if ((rc == 0)) && accepted; then
	pass "b: alice -> bob@$PEER + someone@internet.example accepted"
else
	fail "b: alice -> peer + internet accepted (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
wait_until 20 eval '(( $(id_count "$id_b") >= 2 ))' || true
sleep 1
assert_eq 2 "$(id_count "$id_b")" "b: two copies at the sink (one per form)"
n_peer=$(copies_for "$id_b" "bob@$PEER")
n_net=$(copies_for "$id_b" "someone@internet.example")
assert_eq 1 "$n_peer" "b: bob@$PEER got exactly one copy"
assert_eq 1 "$n_net" "b: someone@internet.example got exactly one copy"
fb=$(file_for "$id_b" "bob@$PEER")
fn=$(file_for "$id_b" "someone@internet.example")
if [[ -n $fb && -n $fn ]]; then
	assert_eq 1 "$(grep -c '^X-Rcpt-Args:' "$fb")" "b: the peer's copy is addressed to the peer only"
	assert_contains "$fb" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "b: the peer's copy is encrypted"
	if open_smime "$fb" b && grep -q "$BODY_LINE" "$WORK/b.out"; then
		pass "b: the peer's copy decrypts and verifies"
	else
		fail "b: the peer's copy decrypts and verifies" "$WORK/b.err"
	fi
	assert_not_contains "$fn" 'pkcs7' "b: the internet copy is not S/MIME"
	assert_contains "$fn" "$BODY_LINE" "b: the internet copy is plain text"
	assert_eq 1 "$(grep -c '^X-Rcpt-Args:' "$fn")" "b: the internet copy is addressed to the internet recipient only"
fi
if grep -F '"msg":"forms of the message"' "$WORK/milter.log" | grep -F "someone@internet.example" | grep -q "smime submitted as a copy: bob@$PEER"; then
	pass "b: the milter logged where each recipient went"
else
	fail "b: the milter logged where each recipient went"
fi

# ------------------------------------------------------------------ c
id_c=$(unique_id)
EXPECT_NONE+=("$id_c")
rc=0
smime_msg "$id_c" "rita@agency-r.govt.nz" || rc=$?
if ((rc == 0)) && accepted; then
	pass "c: alice -> rita@agency-r.govt.nz (revoked certificate) accepted for holding"
else
	fail "c: alice -> revoked peer accepted for holding (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
delayed() { generated_for "$1" "SECURE DELIVERY DELAYED.*Code: $2"; }
for to in "alice@$DOMAIN" "postmaster@$DOMAIN"; do
	if wait_until 20 delayed "$to" 201; then
		pass "c: SECURE DELIVERY DELAYED [Code: 201] notice to $to"
	else
		fail "c: SECURE DELIVERY DELAYED [Code: 201] notice to $to"
	fi
done
if grep -F '"msg":"decision"' "$WORK/milter.log" | grep -F '"recipients":["rita@agency-r.govt.nz"]' | grep -qF '"forms":"held 201 (agency-r.govt.nz): rita@agency-r.govt.nz"'; then
	pass "c: the engine decided rita is held (201)"
else
	fail "c: the engine decided rita is held (201)"
fi

# ------------------------------------------------------------------ d
stop_milter
stop_crl_server
milter_smime --set "smime.crl_dir=\"$WORK/crl-empty\"" \
	--set "smime.crl_bypass=[\"$(fp "$PKI/agency-a-new.crt")\", \"$(fp "$PKI/agency-a-old.crt")\"]"
id_d=$(unique_id)
EXPECT_NONE+=("$id_d")
rc=0
smime_msg "$id_d" "bob@$PEER" || rc=$?
if ((rc == 0)) && accepted; then
	pass "d: CRL down, none cached: alice -> bob@$PEER accepted for holding"
else
	fail "d: CRL down, none cached: accepted for holding (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
if wait_until 20 delayed "alice@$DOMAIN" 202; then
	pass "d: SECURE DELIVERY DELAYED [Code: 202] notice to alice@$DOMAIN"
else
	fail "d: SECURE DELIVERY DELAYED [Code: 202] notice to alice@$DOMAIN"
fi

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled held
n=$({ sink_files | xargs -r grep -l '^X-Rcpt-Args: <rita@agency-r.govt.nz>' || true; } | wc -l)
assert_eq 0 "$n" "all: nothing reached the revoked peer"
clear=$({ sink_files | xargs -r grep -l "^X-Rcpt-Args: <bob@$PEER>" | xargs -r grep -l "$BODY_LINE" || true; } | wc -l)
assert_eq 0 "$clear" "all: nothing reached $PEER in clear"

stop_milter
e2e_finish
