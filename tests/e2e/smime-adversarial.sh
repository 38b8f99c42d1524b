#!/usr/bin/env bash
# tests/e2e/smime-adversarial.sh: recipient forms that must not take a peer
# agency's recipient out of domain S/MIME (issue 14, R62 "with no
# exceptions") or deliver it twice, through a real Postfix.
#
# We are agency-a.govt.nz (profile seemail, smime.mode on); the peer store
# holds agency-b.govt.nz's valid certificate (the test PKI of
# testdata/smime/make-fixtures.sh, CRL checks off: the CRL is
# smime-outbound.sh's subject).
#
#   a. alice -> "x@gmail.example"@agency-b.govt.nz (a quoted local part
#      holding an "@"): the peer's copy is application/pkcs7-mime and not
#      the text (it used to leave in clear: the domain was read after the
#      first "@").
#   b. alice -> BOB@AGENCY-B.GOVT.NZ, bob@agency-b.govt.nz twice and
#      someone@internet.example: agency-b gets exactly one copy, encrypted;
#      the internet recipient one plain copy; nothing reaches agency-b in
#      clear.
#   c. a bang path (agency-b.govt.nz!carol) and a percent hack on a host in
#      mydestination (carol%agency-b.govt.nz@mx.e2e.test), which Postfix
#      rewrites to carol@agency-b.govt.nz after the milter judged the
#      address: refused with a NON DELIVERY REPORT (they used to reach the
#      peer in clear); a source route goes encrypted.
#   all: nothing reaches agency-b in clear.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init smime-adversarial
DOMAIN=agency-a.govt.nz
PEER=agency-b.govt.nz
ALICE_PASS=alice-secret-1
EXPECT_ONE=()
EXPECT_NONE=()

PKI=$WORK/pki
if ! OUT=$PKI CDP_URL="http://127.0.0.1:9/ca.crl" bash "$REPO_ROOT/testdata/smime/make-fixtures.sh" >"$WORK/pki.log" 2>&1; then
	fail "make-fixtures.sh made the PKI" "$WORK/pki.log"
	e2e_finish
fi
PEERS=$WORK/peers
mkdir -p "$PEERS/$PEER"
cp "$PKI/agency-b.crt" "$PEERS/$PEER/agency-b.pem"

cat >"$WORK/zone" <<ZONE
; smime-adversarial.sh (tests/e2e/dnsd). Other names: NXDOMAIN.
$DOMAIN. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
ZONE
start_dns "$WORK/zone"
start_sink
POSTFIX_EXTRA_MAIN="mydestination = mx.e2e.test"
start_milter --set 'profile="seemail"' --set "domains=[\"$DOMAIN\"]" \
	--set "outbound.seemail_domains=[\"$PEER\"]" \
	--set "smime.identities=[\"$DOMAIN:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]" \
	--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" --set "smime.peers=\"$PEERS\"" \
	--set 'smime.crl_check=false' --set "smime.crl_dir=\"$WORK/crl\""
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

BODY_LINE="Adversarial recipients: this line must never reach the peer in clear."
adv_msg() {
	local id=$1 to
	shift
	to=$(IFS=,; echo "$*")
	send_auth alice "$ALICE_PASS" --from "alice@$DOMAIN" --to "$to" \
		--header "Subject: e2e smime-adversarial $id" --add-header "X-Test-Id: $id" \
		--add-header "MIME-Version: 1.0" --add-header "Content-Type: text/plain; charset=us-ascii" \
		--body "$BODY_LINE"
}
# peer_files ID: the sink files of message ID for any agency-b recipient.
peer_files() { { sink_grep "^X-Test-Id: $1\$" | xargs -r grep -il "^X-Rcpt-Args: <.*@$PEER>" 2>/dev/null || true; }; }

# ------------------------------------------------------------------ a
id_a=$(unique_id)
rc=0
adv_msg "$id_a" '"x@gmail.example"@agency-b.govt.nz' || rc=$?
expect_accepted "$rc" "$id_a" "a: alice -> \"x@gmail.example\"@$PEER accepted" "a: quoted local part accepted"
wait_id "$id_a" 20 || true
fa=$(peer_files "$id_a" | head -n 1)
if [[ -n $fa ]]; then
	assert_contains "$fa" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "a: the quoted-local-part recipient at the peer gets the encrypted form"
	assert_not_contains "$fa" "$BODY_LINE" "a: the text is not in clear at the peer"
else
	fail "a: message $id_a reached the peer recipient"
fi

# ------------------------------------------------------------------ b
id_b=$(unique_id)
rc=0
adv_msg "$id_b" "BOB@AGENCY-B.GOVT.NZ" "bob@$PEER" "bob@$PEER" "someone@internet.example" || rc=$?
if ((rc == 0)) && accepted; then
	pass "b: alice -> BOB@AGENCY-B.GOVT.NZ, bob@$PEER twice, someone@internet.example accepted"
else
	fail "b: accepted (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
wait_until 20 eval '(( $(id_count "$id_b") >= 2 ))' || true
pf_queue_wait_empty 20 || true
sleep 1
n_peer_rcpts=0
for f in $(peer_files "$id_b"); do
	n_peer_rcpts=$((n_peer_rcpts + $(grep -ic "^X-Rcpt-Args: <bob@$PEER>" "$f")))
	assert_contains "$f" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "b: the agency-b copy $(basename "$f") is encrypted"
done
assert_eq 1 "$n_peer_rcpts" "b: bob at agency-b (three spellings in RCPT TO) gets exactly one copy"
n_net=$({ sink_grep "^X-Test-Id: $id_b\$" | xargs -r grep -l "^X-Rcpt-Args: <someone@internet.example>" || true; } | wc -l)
assert_eq 1 "$n_net" "b: someone@internet.example gets exactly one copy"

# ------------------------------------------------------------------ c
# Forms Postfix rewrites after the milter: the bang path (swap_bangpath)
# and the percent hack on a host in mydestination (allow_percent_hack) both
# became carol@agency-b.govt.nz and reached the peer in clear. Refused now
# (the sender gets a NON DELIVERY REPORT); a source route is read for its
# final address and goes encrypted.
ndr_c() { ndr_for "alice@$DOMAIN" "smime-adversarial $id_c" | grep -q .; }
for form in 'agency-b.govt.nz!carol' 'carol%agency-b.govt.nz@mx.e2e.test'; do
	id_c=$(unique_id)
	EXPECT_NONE+=("$id_c")
	rc=0
	adv_msg "$id_c" "$form" || rc=$?
	if wait_until 20 ndr_c; then
		pass "c: $form refused with a NON DELIVERY REPORT to alice"
	else
		fail "c: $form refused with a NON DELIVERY REPORT to alice (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
	fi
done
id_c=$(unique_id)
rc=0
adv_msg "$id_c" '@mx.e2e.test:carol@agency-b.govt.nz' || rc=$?
expect_accepted "$rc" "$id_c" "c: a source-routed peer address accepted" "c: a source-routed peer address accepted"
wait_id "$id_c" 20 || true
fc=$(peer_files "$id_c" | head -n 1)
if [[ -n $fc ]]; then
	assert_contains "$fc" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "c: the source-routed peer address gets the encrypted form"
else
	fail "c: message $id_c reached the peer recipient"
fi

# ------------------------------------------------------------------ all
clear=$({ sink_files | xargs -r grep -il "^X-Rcpt-Args: <.*@$PEER>" | xargs -r grep -l "$BODY_LINE" || true; } | wc -l)
assert_eq 0 "$clear" "all: nothing reached $PEER in clear"
assert_nothing_lost_or_doubled refused
stop_milter
e2e_finish
