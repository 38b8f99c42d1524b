#!/usr/bin/env bash
# tests/e2e/smime-release.sh: mail held for the administrator (R110) to a
# peer agency in S/MIME scope is kept by the gateway, not in Postfix's hold
# queue, and `nzsecure-milter held release ID` sends it signed and
# encrypted (R62-R63: "sign / encrypt all email to another Secure Email
# Agency, with no exceptions"). A message released with postsuper -H would
# be delivered as it is, without passing the milter again.
#
# The PKI and the loopback CRL server as in smime-outbound.sh; we are
# agency-a.govt.nz (profile seemail: smime.mode on, [SECRET] held for an
# administrator, R110), the peer store holds agency-b.govt.nz.
#
#   a. alice -> bob@agency-b.govt.nz, [SECRET]: accepted (250), not in
#      Postfix's queue (not quarantined), one entry held for the
#      administrator in smime.held_dir (`held --json`: admin_hold
#      classification); the held-mail notice to postmaster@agency-a.govt.nz
#      names `nzsecure-milter held release QUEUEID`, not postsuper; nothing
#      reaches the sink for bob.
#   b. the automatic retry does not release it: `held retry --all` sends
#      nothing.
#   c. `nzsecure-milter held release QUEUEID` (the command the notice
#      names): the sink gets bob's message once, application/pkcs7-mime
#      enveloped-data that `openssl cms -decrypt` with agency-b's key and
#      `openssl cms -verify -CAfile ca.crt` accept, holding alice's text;
#      the store is empty, a second release finds nothing, the queue ends
#      empty and nothing reached agency-b in clear.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init smime-release
e2e_need python3
DOMAIN=agency-a.govt.nz
PEER=agency-b.govt.nz
ADMIN=postmaster@$DOMAIN
ALICE_PASS=alice-secret-1

# ------------------------------------------------------------------- PKI
e2e_pki

PEERS=$WORK/peers
mkdir -p "$PEERS/$PEER"
cp "$PKI/agency-b.crt" "$PEERS/$PEER/agency-b.pem"

HELD=$WORK/held
# The gateway's policy: the daemon and the CLI run with the same one.
SETS=(--set 'profile="seemail"' --set "domains=[\"$DOMAIN\"]"
	--set "outbound.seemail_domains=[\"$PEER\"]"
	--set "smime.identities=[\"$DOMAIN:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]"
	--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" --set "smime.peers=\"$PEERS\""
	--set 'smime.crl_timeout="2s"' --set "smime.crl_dir=\"$WORK/crl\"" --set "smime.held_dir=\"$HELD\""
	--set "smime.pending=\"$WORK/state/pending\"")

cat >"$WORK/zone" <<EOF
; smime-release.sh (tests/e2e/dnsd). Other names: NXDOMAIN.
$DOMAIN. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter "${SETS[@]}"
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"
# The CLI talks to the same MTA and DNS as the daemon.
CLI=("${SETS[@]}" --set "dns.servers=[\"$DNS_ADDR\"]" --set 'notify.submit="sendmail"'
	--set "notify.sendmail=[\"/usr/sbin/sendmail\",\"-C\",\"$PFDIR\"]")

BODY_LINE="The plans for the joint exercise are attached below."
id=$(unique_id)

# ------------------------------------------------------------------ a
rc=0
send_auth alice "$ALICE_PASS" --from "alice@$DOMAIN" --to "bob@$PEER" \
	--header "Subject: [SECRET] e2e smime-release $id" --add-header "X-Test-Id: $id" \
	--add-header "MIME-Version: 1.0" --add-header "Content-Type: text/plain; charset=us-ascii" \
	--add-header "Content-Transfer-Encoding: 7bit" --body "$BODY_LINE" || rc=$?
qid=
if ((rc == 0)) && accepted; then
	qid=$(queue_id)
	pass "a: [SECRET] alice -> bob@$PEER accepted (250, queue id $qid)"
else
	fail "a: [SECRET] alice -> bob@$PEER accepted (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
notice() { generated_for "$ADMIN" "e2e smime-release $id"; }
has_notice() { [[ -n $(notice) ]]; }
if wait_until 30 has_notice; then
	qp_decode "$(notice)" | tr -s ' \r\n\t' ' ' >"$WORK/a.notice"
	pass "a: the held-mail notice reached $ADMIN"
	assert_contains "$WORK/a.notice" "nzsecure-milter held release $qid" "a (R56, R62): the notice names nzsecure-milter held release $qid"
	assert_not_contains "$WORK/a.notice" "postsuper" "a (R62): the notice does not name postsuper"
	assert_not_contains "$WORK/a.notice" "$BODY_LINE" "a (R77): the notice does not carry the original body"
else
	fail "a: a held-mail notice about $id reached $ADMIN within 30s"
fi
check "a: not in Postfix's queue (not quarantined)" pf_queue_wait_empty 20
"$NZBIN" held --json "${CLI[@]}" >"$WORK/a.list" 2>"$WORK/a.list.err" || true
python3 - "$WORK/a.list" "$qid" >"$WORK/a.check" 2>&1 <<'EOF' && pass "a: one entry held for the administrator (classification) in smime.held_dir" || fail "a: one entry held for the administrator in smime.held_dir" "$WORK/a.check" "$WORK/a.list" "$WORK/a.list.err"
import json, sys
rows = json.load(open(sys.argv[1]))["held"]
assert len(rows) == 1, rows
r = rows[0]
assert r["admin_hold"] == "classification" and r["queue_id"] == sys.argv[2] and r["recipients"] == ["bob@agency-b.govt.nz"], r
EOF
if grep -F '"msg":"forms of the message"' "$WORK/milter.log" | grep -F "\"queue_id\":\"$qid\"" | grep -F '"forms":["held admin () as ' | grep -qF "held for the administrator (classification) (): bob@$PEER"; then
	pass "a: the milter logged the hold into the store"
else
	fail "a: the milter logged the hold into the store" "$WORK/milter.log"
fi
sleep 1
assert_eq 0 "$(id_count "$id")" "a: nothing reached the sink before the release"

# ------------------------------------------------------------------ b
"$NZBIN" held retry --all "${CLI[@]}" >"$WORK/b.out" 2>"$WORK/b.err" || true
sleep 2
assert_eq 0 "$(id_count "$id")" "b: held retry --all does not release it"

# ------------------------------------------------------------------ c
rc=0
"$NZBIN" held release "$qid" "${CLI[@]}" >"$WORK/c.out" 2>"$WORK/c.err" || rc=$?
if ((rc == 0)) && grep -q ': held-released$' "$WORK/c.out"; then
	pass "c: nzsecure-milter held release $qid reports held-released"
else
	fail "c: nzsecure-milter held release $qid (exit $rc)" "$WORK/c.out" "$WORK/c.err"
fi
if wait_id "$id" 30; then
	f=$(file_for "$id" "bob@$PEER")
	assert_eq 1 "$(copies_for "$id" "bob@$PEER")" "c: bob@$PEER got exactly one copy"
	unfolded_headers "$f" >"$WORK/c.headers"
	assert_contains "$WORK/c.headers" '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "c (R62): the peer receives application/pkcs7-mime (enveloped-data)"
	assert_not_contains "$f" "$BODY_LINE" "c (R62): the text is not in clear at the peer"
	if openssl cms -decrypt -recip "$PKI/agency-b.crt" -inkey "$PKI/agency-b.key" -in "$f" -out "$WORK/c.dec" 2>"$WORK/c.err2" &&
		openssl cms -verify -CAfile "$PKI/ca.crt" -in "$WORK/c.dec" -out "$WORK/c.txt" 2>>"$WORK/c.err2"; then
		pass "c: openssl cms -decrypt with agency-b's key and -verify -CAfile ca.crt accept it"
	else
		fail "c: openssl cms -decrypt/-verify accept it" "$WORK/c.err2"
	fi
	assert_contains "$WORK/c.txt" "$BODY_LINE" "c: the decrypted, verified content is alice's text"
else
	fail "c: the released message reached bob@$PEER within 30s" "$WORK/c.err"
fi
"$NZBIN" held --json "${CLI[@]}" >"$WORK/c.list" 2>/dev/null || true
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["held"] == []' "$WORK/c.list" 2>/dev/null &&
	pass "c: the store is empty after the release" || fail "c: the store is empty after the release" "$WORK/c.list"
rc=0
"$NZBIN" held release "$qid" "${CLI[@]}" >"$WORK/c2.out" 2>"$WORK/c2.err" || rc=$?
if ((rc == 1)) && grep -q 'no message held for the administrator' "$WORK/c2.err"; then
	pass "c: a second release finds nothing"
else
	fail "c: a second release finds nothing (exit $rc)" "$WORK/c2.out" "$WORK/c2.err"
fi

# ------------------------------------------------------- nothing lost/doubled
check "all: Postfix queue empty at the end" pf_queue_wait_empty 20
sleep 1
assert_eq 1 "$(id_count "$id")" "all: the message reached the sink once"
clear=$({ sink_files | xargs -r grep -l "^X-Rcpt-Args: <bob@$PEER>" | xargs -r grep -l "$BODY_LINE" || true; } | wc -l)
assert_eq 0 "$clear" "all: nothing reached $PEER in clear"

stop_milter
e2e_finish
