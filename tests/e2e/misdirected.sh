#!/usr/bin/env bash
# tests/e2e/misdirected.sh: misdirected mail (issue 17, spec 000 "Government
# to Citizen communications": "robust controls to prevent information being
# sent to the wrong email address(es)"), outbound.lookalike = "refuse" (the
# default), through a real Postfix.
#
# The milter runs under the sge profile with domains=["agency.govt.nz"] and
# outbound.secure_domains=["*.govt.nz", "justice.govt.nz"]; alice submits on
# the SASL submission port (outbound).
#
#   a. "[IN-CONFIDENCE]" to officer@justise.govt.nz (a lookalike of the
#      secure domain justice.govt.nz; *.govt.nz would let it through the
#      routing rule): 550 5.7.1 recipient domain justise.govt.nz looks like
#      justice.govt.nz: not sent (misdirected mail); nothing at the sink.
#   b. the same message to officer@justice.govt.nz: delivered once.
#   c. unclassified mail to bob@agency.gov.nz (a lookalike of our own
#      domain): refused naming agency.govt.nz.
#   d. unclassified mail to friend@gmail.example (an ordinary correspondent)
#      and bob@agency.gov.nz: 250, only gmail.example's copy at the sink, and
#      alice's NON DELIVERY REPORT names agency.govt.nz.
#   audit: a breach line for a, c and d.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init misdirected
DOMAIN=agency.govt.nz
ALICE=alice@$DOMAIN
ALICE_PASS=alice-secret-17
REAL=officer@justice.govt.nz
LOOK=officer@justise.govt.nz
OURLOOK=bob@agency.gov.nz
FRIEND=friend@gmail.example
EXPECT_ONE=()
EXPECT_NONE=()

# send_msg ID SUBJECT RCPTS: alice submits a plain message.
send_msg() {
	send_auth alice "$ALICE_PASS" --from "$ALICE" --to "$3" --header "From: Alice <$ALICE>" \
		--header "Subject: $2" --add-header "X-Test-Id: $1" --body "Kia ora, this is $1."
}
# expect_misdirected RC REPLY LABEL DOMAIN INTENDED
expect_misdirected() {
	local rc=$1 reply=$2 label=$3 dom=$4 intended=$5
	if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.1\ recipient\ domain\ ${dom//./\\.}\ looks\ like\ ${intended//./\\.}:\ not\ sent\ \(misdirected\ mail\)$ ]]; then
		pass "$label: refused naming the intended domain: $reply"
	else
		fail "$label: refused with 550 5.7.1 recipient domain $dom looks like $intended: not sent (misdirected mail) (swaks exit $rc, reply '$reply')" "$SEND_OUT"
	fi
}

cat >"$WORK/zone" <<EOF
; misdirected.sh (tests/e2e/dnsd). Other names: NXDOMAIN.
$DOMAIN. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]" --set 'outbound.secure_domains=["*.govt.nz", "justice.govt.nz"]'
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id_a=$(unique_id)
EXPECT_NONE+=("$id_a")
n0=$(audit_count)
rc=0
send_msg "$id_a" "[IN-CONFIDENCE] e2e misdirected $id_a" "$LOOK" || rc=$?
expect_misdirected "$rc" "$(last_reply)" "a ([IN-CONFIDENCE] to $LOOK)" justise.govt.nz justice.govt.nz
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/a.audit"
assert_contains "$WORK/a.audit" 'justise\.govt\.nz looks like justice\.govt\.nz' "a: audit line names the lookalike and the intended domain"

# ------------------------------------------------------------------ b
id_b=$(unique_id)
rc=0
send_msg "$id_b" "[IN-CONFIDENCE] e2e misdirected $id_b" "$REAL" || rc=$?
expect_accepted "$rc" "$id_b" "b: the same message to $REAL accepted (250)" "b: the same message to $REAL accepted"
if wait_id "$id_b" 20; then
	f=$(sink_grep "^X-Test-Id: $id_b\$" | head -n 1)
	sink_headers "$f" >"$WORK/b.headers"
	assert_contains "$WORK/b.headers" "^X-Rcpt-Args: <$REAL>" "b: delivered to $REAL"
else
	fail "b: message $id_b reached the sink"
fi

# ------------------------------------------------------------------ c
id_c=$(unique_id)
EXPECT_NONE+=("$id_c")
n0=$(audit_count)
rc=0
send_msg "$id_c" "e2e misdirected $id_c" "$OURLOOK" || rc=$?
expect_misdirected "$rc" "$(last_reply)" "c (unclassified to $OURLOOK)" agency.gov.nz agency.govt.nz
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/c.audit"
assert_contains "$WORK/c.audit" 'agency\.gov\.nz looks like agency\.govt\.nz' "c: audit line for unclassified misdirected mail"

# ------------------------------------------------------------------ d
id_d=$(unique_id)
n0=$(audit_count)
rc=0
send_msg "$id_d" "e2e misdirected $id_d" "$FRIEND,$OURLOOK" || rc=$?
expect_accepted "$rc" "$id_d" "d: to $FRIEND and $OURLOOK accepted (250, split)" "d: mixed recipients accepted"
if wait_id "$id_d" 20; then
	sleep 1 # a second copy would have arrived by now
	assert_eq 1 "$(id_count "$id_d")" "d: exactly one copy at the sink"
	f=$(sink_grep "^X-Test-Id: $id_d\$" | head -n 1)
	sink_headers "$f" >"$WORK/d.headers"
	assert_contains "$WORK/d.headers" "^X-Rcpt-Args: <$FRIEND>" "d: the ordinary correspondent $FRIEND got it"
	assert_not_contains "$WORK/d.headers" '^X-Rcpt-Args: <[^>]*agency\.gov\.nz>' "d: $OURLOOK removed: never delivered"
else
	fail "d: message $id_d reached the sink"
fi
ndr_d() { ndr_for "$ALICE" "e2e misdirected $id_d"; }
has_ndr_d() { [[ -n $(ndr_d) ]]; }
if wait_until 30 has_ndr_d; then
	pass "d: alice got a NON DELIVERY REPORT at the sink"
	qp_decode "$(ndr_d)" | tr -d '\r' | tr '\n' ' ' | sed 's/  */ /g' >"$WORK/d.ndr"
	assert_contains "$WORK/d.ndr" 'agency\.gov\.nz looks like agency\.govt\.nz' "d: the report names the intended domain agency.govt.nz"
else
	fail "d: a NON DELIVERY REPORT reached alice within 30s"
fi
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/d.audit"
assert_contains "$WORK/d.audit" 'agency\.gov\.nz looks like agency\.govt\.nz' "d: audit line for the removed recipient"

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled

stop_milter
e2e_finish
