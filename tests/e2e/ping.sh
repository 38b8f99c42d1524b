#!/usr/bin/env bash
# tests/e2e/ping.sh: the signed ping (R96-R99, issue 15 point 4) through a
# real Postfix.
#
# The gateway is agency-a.govt.nz with smime.mode = on, its DCA identity
# from a fresh test PKI (testdata/smime/make-fixtures.sh with OUT and a
# CDP_URL on loopback, whose CRL a python3 http.server serves), the test CA
# as trust anchor. No peer is on the SEEMail list and the peer store starts
# empty: a signed ping teaches the gateway its signer's certificate (R50).
# The pinging gateways are simulated by `openssl cms`, sending from
# 127.0.0.2 over TLS with SPF passing.
#
#   a. agency-b signs (opaque) and encrypts to agency-a's certificate a
#      ping to ping@agency-a.govt.nz: it is consumed (not delivered) and
#      the answer at the sink is application/pkcs7-mime (enveloped-data)
#      that `openssl cms -decrypt -recip agency-b.crt -inkey agency-b.key`
#      opens and `openssl cms -verify -CAfile ca.crt` accepts, signed with
#      agency-a's newest DCA certificate; the signed text names the product
#      and version and the Secure Email environment (R99) and says the ping
#      was verified; none of that text is readable outside the encryption.
#   b. an unsigned ping from the internet: answered in clear (text/plain,
#      no pkcs7), product and version, "not signed or encrypted".
#   c. agency-u signs with a certificate of a CA nobody trusts: answered as
#      an unsigned ping, in clear, saying why (102); never encrypted to the
#      certificate it carried.
#   d. agency-r signs with its certificate revoked in the CRL fetched over
#      HTTP: answered in clear, saying why (101).
#   e. selftest --peers (R19): the pings leave through the MTA (to agency-b,
#      learned in a, signed and encrypted); the test answers as agency-b
#      (signed and encrypted: PASS, "S/MIME verified") and as agency-u
#      (signed by an untrusted certificate: FAIL, 102); exit 1.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init ping
e2e_need openssl python3
DOMAIN=agency-a.govt.nz
PING=ping@$DOMAIN
EXPECT_ONE=()
EXPECT_NONE=()

# ------------------------------------------------------------ the PKI
e2e_pki

cat >"$WORK/zone" <<EOF
; ping.sh (tests/e2e/dnsd). The pinging gateways send from 127.0.0.2.
agency-b.govt.nz.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
agency-r.govt.nz.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
agency-u.govt.nz.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
internet.example.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
$DOMAIN.            300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink
MILTER_SETS=(--set "domains=[\"$DOMAIN\"]"
	--set 'smime.mode="on"'
	--set "smime.identities=[\"$DOMAIN:$PKI/agency-a-old.crt:$PKI/agency-a-old.key\",\"$DOMAIN:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]"
	--set "smime.trust_anchors=[\"$PKI/ca.crt\"]"
	--set "smime.peers=\"$WORK/peers\"" --set "smime.crl_dir=\"$WORK/crl\"" --set 'smime.crl_timeout="5s"')
start_milter "${MILTER_SETS[@]}"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"
product=$("$NZBIN" version | awk 'NR == 1 { print $1 " " $2 }')
product_re=$(printf '%s' "$product" | sed 's/[.[\*^$()+?{|]/\\&/g')

# ping_eml FILE ID FROM SIGNER [RCPTCERT]: a ping from FROM's gateway
# (CRLF): outer headers, then `openssl cms -sign -nodetach` by SIGNER,
# encrypted to RCPTCERT when given.
ping_eml() {
	local file=$1 id=$2 from=$3 signer=$4 rcpt=${5:-}
	printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nPing from the gateway of %s (%s).\r\n' "${from#*@}" "$id" >"$file.inner"
	{
		printf '%s\r\n' "From: Gateway <$from>" "To: <$PING>" "Subject: e2e ping $id" "X-Test-Id: $id" \
			"Date: $(date -R)" "Message-ID: <$id@peer.e2e.test>"
		if [[ -n $rcpt ]]; then
			openssl cms -sign -nodetach -in "$file.inner" -signer "$PKI/$signer.crt" -inkey "$PKI/$signer.key" -certfile "$PKI/ca.crt" -outform SMIME -crlfeol |
				openssl cms -encrypt -aes256 -outform SMIME -crlfeol "$PKI/$rcpt.crt"
		else
			openssl cms -sign -nodetach -in "$file.inner" -signer "$PKI/$signer.crt" -inkey "$PKI/$signer.key" -certfile "$PKI/ca.crt" -outform SMIME -crlfeol
		fi
	} >"$file"
}

# ping ID FROM LABEL [DATAFILE]: sends a ping to $PING over TLS (the file,
# or a plain text one); it must be accepted. The ping itself must never
# reach the sink.
ping() {
	local id=$1 from=$2 label=$3 data=${4:-} rc=0
	EXPECT_NONE+=("$id")
	if [[ -n $data ]]; then
		send --tls --from "$from" --to "$PING" --data "$data" || rc=$?
	else
		send --tls --from "$from" --to "$PING" --header "Subject: e2e ping $id" --add-header "X-Test-Id: $id" \
			--body "ping ($id)" || rc=$?
	fi
	if ((rc == 0)) && accepted; then
		pass "$label (R96): the ping to $PING accepted (250)"
	else
		fail "$label (R96): the ping to $PING accepted (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
	fi
}

# answer_for ID RCPT: the sink file of the ping answer about ping ID to
# RCPT (its Subject is outside the encryption).
answer_for() { generated_for "$2" "^Subject: PING REPLY: e2e ping $1\$" || true; }

# wait_answer ID RCPT LABEL: waits (30s) for the answer; sets ANS.
wait_answer() {
	local id=$1 rcpt=$2 label=$3
	has_answer() { [[ -n $(answer_for "$id" "$rcpt") ]]; }
	ANS=
	if wait_until 30 has_answer; then
		ANS=$(answer_for "$id" "$rcpt")
		pass "$label (R96): an answer to <$rcpt> reached the sink"
	else
		fail "$label (R96): an answer (Subject: PING REPLY: e2e ping $id) to <$rcpt> reached the sink within 30s"
	fi
}

# clear_answer TAG LABEL CODE...: $ANS is in clear: text/plain, no pkcs7,
# the product and version; its text (decoded) goes to $WORK/TAG.txt.
clear_answer() {
	local tag=$1 label=$2
	if [[ -z $ANS ]]; then
		fail "$label: no answer to check"
		return
	fi
	unfolded_headers "$ANS" >"$WORK/$tag.headers"
	assert_contains "$WORK/$tag.headers" '^Content-Type: text/plain' "$label: the answer is in clear (text/plain)"
	assert_not_contains "$ANS" 'pkcs7' "$label: the answer is not signed or encrypted (no pkcs7)"
	sink_body "$ANS" >"$WORK/$tag.body"
	qp_decode "$WORK/$tag.body" >"$WORK/$tag.txt"
	assert_contains "$WORK/$tag.txt" "^Gateway software: $product_re\$" "$label (R99): the answer names the product and version ($product)"
}

# ------------------------------------------------------------------ a
id_a=$(unique_id)
ping_eml "$WORK/$id_a.eml" "$id_a" "ping@agency-b.govt.nz" agency-b agency-a-new
assert_not_contains "$WORK/$id_a.eml" 'Ping from the gateway' "a: test setup: the ping's text is not readable in the encrypted message"
ping "$id_a" "ping@agency-b.govt.nz" "a (signed and encrypted)" "$WORK/$id_a.eml"
wait_answer "$id_a" "ping@agency-b.govt.nz" "a (signed and encrypted)"
if [[ -n $ANS ]]; then
	unfolded_headers "$ANS" >"$WORK/a.headers"
	assert_contains "$WORK/a.headers" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "a (R98): the answer is application/pkcs7-mime (enveloped-data)"
	assert_not_contains "$ANS" 'Gateway software|Secure Email ping reply' "a (R98): the answer's text is not readable outside the encryption"
	if openssl cms -decrypt -recip "$PKI/agency-b.crt" -inkey "$PKI/agency-b.key" -in "$ANS" -out "$WORK/a.dec" 2>"$WORK/a.err" &&
		openssl cms -verify -CAfile "$PKI/ca.crt" -in "$WORK/a.dec" -out "$WORK/a.out" -signer "$WORK/a.signer.pem" 2>>"$WORK/a.err"; then
		pass "a (R98): openssl cms -decrypt with agency-b's key and -verify -CAfile ca.crt accept the answer"
	else
		fail "a (R98): openssl cms -decrypt/-verify accept the answer" "$WORK/a.err"
	fi
	if grep -q 'smime-type=signed-data' "$WORK/a.dec" 2>/dev/null; then
		pass "a (R98): inside the encryption is a signed-data entity (signed, then encrypted)"
	else
		fail "a (R98): inside the encryption is a signed-data entity" "$WORK/a.dec"
	fi
	fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null; }
	if [[ -s $WORK/a.signer.pem ]] && [[ $(fp "$WORK/a.signer.pem") == $(fp "$PKI/agency-a-new.crt") ]]; then
		pass "a (R98, R37): the answer is signed with agency-a's newest DCA certificate"
	else
		fail "a (R98, R37): the answer is signed with agency-a's newest DCA certificate" "$WORK/a.err"
	fi
	if [[ -s $WORK/a.out ]]; then
		# The signed entity: Content-Type text/plain, quoted-printable.
		sed '1,/^\r\{0,1\}$/d' "$WORK/a.out" >"$WORK/a.body"
		qp_decode "$WORK/a.body" | tr -d '\r' >"$WORK/a.txt"
	else
		: >"$WORK/a.txt"
	fi
	assert_contains "$WORK/a.txt" '^Secure Email ping reply\.' "a: the signed content is the ping reply"
	assert_contains "$WORK/a.txt" "^Gateway software: $product_re\$" "a (R99): the signed content names the product and version ($product)"
	assert_contains "$WORK/a.txt" '^Secure Email environment: .+' "a (R99): the signed content names the Secure Email environment and version ($(grep -m1 '^Secure Email environment:' "$WORK/a.txt" || true))"
	assert_contains "$WORK/a.txt" '^S/MIME of your ping: verified: signed by domain-confidentiality-authority@agency-b\.govt\.nz' "a (R98): the answer says the ping was verified"
fi
if compgen -G "$WORK/peers/agency-b.govt.nz/*.pem" >/dev/null; then
	pass "a (R50): the signed ping taught the gateway agency-b's certificate"
else
	fail "a (R50): agency-b's certificate learned into the peer store ($(ls -R "$WORK/peers" 2>&1 | tr '\n' ' '))"
fi
assert_contains "$WORK/milter.log" 'ping S/MIME verified: signed by domain-confidentiality-authority@agency-b\.govt\.nz.*encrypted to agency-b\.govt\.nz.s certificate .*\(R98\)' "a: the decision log says why the answer is signed and encrypted"

# ------------------------------------------------------------------ b
id_b=$(unique_id)
ping "$id_b" "someone@internet.example" "b (unsigned)"
wait_answer "$id_b" "someone@internet.example" "b (unsigned)"
clear_answer b "b (unsigned)"
[[ -n $ANS ]] && assert_contains "$WORK/b.txt" '^S/MIME of your ping: not signed or encrypted' "b: the answer says the ping was not signed"

# ------------------------------------------------------------------ c
id_c=$(unique_id)
ping_eml "$WORK/$id_c.eml" "$id_c" "ping@agency-u.govt.nz" untrusted agency-a-new
ping "$id_c" "ping@agency-u.govt.nz" "c (untrusted signer)" "$WORK/$id_c.eml"
wait_answer "$id_c" "ping@agency-u.govt.nz" "c (untrusted signer)"
clear_answer c "c (untrusted signer)"
[[ -n $ANS ]] && assert_contains "$WORK/c.txt" '^S/MIME of your ping: not verified: .*untrusted.*102' "c: the answer says why the ping was not verified (102)"
assert_contains "$WORK/milter.log" 'ping S/MIME not verified: .*102.*answered as an unsigned ping' "c: the decision log says why the answer is in clear"

# ------------------------------------------------------------------ d
id_d=$(unique_id)
ping_eml "$WORK/$id_d.eml" "$id_d" "ping@agency-r.govt.nz" revoked agency-a-new
ping "$id_d" "ping@agency-r.govt.nz" "d (revoked signer)" "$WORK/$id_d.eml"
wait_answer "$id_d" "ping@agency-r.govt.nz" "d (revoked signer)"
clear_answer d "d (revoked signer)"
[[ -n $ANS ]] && assert_contains "$WORK/d.txt" '^S/MIME of your ping: not verified: .*revoked.*101' "d: the answer says the signer's certificate is revoked (101)"

# ------------------------------------------------------------------ e
# selftest --peers (R19, issue 17): our pings leave through the MTA; the
# test answers as agency-b's gateway (signed by agency-b, encrypted to us)
# and as agency-u's (signed by a certificate of a rogue CA). The milter
# records what the inbound S/MIME path found; only the verified answer
# passes.
# outbound.lookalike is off here: agency-b.govt.nz and agency-u.govt.nz are
# one letter from agency-a.govt.nz, so the misdirected-mail check would
# refuse the pings (they are on no secure list in this test).
PEERS=(--set 'selftest.peers=["ping@agency-b.govt.nz", "ping@agency-u.govt.nz"]' --set 'outbound.lookalike="off"')
stop_milter
start_milter "${MILTER_SETS[@]}" "${PEERS[@]}"
rc_e=0
"$NZBIN" selftest --smtp "$SERVER_IP:$SMTP_PORT" --timeout 30s \
	--set "selftest.key_file=\"$WORK/selftest.key\"" --set "dns.servers=[\"$DNS_ADDR\"]" \
	"${MILTER_SETS[@]}" "${PEERS[@]}" --peers --peer-wait 30s >"$WORK/e.out" 2>&1 &
pid_e=$!
e2e_track "$pid_e"
peer_ping_at_sink() { [[ -n $(generated_for "$1" '^Subject: nzsecure-milter peer ping$') ]]; }
if wait_until 20 peer_ping_at_sink ping@agency-b.govt.nz && wait_until 10 peer_ping_at_sink ping@agency-u.govt.nz; then
	pass "e: the self-test's pings to agency-b and agency-u left through the MTA"
	unfolded_headers "$(generated_for ping@agency-b.govt.nz '^Subject: nzsecure-milter peer ping$')" >"$WORK/e.headers"
	assert_contains "$WORK/e.headers" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "e (R62): the ping to agency-b (whose certificate the gateway learned in a) left signed and encrypted"
	id_e1=$(unique_id)
	ping_eml "$WORK/$id_e1.eml" "$id_e1" "postmaster@agency-b.govt.nz" agency-b agency-a-new
	ping "$id_e1" "postmaster@agency-b.govt.nz" "e (agency-b's answer)" "$WORK/$id_e1.eml"
	id_e2=$(unique_id)
	ping_eml "$WORK/$id_e2.eml" "$id_e2" "postmaster@agency-u.govt.nz" untrusted agency-a-new
	ping "$id_e2" "postmaster@agency-u.govt.nz" "e (agency-u's answer)" "$WORK/$id_e2.eml"
else
	fail "e: the self-test's pings reached the sink within 30s" "$WORK/e.out"
fi
wait "$pid_e" || rc_e=$?
assert_eq 1 "$rc_e" "e: selftest --peers exits 1 (one peer failed)"
assert_contains "$WORK/e.out" '^peer-ping agency-b\.govt\.nz +PASS .*S/MIME verified: signed by domain-confidentiality-authority@agency-b\.govt\.nz' "e (R98): agency-b's answer verified by the inbound S/MIME path: PASS"
assert_contains "$WORK/e.out" '^peer-ping agency-u\.govt\.nz +FAIL .*S/MIME not verified \(102\)' "e (R98): agency-u's answer, signed by an untrusted certificate: FAIL (102)"
assert_contains "$WORK/milter.log" '"msg":"peer ping answer recorded \(selftest --peers\)".*"smime":"verified"' "e: the milter recorded agency-b's answer as verified"

assert_nothing_lost_or_doubled consumed
stop_milter
e2e_finish
