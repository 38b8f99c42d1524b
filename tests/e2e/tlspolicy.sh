#!/usr/bin/env bash
# tests/e2e/tlspolicy.sh: the tlspolicy service end to end (M-SEC-OUT).
#
# `nzsecure-milter tlspolicy` runs with
# outbound.secure_domains=["secure.example","notls.example"] and answers the
# private Postfix's smtp_tls_policy_maps (socketmap). Postfix's own default
# is smtp_tls_security_level=may, so only the policy map can force TLS.
#
# Delivery is as on the internet: per domain, an smtp transport in a chroot
# whose resolv.conf points at the loopback DNS server (tests/e2e/dnsd, on
# port 53 of a spare loopback address), MX lookups there, and a fixed port
# (smtp_tcp_port); so the TLS policy lookup key is the recipient domain, as
# in production:
#
#   secure.example  MX -> 127.0.0.3: a "TLS receiver", a second smtpd of the
#                   same Postfix that requires STARTTLS
#                   (smtpd_tls_security_level=encrypt, myhostname
#                   tls-receiver.e2e.test) and hands all it receives to the
#                   sink (content_filter), adding a Received header that
#                   says whether TLS was used
#   notls.example   MX -> 127.0.0.4: the sink (smtp-sink: no STARTTLS)
#   plain.example   MX -> 127.0.0.4: the sink
#
# Mail comes from an internal client (127.0.0.1) through the milter
# (domains=["agency.govt.nz"], From: x@agency.govt.nz).
#
#   a. postmap -q through the socketmap: secure.example and notls.example
#      get "encrypt protocols=>=TLSv1.2", plain.example nothing.
#   b. to user@secure.example: delivered over TLS to the TLS receiver (its
#      Received header: ESMTPS, TLSv1.2+), then to the sink.
#   b2. an [IN-CONFIDENCE] message to user@secure.example: accepted by the
#      milter (secure list) and delivered over TLS through the TLS receiver.
#   b3. the same to user@plain.example: refused, 550 5.7.1 (R115).
#   c. to user@notls.example: never delivered in clear; deferred with "TLS
#      is required, but was not offered" over several queue runs, and not
#      at the sink.
#   d. to user@plain.example: delivered (NOTFOUND: Postfix's default, may).
#
# MTA-STS end to end is not tested here: it needs HTTPS on port 443 of
# mta-sts.<domain>, resolved by the system resolver (tlspolicy's --dns is
# used only for the _mta-sts TXT lookup). tlspolicy runs with --dns pointing
# at the test DNS server, so its _mta-sts TXT lookups stay on loopback (d
# checks one reached it).
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The sink and the TLS receiver must not be on 127.0.0.1 (Postfix's own
# inet_interfaces): Postfix will not deliver to an MX host that is itself.
SINK_IP=127.0.0.4
RECEIVER_IP=127.0.0.3
e2e_init tlspolicy
e2e_need postmap
pick_port TLS_RECEIVER_PORT

DOMAINS='domains=["agency.govt.nz"]'
SECURE='outbound.secure_domains=["secure.example","notls.example"]'
FROM=x@agency.govt.nz

last_reply() { grep -E '^ *<[~*-]+ +[0-9]{3}[ -]' "$SEND_OUT" | tail -n 1 | sed -E 's/^ *<[~*-]+ +//'; }

# send_internal ID RCPT [SUBJECT-PREFIX]: a TLS message from the internal
# client 127.0.0.1 (outbound for the milter).
send_internal() {
	SEND_FROM_IP=$SERVER_IP send --tls --from "$FROM" --to "$2" \
		--header "Subject: ${3:+$3 }e2e tlspolicy $1" --add-header "X-Test-Id: $1"
}

# received_headers FILE: the Received headers of a message, unfolded, one a
# line.
received_headers() {
	sink_headers "$1" | awk '
		/^[ \t]/ { if (cur != "") { sub(/^[ \t]+/, " "); cur = cur $0 } ; next }
		{ if (cur ~ /^Received:/) print cur; cur = $0 }
		END { if (cur ~ /^Received:/) print cur }'
}

# pf_log_count PATTERN: lines of the Postfix log matching PATTERN (grep -E).
pf_log_count() { { grep -Ec -- "$1" "$WORK/postfix.log" || true; } | tr -d ' '; }

cat >"$WORK/zone" <<EOF
; Test zone for tlspolicy.sh (served by tests/e2e/dnsd).
secure.example.        300 IN MX 10 mx.secure.example.
mx.secure.example.     300 IN A  $RECEIVER_IP
notls.example.         300 IN MX 10 mx.notls.example.
mx.notls.example.      300 IN A  $SINK_IP
plain.example.         300 IN MX 10 mx.plain.example.
mx.plain.example.      300 IN A  $SINK_IP
EOF

start_sink
start_dns53 "$WORK/zone"
# Both resolve through the test DNS server (start_dns53 sets DNS_ADDR).
start_tlspolicy --set "$SECURE"
# The milter gets the same secure list as tlspolicy, as one policy file would.
start_milter --set "$DOMAINS" --set "$SECURE"

POSTFIX_EXTRA_MAIN="# tlspolicy.sh: TLS only where the policy map says so.
smtp_tls_security_level = may
smtp_tls_CAfile = $TLS_DIR/ca.crt
smtp_tls_loglevel = 1
smtp_tls_policy_maps = $TLSPOLICY_MAP
transport_maps = inline:{ secure.example=tlsmx:secure.example, notls.example=sinkmx:notls.example, plain.example=sinkmx:plain.example }"
POSTFIX_EXTRA_MASTER="# tlspolicy.sh: the TLS receiver (STARTTLS required), relaying all it
# receives to the sink through tosink, without the milter.
$RECEIVER_IP:$TLS_RECEIVER_PORT inet n - n - - smtpd
  -o syslog_name=postfix-e2e-$E2E_NAME/tlsreceiver
  -o myhostname=tls-receiver.e2e.test
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_received_header=yes
  -o receive_override_options=no_milters
  -o content_filter=tosink:[$SINK_IP]:$SINK_PORT
  -o smtpd_relay_restrictions=permit_mynetworks,reject
# MX delivery per domain; chroot y: resolv.conf in the queue directory.
tlsmx     unix  -       -       y       -       -       smtp
  -o syslog_name=postfix-e2e-$E2E_NAME/tlsmx
  -o smtp_tcp_port=$TLS_RECEIVER_PORT
sinkmx    unix  -       -       y       -       -       smtp
  -o syslog_name=postfix-e2e-$E2E_NAME/sinkmx
  -o smtp_tcp_port=$SINK_PORT
tosink    unix  -       -       n       -       -       smtp
  -o syslog_name=postfix-e2e-$E2E_NAME/tosink
  -o smtp_tls_security_level=none
  -o smtp_tls_policy_maps="
POSTFIX_EXTRA_PORTS=$TLS_RECEIVER_PORT
pf_use_dns
start_postfix "inet:$SERVER_IP:$MILTER_PORT"

# ------------------------------------------------------------------ a
for d in secure.example notls.example; do
	out=$(postmap -c "$PFDIR" -q "$d" "$TLSPOLICY_MAP" 2>&1) || true
	assert_eq "encrypt protocols=>=TLSv1.2" "$out" "a: postmap -q $d $TLSPOLICY_MAP"
done
rc=0
out=$(postmap -c "$PFDIR" -q plain.example "$TLSPOLICY_MAP" 2>&1) || rc=$?
if ((rc == 1)) && [[ -z $out ]]; then
	pass "a: postmap -q plain.example: not found (exit 1, no policy)"
else
	fail "a: postmap -q plain.example: not found (exit $rc, output '$out')"
fi

# ------------------------------------------------- b2, b3 (M-OUT, R115)
# Classified mail: [IN-CONFIDENCE] may go only to secure domains, and only
# over TLS (sge: "only over enforced TLS"); to a domain off the lists it is
# refused before it is queued.
id_b2=$(unique_id)
rc=0
send_internal "$id_b2" user@secure.example "[IN-CONFIDENCE]" || rc=$?
if ((rc == 0)) && accepted; then
	pass "b2 (R115): [IN-CONFIDENCE] message to user@secure.example accepted"
else
	fail "b2 (R115): [IN-CONFIDENCE] message to user@secure.example accepted (swaks exit $rc: $(last_reply))" "$SEND_OUT"
fi
if wait_id "$id_b2" 30; then
	f=$(sink_grep "^X-Test-Id: $id_b2\$" | head -n 1)
	received_headers "$f" | grep -F 'by tls-receiver.e2e.test' >"$WORK/b2.received" || true
	assert_contains "$WORK/b2.received" '\(using TLSv1\.[23] with cipher ' \
		"b2 (R115, M-SEC-OUT): the [IN-CONFIDENCE] message left over TLS >= 1.2 to the TLS receiver"
	assert_contains "$f" '^X-NZ-Secure-email: compliant; classification="IN-CONFIDENCE"' \
		"b2 (R60): tagged with its classification"
else
	fail "b2 (R115): [IN-CONFIDENCE] message to user@secure.example reached the sink"
fi
id_b3=$(unique_id)
rc=0
send_internal "$id_b3" user@plain.example "[IN-CONFIDENCE]" || rc=$?
reply=$(grep -Eo '550 5\.7\.1 Message classified \[IN-CONFIDENCE\] refused[^<]*' "$SEND_OUT" | head -n 1)
if ((rc != 0)) && [[ -n $reply ]]; then
	pass "b3 (R115): [IN-CONFIDENCE] to user@plain.example refused ($reply)"
else
	fail "b3 (R115): [IN-CONFIDENCE] to user@plain.example refused with 550 5.7.1 (swaks exit $rc)" "$SEND_OUT"
fi

# ------------------------------------------------------------------ b
id_b=$(unique_id)
rc=0
send_internal "$id_b" user@secure.example || rc=$?
if ((rc == 0)) && accepted; then
	pass "b: message to user@secure.example accepted"
else
	fail "b: message to user@secure.example accepted (swaks exit $rc: $(last_reply))" "$SEND_OUT"
fi
if wait_id "$id_b" 30; then
	f=$(sink_grep "^X-Test-Id: $id_b\$" | head -n 1)
	received_headers "$f" | grep -F 'by tls-receiver.e2e.test' >"$WORK/b.received" || true
	assert_contains "$WORK/b.received" 'by tls-receiver\.e2e\.test \(Postfix\) with ESMTPS ' \
		"b: arrived at the sink through the TLS receiver (Received: ... with ESMTPS)"
	assert_contains "$WORK/b.received" '\(using TLSv1\.[23] with cipher ' \
		"b: the hop to the TLS receiver used TLS >= 1.2 ($(grep -Eo 'using TLSv1\.[0-9]' "$WORK/b.received" | head -n 1))"
	assert_eq 1 "$(id_count "$id_b")" "b: delivered to the sink exactly once"
	assert_contains "$f" '^X-NZ-Secure-email: compliant; ' "b: the milter tagged it (X-NZ-Secure-email)"
else
	fail "b: message to user@secure.example reached the sink"
fi
qid_b=$(queue_id)
assert_contains "$WORK/dns.log" 'udp MX secure\.example\. ' "b: Postfix's smtp client asked the test DNS server for the MX of secure.example"
assert_contains "$WORK/postfix.log" "tlsmx/smtp\[[0-9]+\]: .*TLS connection established to mx\.secure\.example\[$RECEIVER_IP\]:$TLS_RECEIVER_PORT" \
	"b: Postfix's smtp client connected to that MX with TLS"
assert_contains "$WORK/postfix.log" "${qid_b:-none}: to=<user@secure\.example>, relay=mx\.secure\.example\[$RECEIVER_IP\]:$TLS_RECEIVER_PORT, .*status=sent" \
	"b: delivered to mx.secure.example (status=sent)"
assert_contains "$WORK/tlspolicy.log" '"msg":"tls policy".*"domain":"secure\.example".*"source":"secure_domains"' \
	"b: tlspolicy answered secure.example from secure_domains"

# ------------------------------------------------------------------ c
id_c=$(unique_id)
rc=0
send_internal "$id_c" user@notls.example || rc=$?
if ((rc == 0)) && accepted; then
	pass "c: message to user@notls.example accepted"
else
	fail "c: message to user@notls.example accepted (swaks exit $rc: $(last_reply))" "$SEND_OUT"
fi
qid_c=$(queue_id)
qid_c=${qid_c:-none}
deferred_tls() { pf_log_count "$qid_c: to=<user@notls\.example>, .*status=deferred \(TLS is required, but was not offered"; }
# Three delivery attempts: the first, then two more that `postqueue -f`
# asks for at once (Postfix's own retry schedule is too loose to wait on);
# every one must be deferred for want of TLS.
deferred_at_least() { (($(deferred_tls) >= $1)); }
attempts_ok=1
for n in 1 2 3; do
	((n == 1)) || pf_postqueue -f >/dev/null 2>&1 || true
	wait_until 30 deferred_at_least "$n" || { attempts_ok=0; break; }
done
if ((attempts_ok)); then
	pass "c: deferred on every attempt ($(deferred_tls) so far): TLS is required, but was not offered by mx.notls.example"
else
	fail "c: deferred with 'TLS is required, but was not offered' on 3 attempts (saw $(deferred_tls))"
fi
pf_postqueue -p >"$WORK/c.mailq" 2>&1 || true
if grep -q "^$qid_c" "$WORK/c.mailq" && grep -q 'TLS is required, but was not offered' "$WORK/c.mailq"; then
	pass "c: postqueue -p lists it, deferred: $(grep -Eo 'TLS is required[^)]*' "$WORK/c.mailq" | head -n 1)"
else
	fail "c: postqueue -p lists $qid_c with the TLS reason" "$WORK/c.mailq"
fi
assert_eq 0 "$(id_count "$id_c")" "c: nothing for notls.example at the sink (never sent in clear)"
assert_eq 0 "$(pf_log_count "to=<user@notls\.example>, .*status=sent")" "c: Postfix never reports it sent"
assert_contains "$WORK/tlspolicy.log" '"msg":"tls policy".*"domain":"notls\.example".*"policy":"encrypt protocols=>=TLSv1\.2"' \
	"c: tlspolicy answered notls.example with encrypt"

# ------------------------------------------------------------------ d
id_d=$(unique_id)
rc=0
send_internal "$id_d" user@plain.example || rc=$?
if ((rc == 0)) && accepted; then
	pass "d: message to user@plain.example accepted"
else
	fail "d: message to user@plain.example accepted (swaks exit $rc: $(last_reply))" "$SEND_OUT"
fi
qid_d=$(queue_id)
if wait_id "$id_d" 30; then
	pass "d: plain.example (no policy: NOTFOUND) delivered to the sink"
	assert_eq 1 "$(id_count "$id_d")" "d: delivered exactly once"
else
	fail "d: plain.example (no policy: NOTFOUND) delivered to the sink"
fi
assert_contains "$WORK/postfix.log" "${qid_d:-none}: to=<user@plain\.example>, relay=mx\.plain\.example\[$SINK_IP\]:$SINK_PORT, .*status=sent" \
	"d: delivered through the MX found in the test DNS (status=sent)"
assert_not_contains "$WORK/tlspolicy.log" '"msg":"tls policy".*"domain":"plain\.example"' \
	"d: tlspolicy gave plain.example no policy"
assert_contains "$WORK/dns.log" 'TXT _mta-sts\.plain\.example\.' \
	"d: tlspolicy's MTA-STS lookup for plain.example went to the test DNS server (--dns)"

# ------------------------------------------------------------------ end
# The notls.example message is still deferred, as it should be; remove it.
check "end: the notls.example message is still in the queue" grep -q "^$qid_c" <(pf_postqueue -p 2>&1)
pf_postsuper -d ALL >/dev/null 2>&1 || true
stop_milter
stop_tlspolicy
e2e_finish
