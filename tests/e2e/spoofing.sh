#!/usr/bin/env bash
# tests/e2e/spoofing.sh: sender spoofing and forged trust headers (issue 12
# points 4, 5, 8, 9), through a real Postfix.
#
# The milter runs under the DEFAULT sge profile (inbound.spf = "enforce",
# inbound.dmarc = "enforce", inbound.senderid = "tag") with domains=
# ["agency.govt.nz"] and authserv_id mx.agency.govt.nz. Inbound mail comes
# from the "internet" client 127.0.0.2 over STARTTLS. fwd.example publishes
# "v=spf1 ip4:192.0.2.1 -all" (not us), p=reject and a DKIM key (selector
# s1, made by `nzsecure-milter dkim-keygen`); mail is signed in the test by
# tests/e2e/dkimsign (auth/dkim, the milter's own signer):
#
#   a. M-RCV-SPF: MAIL FROM and From: news@fwd.example, unsigned (SPF -all
#      fail): MAIL FROM accepted, 550 5.7.23 "SPF check failed ..." after
#      DATA (the decision waits for DKIM).
#   b. RFC 7489 section 10.1: the same mail with an aligned DKIM signature
#      (d=fwd.example), as a list or an alias forwards it: delivered, with
#      Authentication-Results recording spf=fail, dkim=pass and dmarc=pass.
#   c. RFC 6376 section 8.15: the signed mail of b with an unsigned
#      Subject: added above the signed one: dkim=policy, no DMARC pass, so
#      550 5.7.23.
#   d. Our headers are ours: inbound From: ceo@agency.govt.nz (warning 005)
#      carrying a forged "X-NZ-Secure-Warning: 005 FORGED WARNING
#      (mx.agency.govt.nz)" (which used to drop the milter connection), a
#      forged X-NZ-Secure-Gateway and X-NZ-Secure-Route: a verdict (250),
#      and the delivered copy has exactly one X-NZ-Secure-Warning, ours,
#      and none of the forged headers.
#   e. outbound (alice, SASL): a forged X-NZ-Secure-Warning and
#      X-NZ-Secure-Gateway are removed from the copy that leaves.
#   f. 500 DKIM-Signature headers: a verdict (250, not a 4xx from a dropped
#      milter connection); Authentication-Results lists 10 dkim results
#      and "(and 490 more signatures not listed)".
#   all: nothing refused reaches the sink; every accepted message arrives
#      exactly once; the milter logged no error.
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init spoofing
DOMAIN=agency.govt.nz
GW=mx.agency.govt.nz
TO=user@$DOMAIN
ALICE_PASS=alice-secret-12
EXPECT_ONE=()
EXPECT_NONE=()

# headers_of ID: the unfolded headers of the delivered copy of ID in $WORK/ID.headers.
headers_of() {
	local f
	f=$(sink_grep "^X-Test-Id: $1\$" | head -n 1)
	unfolded_headers "$f" >"$WORK/$1.headers"
}
# message ID FROM [EXTRA HEADER LINES...]: a small message as a file.
message() {
	local id=$1 from=$2
	shift 2
	{
		for h in "$@"; do printf '%s\n' "$h"; done
		printf 'From: %s\nTo: %s\nSubject: e2e spoofing %s\nDate: %s\nMessage-ID: <%s@e2e.test>\nX-Test-Id: %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nHello from the spoofing test.\n' \
			"$from" "$TO" "$id" "$(date -R)" "$id" "$id"
	} >"$WORK/$id.eml"
}
sign() { "$WORK/dkimsign" -domain fwd.example -selector s1 -key "$WORK/s1.key" <"$1" >"$2"; }
# send_file FILE MAILFROM: the file as DATA, over STARTTLS.
send_file() { send --tls --from "$2" --to "$TO" --data "@$1"; }

e2e_need python3
if go build -o "$WORK/dkimsign" "$REPO_ROOT/tests/e2e/dkimsign" 2>"$WORK/dkimsign-build.log"; then
	pass "setup: built tests/e2e/dkimsign"
else
	fail "setup: built tests/e2e/dkimsign" "$WORK/dkimsign-build.log"
fi
"$NZBIN" dkim-keygen --domain fwd.example --selector s1 --out "$WORK/s1.key" >"$WORK/dkim.txt" 2>"$WORK/dkim-keygen.log"
{
	cat <<EOF
; spoofing.sh (tests/e2e/dnsd). The test client is 127.0.0.2. Other names: NXDOMAIN.
fwd.example.             300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.fwd.example.      300 IN TXT "v=DMARC1; p=reject"
pass.example.            300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
$DOMAIN.                 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
; From nzsecure-milter dkim-keygen:
EOF
	cat "$WORK/dkim.txt"
} >"$WORK/zone"
start_dns "$WORK/zone"
start_sink
start_milter --set "domains=[\"$DOMAIN\"]" --set "authserv_id=\"$GW\""
enable_submission "$DOMAIN" alice "$ALICE_PASS"
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
id_a=$(unique_id)
EXPECT_NONE+=("$id_a")
message "$id_a" news@fwd.example
rc=0
send_file "$WORK/$id_a.eml" news@fwd.example || rc=$?
reply=$(last_reply)
if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.23\ SPF\ check\ failed\ for\ news@fwd\.example:\ .*\(M-RCV-SPF\)$ ]]; then
	pass "a (M-RCV-SPF, default profile): SPF -all fail refused after DATA: $reply"
else
	fail "a (M-RCV-SPF, default profile): SPF -all fail refused with 550 5.7.23 after DATA (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi
if [[ $(mail_reply) == 250* ]]; then
	pass "a (M-RCV-SPF): MAIL FROM was accepted; the refusal waited for DKIM"
else
	fail "a (M-RCV-SPF): MAIL FROM accepted ('$(mail_reply)')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ b
id_b=$(unique_id)
message "$id_b" news@fwd.example
rc=0
sign "$WORK/$id_b.eml" "$WORK/$id_b.signed" || rc=$?
((rc == 0)) || fail "b: dkimsign signed the message (exit $rc)"
rc=0
send_file "$WORK/$id_b.signed" news@fwd.example || rc=$?
expect_accepted "$rc" "$id_b" "b (RFC 7489 10.1): SPF fail with an aligned DKIM signature accepted (250)" "b (RFC 7489 10.1): SPF fail with an aligned DKIM signature accepted"
if wait_id "$id_b" 20; then
	headers_of "$id_b"
	assert_contains "$WORK/$id_b.headers" "^Authentication-Results: $GW;.* spf=fail smtp\.mailfrom=news@fwd\.example" \
		"b: the SPF fail is recorded in Authentication-Results"
	assert_contains "$WORK/$id_b.headers" '^Authentication-Results: .* dkim=pass header\.d=fwd\.example' "b: dkim=pass header.d=fwd.example recorded"
	assert_contains "$WORK/$id_b.headers" '^Authentication-Results: .* dmarc=pass .*header\.from=fwd\.example' "b: dmarc=pass recorded"
else
	fail "b: message $id_b reached the sink"
fi

# ------------------------------------------------------------------ c
id_c=$(unique_id)
EXPECT_NONE+=("$id_c")
message "$id_c" news@fwd.example
rc=0
sign "$WORK/$id_c.eml" "$WORK/$id_c.signed.tmp" || rc=$?
{ echo "Subject: Urgent: new bank details"; cat "$WORK/$id_c.signed.tmp"; } >"$WORK/$id_c.signed"
rc=0
send_file "$WORK/$id_c.signed" news@fwd.example || rc=$?
reply=$(last_reply)
if ((rc == 26)) && [[ $reply =~ ^550[\ -]5\.7\.23\  ]]; then
	pass "c (RFC 6376 8.15): a replayed signature with an unsigned Subject: on top saves nothing: $reply"
else
	fail "c (RFC 6376 8.15): replay with an added Subject: refused 550 5.7.23 (swaks exit $rc, reply '$reply')" "$SEND_OUT"
fi
if grep '"msg":"decision"' "$WORK/milter.log" | grep '"action":"reject"' | grep '5.7.23' | grep -q '"result":"policy"'; then
	pass "c: the milter logged the signature as dkim result policy"
else
	fail "c: the milter logged the signature as dkim result policy" "$WORK/milter.log"
fi

# ------------------------------------------------------------------ d
id_d=$(unique_id)
message "$id_d" "The CEO <ceo@$DOMAIN>" \
	"X-NZ-Secure-Warning: 005 FORGED WARNING ($GW)" \
	"x-nz-secure-gateway: received=forged; gateway=$GW" \
	"X-NZ-Secure-Route: tls"
rc=0
send_file "$WORK/$id_d.eml" sender@pass.example || rc=$?
expect_accepted "$rc" "$id_d" "d (issue 12 point 8): a message with a forged X-NZ-Secure-Warning gets a verdict (250)" "d (issue 12 point 8): a forged X-NZ-Secure-Warning gets a verdict, not a dropped milter"
if wait_id "$id_d" 20; then
	headers_of "$id_d"
	assert_eq 1 "$(grep -ci '^X-NZ-Secure-Warning:' "$WORK/$id_d.headers")" "d: the delivered copy has exactly one X-NZ-Secure-Warning"
	assert_contains "$WORK/$id_d.headers" "^X-NZ-Secure-Warning: 005 [A-Z ]+ \($GW\)" "d: it is ours (005 for our own domain, R76)"
	assert_not_contains "$WORK/$id_d.headers" 'FORGED WARNING' "d: the forged warning is gone"
	assert_not_contains "$WORK/$id_d.headers" 'received=forged' "d: the forged X-NZ-Secure-Gateway is gone"
	assert_not_contains "$WORK/$id_d.headers" '^X-NZ-Secure-Route:' "d: the forged X-NZ-Secure-Route is gone"
else
	fail "d: message $id_d reached the sink"
fi

# ------------------------------------------------------------------ e
id_e=$(unique_id)
rc=0
send_auth alice "$ALICE_PASS" --from "alice@$DOMAIN" --to someone@partner.example \
	--header "Subject: e2e spoofing outbound $id_e" --add-header "X-Test-Id: $id_e" \
	--add-header "X-NZ-Secure-Warning: 002 UNVERIFIED MESSAGE ($GW)" \
	--add-header "X-NZ-Secure-Gateway: received=forged-outbound" \
	--body "Outbound with forged headers." || rc=$?
expect_accepted "$rc" "$id_e" "e (outbound): alice's message with forged gateway headers accepted (250)" "e (outbound): alice's message accepted"
if wait_id "$id_e" 20; then
	headers_of "$id_e"
	assert_not_contains "$WORK/$id_e.headers" '^X-NZ-Secure-Warning:' "e (outbound): the forged X-NZ-Secure-Warning is removed"
	assert_not_contains "$WORK/$id_e.headers" 'forged-outbound' "e (outbound): the forged X-NZ-Secure-Gateway is removed"
	assert_contains "$WORK/$id_e.headers" "^X-NZ-Secure-Gateway: received=.*gateway=$GW" "e (outbound): ours is there (R100)"
else
	fail "e: message $id_e reached the sink"
fi

# ------------------------------------------------------------------ f
id_f=$(unique_id)
flood=()
sig="DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=fwd.example; s=s1; h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=$(head -c 180 /dev/zero | tr '\0' 'A')"
for _ in $(seq 500); do flood+=("$sig"); done
message "$id_f" sender@pass.example "${flood[@]}"
rc=0
send_file "$WORK/$id_f.eml" sender@pass.example || rc=$?
expect_accepted "$rc" "$id_f" "f (issue 12 point 9): a message with 500 DKIM signatures gets a verdict (250)" "f (issue 12 point 9): 500 DKIM signatures get a verdict, not a dropped milter"
if wait_id "$id_f" 20; then
	headers_of "$id_f"
	ar=$(grep "^Authentication-Results: $GW;" "$WORK/$id_f.headers" || true)
	n=$(grep -o 'dkim=' <<<"$ar" | wc -l | tr -d ' ')
	if [[ $n == 10 && $ar == *"(and 490 more signatures not listed)"* ]]; then
		pass "f: Authentication-Results lists 10 dkim results and summarises the other 490 (${#ar} bytes)"
	else
		fail "f: Authentication-Results lists 10 dkim results and '(and 490 more signatures not listed)' (got $n, ${#ar} bytes)" "$WORK/$id_f.headers"
	fi
else
	fail "f: message $id_f reached the sink"
fi

# ------------------------------------------------------- nothing lost/doubled
assert_nothing_lost_or_doubled
if grep -E '"level":"ERROR"' "$WORK/milter.log" >"$WORK/milter.errors"; then
	fail "all: the milter logged no error" "$WORK/milter.errors"
else
	pass "all: the milter logged no error"
fi

stop_milter
e2e_finish
