#!/usr/bin/env bash
# tests/e2e/firstcontact.sh: outbound.first_contact (issue 17 point 1)
# through a real Postfix: classified mail to an address this gateway has
# never sent classified mail to is held until an administrator confirms it.
#
# The milter runs under the sge profile with domains=["agency.govt.nz"],
# outbound.secure_domains=["partner.govt.nz"], outbound.first_contact =
# "hold" and its state in $WORK/first-contact. Mail is sent from
# 127.0.0.1 (an internal network: outbound).
#
#   a. [IN-CONFIDENCE] to new@partner.govt.nz: 250, held (postqueue "!"),
#      not at the sink; the administrator's and alice's notices name
#      "nzsecure-milter firstcontact approve new@partner.govt.nz" and
#      "postsuper -H QUEUEID"; an audit line.
#   b. release: firstcontact approve, then postsuper -H: delivered once.
#   c. a second [IN-CONFIDENCE] to new@PARTNER.govt.nz (domain case): the
#      address is known: delivered without a hold.
#   d. unclassified mail to stranger@partner.govt.nz: delivered (never held).
#   e. the milter restarted: new@partner.govt.nz still known (the state
#      file survived), delivered.
#   f. first_contact = "log": [IN-CONFIDENCE] to learn@partner.govt.nz is
#      delivered with an audit line; back under "hold" it is known (learned
#      once the MTA accepted it) and delivered.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init firstcontact
DOMAIN=agency.govt.nz
ALICE=alice@$DOMAIN
ADMIN=postmaster@$DOMAIN
NEW=new@partner.govt.nz
STATE=$WORK/first-contact
POLICY=(--set "domains=[\"$DOMAIN\"]" --set 'outbound.secure_domains=["partner.govt.nz"]'
	--set "outbound.first_contact_state=\"$STATE\"")
EXPECT_ONE=()
EXPECT_NONE=()

# send_msg ID SUBJECT RCPT: alice's message from an internal client.
send_msg() {
	SEND_FROM_IP=$SERVER_IP send --from "$ALICE" --to "$3" --header "From: Alice <$ALICE>" \
		--header "Subject: $2" --add-header "X-Test-Id: $1" --body "Kia ora, this is $1."
}
# expect_delivered ID LABEL: the last send got 250 and ID reached the sink.
expect_delivered() {
	local rc=$1 id=$2 label=$3
	expect_accepted "$rc" "$id" "$label: accepted (250)" "$label: accepted"
	if wait_id "$id" 20; then
		pass "$label: delivered without a hold"
	else
		fail "$label: reached the sink within 20s (held? $(pf_postqueue -p 2>&1 | grep -c '!') on hold)"
	fi
}

cat >"$WORK/zone" <<EOF2
; firstcontact.sh (tests/e2e/dnsd). Other names: NXDOMAIN.
$DOMAIN. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF2
start_dns "$WORK/zone"
start_sink
start_milter "${POLICY[@]}" --set 'outbound.first_contact="hold"'
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id_a=$(unique_id)
n0=$(audit_count)
rc=0
send_msg "$id_a" "[IN-CONFIDENCE] e2e first contact $id_a" "$NEW" || rc=$?
qid_a=
if ((rc == 0)) && accepted; then
	qid_a=$(queue_id)
	pass "a: [IN-CONFIDENCE] to $NEW accepted by the MTA (250, queue id $qid_a)"
else
	fail "a: [IN-CONFIDENCE] to $NEW accepted (250) (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
fi
expect_held "$qid_a" a "a: held for confirmation: postqueue -p shows $qid_a!" "a"
# notice_for WHO ID: the generated notice to WHO about message ID (its
# Subject is folded and its body quoted-printable, so both are decoded
# and unfolded before matching).
notice_for() {
	local f
	for f in $(sink_files); do
		grep -q "^X-Rcpt-Args: <$1>" "$f" || continue
		grep -q '^X-Test-Id:' "$f" && continue # an original, not a notice
		qp_decode "$f" | tr -d '\r\n' | grep -qF -- "$2" && {
			echo "$f"
			return 0
		}
	done
	return 0
}
for who in "$ADMIN" "$ALICE"; do
	notice_a() { notice_for "$who" "$id_a"; }
	has_notice_a() { [[ -n $(notice_a) ]]; }
	if wait_until 30 has_notice_a; then
		pass "a: a held-mail notice reached $who"
		qp_decode "$(notice_a)" | tr -d '\r' | tr '\n' ' ' | sed 's/  */ /g' >"$WORK/a.notice.$who"
		assert_contains "$WORK/a.notice.$who" "nzsecure-milter firstcontact approve $NEW" "a: the notice to $who names the approve command"
		assert_contains "$WORK/a.notice.$who" "postsuper -H $qid_a" "a: the notice to $who names postsuper -H $qid_a"
	else
		fail "a: a held-mail notice about '$id_a' reached $who within 30s"
	fi
done
sleep 1
assert_eq 0 "$(id_count "$id_a")" "a: the held message is not at the sink"
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/a.audit"
assert_contains "$WORK/a.audit" "first classified mail to the address" "a: audit line for the first contact"

# ------------------------------------------------------------------ b
rc=0
"$NZBIN" firstcontact approve "$NEW" "${POLICY[@]}" >"$WORK/b.approve" 2>&1 || rc=$?
if ((rc == 0)) && grep -q "approved $NEW" "$WORK/b.approve"; then
	pass "b: nzsecure-milter firstcontact approve $NEW"
else
	fail "b: firstcontact approve exit $rc" "$WORK/b.approve"
fi
if [[ -n $qid_a ]]; then
	pf_postsuper -H "$qid_a" >"$WORK/b.postsuper" 2>&1 || true
	pf_postqueue -i "$qid_a" >/dev/null 2>&1 || true
	if wait_id "$id_a" 30; then
		pass "b: postsuper -H $qid_a released it and it reached the sink"
		EXPECT_ONE+=("$id_a")
	else
		fail "b: released to the sink within 30s" "$WORK/b.postsuper"
	fi
fi

# ------------------------------------------------------------------ c
sleep 3 # serve reads the approval at its next sync (every 2s)
id_c=$(unique_id)
rc=0
send_msg "$id_c" "[IN-CONFIDENCE] e2e first contact $id_c" "new@PARTNER.govt.nz" || rc=$?
expect_delivered "$rc" "$id_c" "c (approved address, domain in another case)"

# ------------------------------------------------------------------ d
id_d=$(unique_id)
rc=0
send_msg "$id_d" "e2e first contact $id_d" "stranger@partner.govt.nz" || rc=$?
expect_delivered "$rc" "$id_d" "d (unclassified to a new address)"

# ------------------------------------------------------------------ e
stop_milter
assert_contains "$STATE" "^new@partner\.govt\.nz$" "e: the state file holds the approved address after shutdown"
start_milter "${POLICY[@]}" --set 'outbound.first_contact="hold"'
id_e=$(unique_id)
rc=0
send_msg "$id_e" "[IN-CONFIDENCE] e2e first contact $id_e" "$NEW" || rc=$?
expect_delivered "$rc" "$id_e" "e (after a restart: still known)"

# ------------------------------------------------------------------ f
stop_milter
start_milter "${POLICY[@]}" --set 'outbound.first_contact="log"'
id_f=$(unique_id)
n0=$(audit_count)
rc=0
send_msg "$id_f" "[IN-CONFIDENCE] e2e first contact $id_f" "learn@partner.govt.nz" || rc=$?
expect_delivered "$rc" "$id_f" "f (log mode, a new address)"
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/f.audit"
assert_contains "$WORK/f.audit" "learn@partner\.govt\.nz: first classified mail to the address, sent" "f: log mode writes an audit line"
stop_milter
start_milter "${POLICY[@]}" --set 'outbound.first_contact="hold"'
id_f2=$(unique_id)
rc=0
send_msg "$id_f2" "[IN-CONFIDENCE] e2e first contact $id_f2" "learn@partner.govt.nz" || rc=$?
expect_delivered "$rc" "$id_f2" "f (hold mode: learned in log mode once accepted)"

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled

stop_milter
e2e_finish
