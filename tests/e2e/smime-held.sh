#!/usr/bin/env bash
# tests/e2e/smime-held.sh: the gateway's own store of mail held for a
# certificate problem, its retry and its give-up (issue 14 point 6; Table 1
# sending column, R57, Table 2 row 1), through a real Postfix.
#
# The held entries are put into the store (smime.held_dir) with
# tests/e2e/heldput, as the outbound S/MIME step puts a message it holds,
# so this needs no broken peer certificate. The milter runs with
# smime.mode = "on" (it opens the store and runs the retrier); what it
# releases and the notices it sends go through "sendmail -C" into the
# private Postfix (pickup: no milter) and on to the sink.
#
#   a. an outbound message from alice (SASL) to partner@partner.example,
#      held an hour ago: the retry at start re-runs it through the chain
#      and it reaches the sink once, from alice, to partner, with the
#      X-NZ-Secure-email header the chain adds; the entry is gone; the
#      decision log has action held-sent.
#   b. an outbound "[SECRET]" message to the internet: the policy now holds
#      it for the administrator (R110), so the retry refuses it: SECURE
#      DELIVERY FAILURE [Code: 201] reaches alice and postmaster@ from
#      postmaster@agency.govt.nz with the original's Subject but not its
#      body (R77, R92), and the message is in failed/.
#   c. a message whose re-run tempfails (its SPF lookup gets SERVFAIL),
#      received 73 hours ago: still held past smime.give_up (72h), so it is
#      given up: one SECURE DELIVERY FAILURE [Code: 202] to the sender and
#      the sender's postmaster, the message in failed/.
#   d. the same tempfailing message received an hour ago: still held, tries
#      1, listed by `nzsecure-milter held`.
#   e. `nzsecure-milter held retry ID` (the CLI, against the running
#      milter's store) releases an entry put after the start round: it
#      reaches the sink.
#   f. a restart sends nothing again: no second copy of a, no second
#      notice for b or c.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init smime-held
e2e_need python3
DOMAIN=agency.govt.nz
ALICE=alice@$DOMAIN
HELD=$WORK/held

cat >"$WORK/zone" <<EOF
; smime-held.sh (tests/e2e/dnsd). broken.example's SPF lookup fails: the
; re-run of a message from it tempfails (451), so it stays held.
$DOMAIN.          300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
\$FAULT broken.example SERVFAIL
EOF
start_dns "$WORK/zone"
start_sink
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

if ! go build -o "$WORK/heldput" "$REPO_ROOT/tests/e2e/heldput" 2>"$WORK/heldput-build.log"; then
	fail "go build tests/e2e/heldput" "$WORK/heldput-build.log"
	e2e_finish
fi

POLICY=(--set "domains=[\"$DOMAIN\"]" --set 'smime.mode="on"' --set "smime.held_dir=\"$HELD\""
	--set "smime.peers=\"$WORK/peers\"" --set "smime.crl_dir=\"$WORK/crl\"")
# The CLI talks to the same MTA and DNS as the daemon.
CLI=(--set "dns.servers=[\"$DNS_ADDR\"]" --set 'notify.submit="sendmail"'
	--set "notify.sendmail=[\"/usr/sbin/sendmail\",\"-C\",\"$PFDIR\"]")

# put_held FILE FLAGS...: the new entry's ID on stdout.
put_held() {
	local f=$1
	shift
	"$WORK/heldput" -dir "$HELD" "$@" "$f"
}

id_a=$(unique_id)
printf 'From: Alice <%s>\nTo: partner@partner.example\nSubject: e2e held %s\nX-Test-Id: %s\n\nThe minutes %s.\n' \
	"$ALICE" "$id_a" "$id_a" "$id_a" >"$WORK/a.eml"
held_a=$(put_held "$WORK/a.eml" -from "$ALICE" -rcpt partner@partner.example -auth alice -domain partner.example -age 1h)

id_b=$(unique_id)
printf 'From: Alice <%s>\nTo: someone@gmail.example\nSubject: [SECRET] e2e held %s\nX-Test-Id: %s\n\nSecret body %s.\n' \
	"$ALICE" "$id_b" "$id_b" "$id_b" >"$WORK/b.eml"
held_b=$(put_held "$WORK/b.eml" -from "$ALICE" -rcpt someone@gmail.example -auth alice -domain gmail.example -age 1h)

id_c=$(unique_id)
printf 'From: Sender <sender@broken.example>\nTo: bob@%s\nSubject: e2e held %s\nX-Test-Id: %s\n\nBody %s.\n' \
	"$DOMAIN" "$id_c" "$id_c" "$id_c" >"$WORK/c.eml"
held_c=$(put_held "$WORK/c.eml" -from sender@broken.example -rcpt "bob@$DOMAIN" -client-ip 127.0.0.2 -client-name unknown \
	-tls-version TLSv1.3 -domain "$DOMAIN" -code 202 -reason "peer certificate status unknown" -age 73h)

id_d=$(unique_id)
sed "s/$id_c/$id_d/g" "$WORK/c.eml" >"$WORK/d.eml"
held_d=$(put_held "$WORK/d.eml" -from sender@broken.example -rcpt "bob@$DOMAIN" -client-ip 127.0.0.2 -client-name unknown \
	-tls-version TLSv1.3 -domain "$DOMAIN" -code 202 -age 1h)

start_milter "${POLICY[@]}"

# ------------------------------------------------------------------ a
if wait_id "$id_a" 30; then
	f=$(sink_grep "^X-Test-Id: $id_a\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/a.headers"
	assert_contains "$WORK/a.headers" "^X-Mail-Args: <$ALICE>" "a: released from alice"
	assert_contains "$WORK/a.headers" '^X-Rcpt-Args: <partner@partner.example>' "a: released to the held recipient"
	assert_contains "$WORK/a.headers" '^X-NZ-Secure-email: compliant' "a: the chain ran again (X-NZ-Secure-email added, R60)"
	assert_eq 1 "$(id_count "$id_a")" "a: delivered once"
else
	fail "a: held message $id_a released to the sink"
fi
check "a: the entry is gone from the store" test ! -e "$HELD/$held_a.json"
assert_contains "$WORK/milter.log" "\"held_id\":\"$held_a\".*\"action\":\"held-sent\"|\"action\":\"held-sent\".*\"held_id\":\"$held_a\"" "a: decision log: held-sent"

# ------------------------------------------------------------------ b
# The notice carries the original's Subject (R77), so its test id; the
# held message itself never reaches alice.
b_notice() { generated_for "$ALICE" "$id_b"; }
b_found() { [[ -n $(b_notice) ]]; }
if wait_until 30 b_found; then
	f=$(b_notice)
	qp_decode "$f" >"$WORK/b.notice"
	unfolded_headers "$f" >"$WORK/b.headers"
	assert_contains "$WORK/b.headers" '^Subject: SECURE DELIVERY FAILURE \[Code: 201\]' "b: a SECURE DELIVERY FAILURE notice"
	assert_contains "$WORK/b.headers" '^From: Postmaster <postmaster@agency\.govt\.nz>' "b (R92): the notice is from postmaster"
	assert_contains "$WORK/b.headers" '^X-Mail-Args: <>' "b (R93): from the null sender"
	assert_contains "$WORK/b.headers" "^X-Rcpt-Args: <postmaster@$DOMAIN>" "b (Table 1): the sender's postmaster gets it too"
	assert_contains "$WORK/b.notice" 'SECURE DELIVERY FAILURE – Your message could not be delivered securely, therefore, it was not sent\. \[Code: 201' "b (Table 2 row 1): the FAILURE text with the code"
	assert_contains "$WORK/b.notice" "Subject: \\[SECRET\\] e2e held $id_b" "b (R77): the original's Subject"
	assert_not_contains "$WORK/b.notice" "Secret body" "b (R77): not the original's body"
else
	fail "b: SECURE DELIVERY FAILURE for $id_b reached $ALICE"
fi
assert_eq 0 "$(id_count "$id_b")" "b: the refused message itself never left"
check "b: the message is in failed/" test -e "$HELD/failed/$held_b.eml"

# ------------------------------------------------------------------ c
c_notice() { generated_for sender@broken.example "$id_c"; }
c_found() { [[ -n $(c_notice) ]]; }
if wait_until 30 c_found; then
	f=$(c_notice)
	qp_decode "$f" >"$WORK/c.notice"
	unfolded_headers "$f" >"$WORK/c.headers"
	assert_contains "$WORK/c.headers" '^Subject: SECURE DELIVERY FAILURE \[Code: 202\]' "c (R57): given up after smime.give_up with the held code 202"
	assert_contains "$WORK/c.notice" 'The gateway kept trying for 73 hours and has now given up' "c: the notice says how long it was retried"
	assert_contains "$WORK/c.headers" '^X-Rcpt-Args: <postmaster@broken\.example>' "c (Table 1): to the sender's postmaster too"
else
	fail "c: SECURE DELIVERY FAILURE for $id_c (held 73h) reached the sender"
fi
assert_eq 0 "$(id_count "$id_c")" "c: the given-up message itself never left"
check "c: the message is in failed/" test -e "$HELD/failed/$held_c.eml"
assert_contains "$WORK/milter.log" "\"action\":\"held-gave-up\"" "c: decision log: held-gave-up"

# ------------------------------------------------------------------ d
"$NZBIN" held --json "${POLICY[@]}" "${CLI[@]}" >"$WORK/d.list" 2>"$WORK/d.list.err" || true
python3 - "$WORK/d.list" "$held_d" >"$WORK/d.check" 2>&1 <<'EOF' && pass "d: still held, tried once, listed by held --json" || fail "d: still held, tried once, listed by held --json" "$WORK/d.check" "$WORK/d.list"
import json, sys
rows = {r["id"]: r for r in json.load(open(sys.argv[1]))["held"]}
r = rows[sys.argv[2]]
assert r["tries"] == 1 and r["code"] == "202" and "tempfail" in r["last_reason"], r
assert len(rows) == 1, rows
EOF

# ------------------------------------------------------------------ e
id_e=$(unique_id)
sed "s/$id_a/$id_e/g" "$WORK/a.eml" >"$WORK/e.eml"
held_e=$(put_held "$WORK/e.eml" -from "$ALICE" -rcpt partner@partner.example -auth alice -domain partner.example)
"$NZBIN" held retry "$held_e" "${POLICY[@]}" "${CLI[@]}" >"$WORK/e.out" 2>"$WORK/e.err" || true
assert_contains "$WORK/e.out" "^$held_e: held-sent\$" "e: held retry ID reports held-sent"
if wait_id "$id_e" 30; then pass "e: held retry ID released the message to the sink"; else fail "e: $id_e at the sink" "$WORK/e.err"; fi

# ------------------------------------------------------------------ f
stop_milter
start_milter "${POLICY[@]}"
sleep 3
notices() { sink_grep "SECURE DELIVERY FAILURE" | wc -l | tr -d ' '; }
assert_eq 1 "$(id_count "$id_a")" "f: after a restart a is not sent again"
assert_eq 2 "$(notices)" "f: after a restart no FAILURE notice is repeated"

check "all: Postfix queue empty at the end" pf_queue_wait_empty 20
e2e_finish
