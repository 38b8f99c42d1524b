#!/usr/bin/env bash
# tests/e2e/failsafe.sh: classification fails safe (issue 11) through a real
# Postfix: what the scanner cannot read is never tagged compliant
# UNCLASSIFIED, and signed content is content.
#
# The milter runs under the default sge profile with domains=
# ["agency.govt.nz"] and outbound.secure_domains=["secure.example"]; alice
# submits on the SASL submission port (outbound); the internet client is
# 127.0.0.2. The S/MIME messages are made by `openssl cms` (an independent
# implementation) with a throw-away certificate.
#
#   a. alice sends an opaque-signed S/MIME message (application/pkcs7-mime;
#      smime-type=signed-data, as some clients sign by default) whose signed
#      text says [SECRET] (not readable in the raw message) to
#      user@secure.example: 250 but HELD (R110), the administrator notice
#      reaches postmaster, the audit line says SECRET (R113).
#   b. alice sends an S/MIME-encrypted message (enveloped-data) to
#      user@gmail.example: the gateway cannot read it, so it is HELD
#      (classification.unreadable = "hold", the default), the administrator
#      notice gives the unreadable reason, the audit line names the
#      unreadable content, and nothing reaches the sink.
#   c. control: an opaque-signed message without a marking to
#      user@gmail.example is read, delivered and tagged
#      compliant; classification="UNCLASSIFIED" (so a and b cannot pass by
#      holding everything signed).
#   d. inbound, an encrypted message from the internet is delivered
#      (recorded only) and the decision log lists it as unreadable.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init failsafe
DOMAIN=agency.govt.nz
ADMIN=postmaster@$DOMAIN
ALICE=alice@$DOMAIN
ALICE_PASS=alice-secret-11
SECURE=user@secure.example
GMAIL=user@gmail.example
EXPECT_ONE=()
EXPECT_NONE=()

e2e_need openssl python3

# A throw-away S/MIME identity for alice.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/alice.key" -out "$WORK/alice.crt" -days 7 \
	-subj "/CN=$ALICE" -addext "subjectAltName=email:$ALICE" >/dev/null 2>&1 ||
	fail "setup: openssl req made alice's certificate"

# smime_eml FILE ID FROM TO KIND TEXT: a message whose content (a text/plain
# entity saying TEXT) is signed opaquely (KIND=sign) or encrypted
# (KIND=encrypt) by openssl cms, with CRLF line ends.
smime_eml() {
	local file=$1 id=$2 from=$3 to=$4 kind=$5 text=$6
	printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nKia ora,\r\n\r\nThis note is %s.\r\n' "$text" >"$file.inner"
	{
		printf '%s\r\n' "From: <$from>" "To: <$to>" "Subject: e2e failsafe $id" "X-Test-Id: $id" \
			"Date: $(date -R)" "Message-ID: <$id@client.e2e.test>"
		if [[ $kind == sign ]]; then
			openssl cms -sign -nodetach -in "$file.inner" -signer "$WORK/alice.crt" -inkey "$WORK/alice.key" -outform SMIME -crlfeol
		else
			openssl cms -encrypt -aes256 -in "$file.inner" -outform SMIME -crlfeol "$WORK/alice.crt"
		fi
	} >"$file"
}

cat >"$WORK/zone" <<EOF
; failsafe.sh (tests/e2e/dnsd). The test client is 127.0.0.2.
sender.example.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
$DOMAIN.          300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]" --set 'outbound.secure_domains=["secure.example"]'
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# notice_for ID: the administrator notice about message ID at the sink.
notice_for() { generated_for "$ADMIN" "e2e failsafe $1"; }

# submit_held TAG ID RCPT LABEL WHAT: alice submits $WORK/ID.eml to RCPT;
# it must be accepted (250), then held (postqueue shows QUEUEID!), and an
# administrator notice about it must reach $ADMIN. Sets HELD_QID and
# HELD_NOTICE (the notice's file, "" when none came).
submit_held() {
	local tag=$1 id=$2 rcpt=$3 label=$4 what=$5 rc=0
	HELD_QID= HELD_NOTICE=
	send_auth alice "$ALICE_PASS" --from "$ALICE" --to "$rcpt" --data "$WORK/$id.eml" || rc=$?
	if ((rc == 0)) && accepted; then
		HELD_QID=$(queue_id)
		pass "$label: $what accepted for holding (250, queue id $HELD_QID)"
	else
		fail "$label: $what accepted for holding (swaks exit $rc, reply '$(last_reply)')" "$SEND_OUT"
	fi
	expect_held "$HELD_QID" "$tag" "$label: held: postqueue -p shows $HELD_QID!" "$label"
	has_notice() { [[ -n $(notice_for "$id") ]]; }
	if wait_until 30 has_notice; then
		HELD_NOTICE=$(notice_for "$id")
		pass "$label: the administrator notice reached $ADMIN"
	else
		fail "$label: an administrator notice about '$id' reached $ADMIN within 30s"
	fi
}

# ------------------------------------------------------------------ a
id_a=$(unique_id)
smime_eml "$WORK/$id_a.eml" "$id_a" "$ALICE" "$SECURE" sign "[SECRET]"
if grep -q 'SECRET' "$WORK/$id_a.eml"; then
	fail "a: test setup: the marking must not be readable in the raw message" "$WORK/$id_a.eml"
fi
n0=$(audit_count)
submit_held a "$id_a" "$SECURE" "a (R110, issue 11)" "opaque-signed [SECRET] to $SECURE"
qid_a=$HELD_QID
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/a.audit"
assert_contains "$WORK/a.audit" '"classification":"SECRET"' "a (R113): the audit line says SECRET (found inside the signed-data)"
EXPECT_NONE+=("$id_a")

# ------------------------------------------------------------------ b
id_b=$(unique_id)
smime_eml "$WORK/$id_b.eml" "$id_b" "$ALICE" "$GMAIL" encrypt "[TOP SECRET]"
n0=$(audit_count)
submit_held b "$id_b" "$GMAIL" "b (issue 11)" "encrypted message to $GMAIL (classification.unreadable = hold)"
qid_b=$HELD_QID
if [[ -n $HELD_NOTICE ]]; then
	qp_decode "$HELD_NOTICE" | tr -d '\r' | tr '\n' ' ' >"$WORK/b.notice"
	assert_contains "$WORK/b.notice" 'could not read all of its content' "b (issue 11): the notice says the content could not be read"
	assert_contains "$WORK/b.notice" '[Ee]ncrypted|[Ee]nveloped' "b (issue 11): the notice gives the unreadable reason (encrypted content)"
	assert_contains "$WORK/b.notice" "postsuper -H $qid_b" "b (R56): the notice names the release command"
else
	fail "b (issue 11): the notice's reason (no notice)"
fi
wait_until 5 audit_grew "$n0" || true
audit_since "$n0" >"$WORK/b.audit"
assert_contains "$WORK/b.audit" 'unreadable content' "b (R113, issue 11): the audit line names the unreadable content"
EXPECT_NONE+=("$id_b")

# ------------------------------------------------------------------ c
id_c=$(unique_id)
smime_eml "$WORK/$id_c.eml" "$id_c" "$ALICE" "$GMAIL" sign "for the lunch roster"
rc=0
send_auth alice "$ALICE_PASS" --from "$ALICE" --to "$GMAIL" --data "$WORK/$id_c.eml" || rc=$?
expect_accepted "$rc" "$id_c" "c (control): an opaque-signed unmarked message to $GMAIL accepted (250)" "c (control): an opaque-signed unmarked message accepted"
if wait_id "$id_c" 20; then
	f=$(sink_grep "^X-Test-Id: $id_c\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/c.headers"
	assert_contains "$WORK/c.headers" '^X-NZ-Secure-email: compliant; classification="UNCLASSIFIED"' \
		"c (R60): the signed content was read, so it is tagged compliant UNCLASSIFIED"
else
	fail "c (control): message $id_c reached the sink"
fi

# ------------------------------------------------------------------ d
id_d=$(unique_id)
smime_eml "$WORK/$id_d.eml" "$id_d" "sender@sender.example" "user@$DOMAIN" encrypt "[SECRET]"
rc=0
send --tls --from sender@sender.example --to "user@$DOMAIN" --data "$WORK/$id_d.eml" || rc=$?
expect_accepted "$rc" "$id_d" "d (issue 11): inbound encrypted mail accepted (recorded only)" "d (issue 11): inbound encrypted mail accepted"
if wait_id "$id_d" 20; then
	pass "d (issue 11): inbound encrypted mail delivered"
else
	fail "d (issue 11): inbound message $id_d reached the sink"
fi
grep -F '"msg":"decision"' "$WORK/milter.log" | grep -F "\"sender\":\"sender@sender.example\"" >"$WORK/d.log" || true
assert_contains "$WORK/d.log" '"unreadable":\[' "d (issue 11): the decision log lists the inbound message as unreadable"

# The held messages stay held until an administrator acts: delete them so
# the queue check below sees nothing else left behind.
for q in $qid_a $qid_b; do pf_postsuper -d "$q" hold >/dev/null 2>&1 || true; done
assert_nothing_lost_or_doubled held

stop_milter
e2e_finish
