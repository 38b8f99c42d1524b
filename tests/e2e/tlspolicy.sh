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
#   e. MTA-STS (RFC 8461, G-MTASTS): sts.example publishes
#      _mta-sts TXT "v=STSv1; id=..." and, on https://mta-sts.sts.example/
#      (port 443 of $STS_WEB_IP, tests/e2e/sts-web.py, a certificate of
#      the test CA, which tlspolicy trusts through SSL_CERT_FILE), "mode:
#      enforce, mx: mx.sts.example". tlspolicy answers "secure
#      match=mx.sts.example"; the message leaves over TLS with the TLS
#      receiver's certificate verified for mx.sts.example (Postfix:
#      "Verified TLS connection").
#   f. stsbad.example's enforced policy names mx.elsewhere.example, but its
#      MX is the TLS receiver (whose certificate does not name it): never
#      delivered, deferred.
#
# tlspolicy runs with --dns pointing at the test DNS server: its _mta-sts
# TXT lookups and the policy hosts' addresses stay on loopback (d checks
# one reached it).
#
# Prints one PASS/FAIL line per check and ends with "e2e: N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The sink and the TLS receiver must not be on 127.0.0.1 (Postfix's own
# inet_interfaces): Postfix will not deliver to an MX host that is itself.
SINK_IP=127.0.0.4
RECEIVER_IP=127.0.0.3
STS_WEB_IP=127.0.0.5
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
sts.example.           300 IN MX 10 mx.sts.example.
mx.sts.example.        300 IN A  $RECEIVER_IP
_mta-sts.sts.example.  300 IN TXT "v=STSv1; id=20261201T000000;"
mta-sts.sts.example.   300 IN A  $STS_WEB_IP
stsbad.example.        300 IN MX 10 mx.stsbad.example.
mx.stsbad.example.     300 IN A  $RECEIVER_IP
_mta-sts.stsbad.example. 300 IN TXT "v=STSv1; id=20261201T000000;"
mta-sts.stsbad.example. 300 IN A $STS_WEB_IP
EOF

# The MTA-STS web server (e, f) and the TLS receiver's certificate, which
# names mx.sts.example (and not mx.elsewhere.example), both of the test CA.
sts_cert() { # NAME DNS-NAME...
	local name=$1 san
	shift
	san=$(printf 'DNS:%s,' "$@")
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TLS_DIR/$name.key" \
		-out "$TLS_DIR/$name.csr" -subj "/CN=$1" &&
		printf '%s\n' "subjectAltName=${san%,}" "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE" >"$TLS_DIR/$name.ext" &&
		openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
			-days 3 -extfile "$TLS_DIR/$name.ext" -out "$TLS_DIR/$name.crt" &&
		chmod 644 "$TLS_DIR/$name.crt" "$TLS_DIR/$name.key"
}
if sts_cert sts-web mta-sts.sts.example mta-sts.stsbad.example >>"$WORK/sts-certs.log" 2>&1 &&
	sts_cert receiver tls-receiver.e2e.test mx.sts.example mx.secure.example >>"$WORK/sts-certs.log" 2>&1; then
	pass "setup: certificates for the MTA-STS web server and the TLS receiver"
else
	fail "setup: certificates for the MTA-STS web server and the TLS receiver" "$WORK/sts-certs.log"
fi
python3 "$E2E_DIR/sts-web.py" "$STS_WEB_IP" "$TLS_DIR/sts-web.crt" "$TLS_DIR/sts-web.key" >>"$WORK/sts-web.log" 2>&1 &
STS_WEB_PID=$!
e2e_track "$STS_WEB_PID"
e2e_record_pid "$STS_WEB_PID"
sts_web_up() { curl -sf --cacert "$TLS_DIR/ca.crt" --resolve "mta-sts.sts.example:443:$STS_WEB_IP" https://mta-sts.sts.example/.well-known/mta-sts.txt >/dev/null 2>&1; }
if wait_until 10 sts_web_up; then
	pass "setup: the MTA-STS web server answers on https://mta-sts.sts.example/ ($STS_WEB_IP:443)"
else
	fail "setup: the MTA-STS web server answers on $STS_WEB_IP:443 (is port 443 of $STS_WEB_IP free?)" "$WORK/sts-web.log"
fi

start_sink
start_dns53 "$WORK/zone"
# Both resolve through the test DNS server (start_dns53 sets DNS_ADDR).
# SSL_CERT_FILE: Go's system roots are the test CA, so the web server's
# certificate verifies (RFC 8461 section 3.3).
SSL_CERT_FILE=$TLS_DIR/ca.crt start_tlspolicy --set "$SECURE"
# The milter gets the same secure list as tlspolicy, as one policy file would.
start_milter --set "$DOMAINS" --set "$SECURE"

POSTFIX_EXTRA_MAIN="# tlspolicy.sh: TLS only where the policy map says so.
smtp_tls_security_level = may
smtp_tls_CAfile = $TLS_DIR/ca.crt
smtp_tls_loglevel = 1
smtp_tls_policy_maps = $TLSPOLICY_MAP
transport_maps = inline:{ secure.example=tlsmx:secure.example, notls.example=sinkmx:notls.example, plain.example=sinkmx:plain.example, sts.example=tlsmx:sts.example, stsbad.example=tlsmx:stsbad.example }"
POSTFIX_EXTRA_MASTER="# tlspolicy.sh: the TLS receiver (STARTTLS required), relaying all it
# receives to the sink through tosink, without the milter.
$RECEIVER_IP:$TLS_RECEIVER_PORT inet n - n - - smtpd
  -o syslog_name=postfix-e2e-$E2E_NAME/tlsreceiver
  -o myhostname=tls-receiver.e2e.test
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_cert_file=$TLS_DIR/receiver.crt
  -o smtpd_tls_key_file=$TLS_DIR/receiver.key
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
expect_sent "b2 (R115): [IN-CONFIDENCE] message to user@secure.example" "$rc"
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
expect_sent "b: message to user@secure.example" "$rc"
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
expect_sent "c: message to user@notls.example" "$rc"
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
expect_sent "d: message to user@plain.example" "$rc"
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

# ------------------------------------------------------------------ e
out=$(postmap -c "$PFDIR" -q sts.example "$TLSPOLICY_MAP" 2>&1) || true
assert_eq "secure match=mx.sts.example servername=hostname protocols=>=TLSv1.2" "$out" \
	"e (G-MTASTS): postmap -q sts.example: the enforced MTA-STS policy as a Postfix secure policy"
assert_contains "$WORK/tlspolicy.log" '"msg":"tls policy".*"domain":"sts\.example".*"source":"mta-sts"' \
	"e: tlspolicy answered sts.example from its MTA-STS policy"
assert_contains "$WORK/sts-web.log" 'GET /.well-known/mta-sts.txt' "e: tlspolicy fetched the policy from the web server over HTTPS"
id_e=$(unique_id)
rc=0
send_internal "$id_e" user@sts.example || rc=$?
expect_sent "e: message to user@sts.example" "$rc"
qid_e=$(queue_id)
if wait_id "$id_e" 30; then
	pass "e (G-MTASTS): the message to the MTA-STS domain reached the sink"
	assert_eq 1 "$(id_count "$id_e")" "e: delivered exactly once"
	assert_contains "$WORK/postfix.log" "tlsmx/smtp\[[0-9]+\]: Verified TLS connection established to mx\.sts\.example\[$RECEIVER_IP\]:$TLS_RECEIVER_PORT" \
		"e (RFC 8461 section 4): the MX's certificate was verified (Postfix: Verified TLS connection to mx.sts.example)"
	assert_contains "$WORK/postfix.log" "${qid_e:-none}: to=<user@sts\.example>, relay=mx\.sts\.example\[$RECEIVER_IP\]:$TLS_RECEIVER_PORT, .*status=sent" \
		"e: delivered to mx.sts.example (status=sent)"
else
	fail "e (G-MTASTS): the message to user@sts.example reached the sink" "$WORK/postfix.log" "$WORK/tlspolicy.log"
fi

# ------------------------------------------------------------------ f
out=$(postmap -c "$PFDIR" -q stsbad.example "$TLSPOLICY_MAP" 2>&1) || true
assert_eq "secure match=mx.elsewhere.example servername=hostname protocols=>=TLSv1.2" "$out" \
	"f: postmap -q stsbad.example: secure, matching only the policy's mx"
id_f=$(unique_id)
rc=0
send_internal "$id_f" user@stsbad.example || rc=$?
qid_f=$(queue_id)
qid_f=${qid_f:-none}
expect_sent "f: message to user@stsbad.example" "$rc"
deferred_f() { (($(pf_log_count "$qid_f: to=<user@stsbad\.example>, .*status=deferred \(Server certificate not verified\)") >= 1)); }
if wait_until 30 deferred_f; then
	pass "f (RFC 8461 section 4.2): deferred (Server certificate not verified): the MX's certificate does not name the policy's mx"
	assert_contains "$WORK/postfix.log" 'server certificate verification failed for mx\.stsbad\.example.*hostname mismatch' "f: Postfix names the hostname mismatch"
else
	fail "f: the message to user@stsbad.example deferred" "$WORK/postfix.log"
fi
assert_eq 0 "$(id_count "$id_f")" "f: nothing for stsbad.example at the sink"
assert_eq 0 "$(pf_log_count "to=<user@stsbad\.example>, .*status=sent")" "f: Postfix never reports it sent"

# ------------------------------------------------------------------ end
# The notls.example message is still deferred, as it should be; remove it.
check "end: the notls.example message is still in the queue" grep -q "^$qid_c" <(pf_postqueue -p 2>&1)
check "end: the stsbad.example message is still in the queue" grep -q "^$qid_f" <(pf_postqueue -p 2>&1)
pf_postsuper -d ALL >/dev/null 2>&1 || true
stop_milter
stop_tlspolicy
e2e_finish
