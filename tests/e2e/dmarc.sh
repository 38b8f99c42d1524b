#!/usr/bin/env bash
# tests/e2e/dmarc.sh: DMARC inbound and DKIM signing outbound (issue 6):
# G-DMARC-IN, G-DKIM, through a real Postfix.
#
# The milter runs under the default sge profile (inbound.dmarc = "enforce",
# inbound.spf = "enforce" since issue 12; every MAIL FROM here passes SPF) with domains=["agency.govt.nz"] and a DKIM key for
# agency.govt.nz (selector e2e, made by `nzsecure-milter dkim-keygen`; its
# TXT record is served by the loopback DNS server tests/e2e/dnsd). Inbound
# mail comes from the "internet" client 127.0.0.2 over STARTTLS, with MAIL
# FROM attacker@spoofer.example (SPF pass, but not aligned with the From:):
#
#   a. From: ceo@bank.example (_dmarc: p=reject): 550 5.7.1 Message rejected
#      by the DMARC policy of bank.example (p=reject) ... after DATA.
#   b. From: ceo@shop.example (_dmarc: p=quarantine): 250, but HELD in
#      Postfix's hold queue (postqueue -p shows "QUEUEID!"), not at the
#      sink; the administrator notice (to postmaster@agency.govt.nz, with
#      the postsuper -H command) arrives at the sink; postsuper -H releases
#      the message and it reaches the sink exactly once, with dmarc=fail
#      recorded in Authentication-Results.
#   c. MAIL FROM and From: news@good.example (SPF pass, aligned; p=reject):
#      delivered with Authentication-Results ... dmarc=pass.
#   d. outbound (alice, SASL on the submission port): the copy at the sink
#      carries a DKIM-Signature (d=agency.govt.nz, s=e2e) that verifies:
#      `nzsecure-milter check --dns <dnsd>` on the sink file (Received
#      headers added after signing are not signed) gives dkim result pass.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init dmarc
DOMAIN=agency.govt.nz
ADMIN=postmaster@$DOMAIN
TO=user@$DOMAIN
SPOOFER=attacker@spoofer.example
ALICE_PASS=alice-secret-6
EXPECT_ONE=()
EXPECT_NONE=()

# msg ID MAILFROM FROM: a TLS message from the internet to $TO.
msg() {
	send --tls --from "$2" --to "$TO" --header "From: <$3>" --header "Subject: e2e dmarc $1" \
		--add-header "X-Test-Id: $1"
}

e2e_need python3
# The signing key and its DNS record: in the zone before dnsd starts.
"$NZBIN" dkim-keygen --domain "$DOMAIN" --selector e2e --out "$WORK/e2e.key" >"$WORK/dkim.txt" 2>"$WORK/dkim-keygen.log"
{
	cat <<EOF
; dmarc.sh (tests/e2e/dnsd). The test client is 127.0.0.2. Other names:
; NXDOMAIN.
spoofer.example.         300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
bank.example.            300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.bank.example.     300 IN TXT "v=DMARC1; p=reject"
shop.example.            300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.shop.example.     300 IN TXT "v=DMARC1; p=quarantine"
good.example.            300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
_dmarc.good.example.     300 IN TXT "v=DMARC1; p=reject"
$DOMAIN.                 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc.$DOMAIN.          300 IN TXT "v=DMARC1; p=reject"
; From nzsecure-milter dkim-keygen:
EOF
	cat "$WORK/dkim.txt"
} >"$WORK/zone"
if grep -q "^e2e._domainkey.$DOMAIN.* TXT \"v=DKIM1; k=rsa; p=" "$WORK/dkim.txt"; then
	pass "setup (G-DKIM): dkim-keygen printed the TXT record e2e._domainkey.$DOMAIN"
else
	fail "setup (G-DKIM): dkim-keygen printed the TXT record e2e._domainkey.$DOMAIN" "$WORK/dkim.txt" "$WORK/dkim-keygen.log"
fi
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]" --set "dkim.keys=[\"$DOMAIN:e2e:$WORK/e2e.key\"]"
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id_a=$(unique_id)
EXPECT_NONE+=("$id_a")
rc=0
msg "$id_a" "$SPOOFER" ceo@bank.example || rc=$?
reply=$(last_reply)
if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.1\ Message\ rejected\ by\ the\ DMARC\ policy\ of\ bank\.example\ \(p=reject\) ]]; then
	pass "a (G-DMARC-IN): spoof of a p=reject domain refused after DATA: $reply"
else
	fail "a (G-DMARC-IN): spoof of a p=reject domain refused with 550 5.7.1 Message rejected by the DMARC policy (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ b
id_b=$(unique_id)
rc=0
msg "$id_b" "$SPOOFER" ceo@shop.example || rc=$?
qid_b=
if ((rc == 0)) && accepted; then
	qid_b=$(queue_id)
	pass "b (G-DMARC-IN): spoof of a p=quarantine domain accepted (250, queue id $qid_b)"
else
	fail "b (G-DMARC-IN): spoof of a p=quarantine domain accepted (250) (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
expect_held "$qid_b" b "b (G-DMARC-IN): held for the administrators: postqueue -p shows $qid_b! (hold queue, not a junk folder)" "b (G-DMARC-IN)"
# The notice carries the original's Subject (R77), not its X-Test-Id.
notice_b() { generated_for "$ADMIN" "e2e dmarc $id_b"; }
has_notice_b() { [[ -n $(notice_b) ]]; }
if wait_until 30 has_notice_b; then
	f=$(notice_b)
	pass "b (G-DMARC-IN): the administrator notice reached $ADMIN at the sink ($(unfolded_headers "$f" | grep -m1 '^Subject:'))"
	qp_decode "$f" >"$WORK/b.notice"
	assert_contains "$WORK/b.notice" "postsuper -H $qid_b" "b (G-DMARC-IN): the notice names the release command postsuper -H $qid_b"
	assert_contains "$WORK/b.notice" "^From: Postmaster <$ADMIN>" "b (R92): the notice comes from $ADMIN"
else
	fail "b (G-DMARC-IN): an administrator notice about '$id_b' reached $ADMIN at the sink within 30s"
fi
sleep 1
assert_eq 0 "$(id_count "$id_b")" "b (G-DMARC-IN): the held message is not at the sink"
if [[ -n $qid_b ]]; then
	pf_postsuper -H "$qid_b" >"$WORK/b.postsuper" 2>&1 || true
	pf_postqueue -i "$qid_b" >/dev/null 2>&1 || true
	if wait_id "$id_b" 30; then
		pass "b (G-DMARC-IN): postsuper -H $qid_b released it and it reached the sink"
		EXPECT_ONE+=("$id_b")
		f=$(sink_grep "^X-Test-Id: $id_b\$" | head -n 1)
		unfolded_headers "$f" >"$WORK/b.headers"
		assert_contains "$WORK/b.headers" '^Authentication-Results: .*dmarc=fail .*header\.from=shop\.example' \
			"b (G-DMARC-IN): the released copy records dmarc=fail header.from=shop.example"
	else
		fail "b (G-DMARC-IN): postsuper -H $qid_b released it to the sink within 30s" "$WORK/b.postsuper"
	fi
fi

# ------------------------------------------------------------------ c
id_c=$(unique_id)
rc=0
msg "$id_c" news@good.example news@good.example || rc=$?
expect_accepted "$rc" "$id_c" "c (G-DMARC-IN): aligned message of a p=reject domain accepted (250)" "c (G-DMARC-IN): aligned message accepted"
if wait_id "$id_c" 20; then
	f=$(sink_grep "^X-Test-Id: $id_c\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/c.headers"
	assert_contains "$WORK/c.headers" '^Authentication-Results: .*spf=pass smtp\.mailfrom=news@good\.example' \
		"c (G-DMARC-IN): Authentication-Results records spf=pass"
	assert_contains "$WORK/c.headers" '^Authentication-Results: .*dmarc=pass .*header\.from=good\.example' \
		"c (G-DMARC-IN): Authentication-Results records dmarc=pass header.from=good.example"
else
	fail "c (G-DMARC-IN): message $id_c reached the sink"
fi

# ------------------------------------------------------------------ d
id_d=$(unique_id)
rc=0
send_auth alice "$ALICE_PASS" --from "alice@$DOMAIN" --to someone@partner.example \
	--header "Subject: e2e dmarc signed $id_d" --add-header "X-Test-Id: $id_d" \
	--body "A signed message from the agency." || rc=$?
expect_accepted "$rc" "$id_d" "d (G-DKIM): alice's outbound message accepted (250)" "d (G-DKIM): alice's outbound message accepted"
if wait_id "$id_d" 20; then
	f=$(sink_grep "^X-Test-Id: $id_d\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/d.headers"
	assert_contains "$WORK/d.headers" "^DKIM-Signature: .*d=$DOMAIN;.* s=e2e;" \
		"d (G-DKIM): the copy at the sink has a DKIM-Signature d=$DOMAIN s=e2e"
	assert_contains "$WORK/d.headers" '^DKIM-Signature: .*h=[^;]*[Xx]-[Nn][Zz]-[Ss]ecure-[Ee]mail' \
		"d (G-DKIM): the signature covers X-NZ-Secure-email (signed after every other change)"
	rc=0
	"$NZBIN" check --dns "$DNS_ADDR" --client-ip 127.0.0.1 --set 'internal_networks=[]' \
		--set 'inbound.min_tls="none"' "$f" >"$WORK/d.check.json" 2>"$WORK/d.check.err" || rc=$?
	# The JSON is indented: read it as JSON, not by lines.
	dkim_d=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(" ".join("%s/%s/%s" % (d.get("result"), d.get("domain"), d.get("selector")) for d in j.get("dkim") or []))' \
		"$WORK/d.check.json" 2>/dev/null || true)
	if ((rc == 0)) && [[ $dkim_d == "pass/$DOMAIN/e2e" ]]; then
		pass "d (G-DKIM): the signature verifies against the published key (check: \"dkim\": [{\"result\": \"pass\" ...)"
	else
		fail "d (G-DKIM): the signature verifies (check exit $rc; dkim results '$dkim_d', expected pass/$DOMAIN/e2e)" \
			"$WORK/d.check.json" "$WORK/d.check.err"
	fi
	if grep -q "e2e._domainkey.$DOMAIN" "$WORK/dns.log"; then
		pass "d (G-DKIM): the key was fetched from the test DNS server"
	else
		fail "d (G-DKIM): the key was fetched from the test DNS server" "$WORK/dns.log"
	fi
else
	fail "d (G-DKIM): message $id_d reached the sink"
fi

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled

stop_milter
e2e_finish
