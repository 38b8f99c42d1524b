#!/usr/bin/env bash
# tests/e2e/selftest.sh: `nzsecure-milter selftest` (R19-R21, issue 17
# point 2) through a real Postfix whose milter is nzsecure-milter.
#
# The milter runs under the sge profile with domains=["agency.govt.nz"].
#
#   a. green: selftest exits 0 and reports every scenario PASS
#      (inbound-spoof warned 005, inbound-plaintext refused 5.7.10,
#      outbound-secret held, ping answered); no scenario message reaches
#      the sink or stays in the queue, and the milter logged each
#      "selftest decision (not acted on)".
#   b. red: the milter restarted with inbound.min_tls = "none" (TLS not
#      enforced, against the sge policy the self-test expects): selftest
#      exits 1 and reports inbound-plaintext FAIL; still nothing delivered.
#   c. a message with a forged X-NZ-Selftest token (another key) is
#      refused 550 5.7.0 and never delivered.
#   d. --peers: pings to ping@peer.govt.nz and ping@silent.govt.nz leave
#      through the MTA from our ping address; the test answers as
#      peer.govt.nz's gateway (from 127.0.0.2 to our ping address): the
#      milter records it and selftest reports it PASS, the silent peer FAIL.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init selftest
DOMAIN=agency.govt.nz
POLICY=(--set "domains=[\"$DOMAIN\"]")

cat >"$WORK/zone" <<EOF2
; selftest.sh (tests/e2e/dnsd). Other names (selftest.invalid): NXDOMAIN.
$DOMAIN. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
peer.govt.nz. 300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
EOF2
start_dns "$WORK/zone"
start_sink
start_milter "${POLICY[@]}"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# run_selftest OUT ARGS...: the selftest command with the e2e policy (the
# key file and DNS as start_milter gives serve), through this Postfix.
run_selftest() {
	local out=$1
	shift
	local rc=0
	"$NZBIN" selftest --smtp "$SERVER_IP:$SMTP_PORT" --timeout 30s \
		--set "selftest.key_file=\"$WORK/selftest.key\"" --set "dns.servers=[\"$DNS_ADDR\"]" \
		"${POLICY[@]}" "$@" >"$out" 2>&1 || rc=$?
	return "$rc"
}

# ------------------------------------------------------------------ a
rc=0
run_selftest "$WORK/a.out" || rc=$?
if ((rc == 0)) && grep -q 'selftest: 4 scenario(s), 0 failed: PASSED' "$WORK/a.out"; then
	pass "a: selftest green on the e2e gateway (exit 0, 4 scenarios passed)"
else
	fail "a: selftest green (exit $rc)" "$WORK/a.out"
fi
for sc in inbound-spoof inbound-plaintext outbound-secret ping; do
	assert_contains "$WORK/a.out" "^$sc +PASS " "a: scenario $sc passed"
done
assert_contains "$WORK/a.out" 'inbound-spoof .*warning=005' "a: the spoof of our own domain got warning 005"
assert_contains "$WORK/a.out" 'inbound-plaintext .*(530|550) 5\.7\.10' "a: plaintext refused with 5.7.10 under sge"
assert_contains "$WORK/a.out" 'outbound-secret .*action=quarantine classification=SECRET' "a: [SECRET] held"
assert_contains "$WORK/a.out" 'ping .*notices=ping' "a: the ping answered"
n=$(grep -c '"msg":"selftest decision (not acted on)"' "$WORK/milter.log" || true)
assert_eq 3 "$n" "a: the milter reported 3 verdicts without acting (plaintext never reached DATA)"

# ------------------------------------------------------------------ b
stop_milter
start_milter "${POLICY[@]}" --set 'inbound.min_tls="none"'
rc=0
run_selftest "$WORK/b.out" || rc=$?
if ((rc == 1)) && grep -Eq '^inbound-plaintext +FAIL ' "$WORK/b.out" && grep -q 'FAILED' "$WORK/b.out"; then
	pass "b: selftest red when the milter does not enforce TLS (exit 1, inbound-plaintext FAIL)"
else
	fail "b: selftest red with inbound.min_tls=none (exit $rc)" "$WORK/b.out"
fi
assert_contains "$WORK/b.out" '^inbound-plaintext +FAIL .*action=accept' "b: the report says the plaintext scenario was accepted"
assert_contains "$WORK/b.out" '^outbound-secret +PASS ' "b: the other scenarios still pass"

# ------------------------------------------------------------------ c
id_c=$(unique_id)
rc=0
SEND_FROM_IP=$SERVER_IP send --from "someone@$DOMAIN" --to "x@partner.example" --header "From: <someone@$DOMAIN>" \
	--header "Subject: forged selftest $id_c" --add-header "X-Test-Id: $id_c" \
	--add-header "X-NZ-Selftest: scenario=ping; t=$(date +%s); n=00; mac=0000" --body "forged" || rc=$?
reply=$(last_reply)
if ((rc == 26)) && [[ $reply == "550 5.7.0 selftest token not valid"* ]]; then
	pass "c: a forged selftest token refused: $reply"
else
	fail "c: forged token refused with 550 5.7.0 (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi

# ------------------------------------------------------- nothing delivered
pf_queue_wait_empty 20 || true
check "all: Postfix queue empty (nothing held: the milter did not act)" pf_queue_is_empty
sleep 1
assert_eq 0 "$(sink_count)" "all: no scenario message reached the sink"

# ------------------------------------------------------------------ d
# --peers: the pings leave through the MTA (to the sink); the test plays
# peer.govt.nz's gateway and answers from 127.0.0.2 to our ping address;
# silent.govt.nz never answers.
# The same policy for serve and selftest, as one policy file gives both.
PEERS=(--set 'selftest.peers=["ping@peer.govt.nz", "ping@silent.govt.nz"]')
stop_milter
start_milter "${POLICY[@]}" "${PEERS[@]}"
rc_d=0
run_selftest "$WORK/d.out" "${PEERS[@]}" --peers --peer-wait 20s &
pid_d=$!
e2e_track "$pid_d"
ping_at_sink() { [[ -n $(sink_grep '^X-Rcpt-Args: <ping@peer\.govt\.nz>' | head -n 1) ]]; }
if wait_until 20 ping_at_sink; then
	pass "d: the ping to ping@peer.govt.nz left through the MTA"
	f=$(sink_grep '^X-Rcpt-Args: <ping@peer\.govt\.nz>' | head -n 1)
	assert_contains "$f" '^From: <ping@agency\.govt\.nz>' "d: the ping comes from our ping address"
	id_d=$(unique_id)
	SEND_FROM_IP=$CLIENT_IP send --tls --from "postmaster@peer.govt.nz" --to "ping@$DOMAIN" \
		--header "From: Postmaster <postmaster@peer.govt.nz>" --header "Subject: Re: nzsecure-milter peer ping" \
		--add-header "X-Test-Id: $id_d" --body "peer.govt.nz gateway: nzsecure-milter test peer" || true
else
	fail "d: the ping to ping@peer.govt.nz reached the sink within 20s"
fi
wait "$pid_d" || rc_d=$?
if ((rc_d == 1)) && grep -Eq '^peer-ping peer\.govt\.nz +PASS .*answered by postmaster@peer\.govt\.nz' "$WORK/d.out"; then
	pass "d: --peers: peer.govt.nz's answer seen"
else
	fail "d: --peers: peer.govt.nz answered (exit $rc_d)" "$WORK/d.out"
fi
assert_contains "$WORK/d.out" '^peer-ping silent\.govt\.nz +FAIL .*no answer within 20s' "d: --peers: the silent peer fails the self-test (exit 1)"
assert_contains "$WORK/milter.log" '"msg":"peer ping answer recorded \(selftest --peers\)"' "d: the milter recorded the answer"

stop_milter
e2e_finish
