#!/usr/bin/env bash
# tests/e2e/sendmail.sh: the milter behind a real Sendmail (issue 16).
#
# Debian's sendmail-bin (with sendmail-cf, m4 and libwrap0) is fetched with
# `apt-get download` and unpacked with `dpkg -x` into a private root, so
# Postfix stays the machine's MTA; a sendmail.cf is generated with m4 from a
# minimal .mc carrying the INPUT_MAIL_FILTER line of
# contrib/sendmail/sendmail.mc.snippet (only S= changed to the test's port)
# and no confMILTER_MACROS_* lines. The private Sendmail listens on
# 127.0.0.1:$SMTP_PORT with STARTTLS and relays everything to the sink. The
# milter's generated mail goes back into it through its sendmail -C.
#
#   a. inbound from the internet (127.0.0.2) without STARTTLS: refused 530
#      at MAIL FROM (G-TLS), so the milter saw Sendmail's TLS macros (none).
#   b. inbound over TLS: accepted; Authentication-Results names the MTA's
#      host (Sendmail's $j, authserv_id unset) and the TLS macros arrived.
#   c. outbound (internal client) UNCLASSIFIED: tagged X-NZ-Secure-email
#      with gateway=<$j>.
#   d. outbound [SECRET] to an external recipient: held in Sendmail's
#      quarantine with the hold reason alone, naming Sendmail's release
#      command; the administrator's notice names it too; released with that
#      command, the message reaches the sink.
#   e. R66: outbound From: in a foreign domain refused (550); with SMTP
#      AUTH (Cyrus sasldb, PLAIN over STARTTLS on a submission port that
#      requires it), alice may send as alice@ but not as bob@ (550).
#   f. warning 005: inbound From: our own domain from the internet is
#      delivered wrapped with the warning (R76).
#   h. domain S/MIME under Sendmail, as the README sets it up: the milter
#      declared with MAIL_FILTER and named in the I= of the public and
#      submission daemons only, and a loopback daemon without it for the
#      milter's own submissions (notify.submit = "smtp:127.0.0.1:PORT"). We
#      are agency-a.govt.nz; alice -> bob@agency-b.govt.nz (a peer) and
#      someone@internet.example: each gets exactly one copy, the peer's
#      signed and encrypted (openssl cms opens it), the internet one plain;
#      the copy did not pass the milter a second time.
#   g. the milter down: mail tempfailed (F=T), nothing passes unfiltered.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init sendmail
# The sink off 127.0.0.1: Sendmail takes [127.0.0.1] for itself and would
# not relay to it as a smart host.
SINK_IP=127.0.0.9
e2e_need apt-get dpkg-deb
DOMAIN=agency.govt.nz
SM_ROOT=$WORK/smroot
SM_CF=$WORK/sendmail.cf
SM_QUEUE=$WORK/mqueue
SM_PID=
EXPECT_ONE=()
EXPECT_NONE=()

sendmail_cleanup() {
	[[ -n $SM_PID ]] && stop_pid "$SM_PID" 10
	e2e_cleanup
}
trap sendmail_cleanup EXIT

# ------------------------------------------------ the private Sendmail
# Debian's .debs (cached across runs in the work root).
DEB_CACHE=$E2E_WORK_ROOT/sendmail-debs
mkdir -p "$DEB_CACHE"
if ! ls "$DEB_CACHE"/sendmail-bin_*.deb >/dev/null 2>&1; then
	if ! (cd "$DEB_CACHE" && apt-get download sendmail-bin sendmail-cf m4 libwrap0) >"$WORK/apt-download.log" 2>&1; then
		fail "apt-get download sendmail-bin sendmail-cf m4 libwrap0" "$WORK/apt-download.log"
		e2e_finish
	fi
fi
for f in "$DEB_CACHE"/*.deb; do dpkg-deb -x "$f" "$SM_ROOT"; done
SM_BIN=$SM_ROOT/usr/libexec/sendmail/sendmail
# A private copy run by root: without its setgid bit the loader honours
# LD_LIBRARY_PATH (libwrap from the private root).
chmod ug-s "$SM_BIN"
SM_LIBS=$SM_ROOT/lib/x86_64-linux-gnu:$SM_ROOT/usr/lib/x86_64-linux-gnu
# SMTP AUTH: Cyrus SASL reads Sendmail.conf from fixed system paths
# (/etc/sasl2, /usr/lib/sasl2); the private one is bind-mounted over
# /usr/lib/sasl2 in Sendmail's own mount namespace only.
SASL_DIR=$WORK/sasl
mkdir -p "$SASL_DIR"
cp -a /usr/lib/sasl2/. "$SASL_DIR/" 2>/dev/null || true
printf '%s\n' alice-secret-8 | saslpasswd2 -p -c -f "$SASL_DIR/sasldb2" -u "$DOMAIN" alice
chmod 600 "$SASL_DIR/sasldb2"
cat >"$SASL_DIR/Sendmail.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $SASL_DIR/sasldb2
mech_list: PLAIN LOGIN
EOF
# sm: the private Sendmail with its configuration. Sendmail sleeps 60s at
# every start when it cannot qualify the host's name (this host's is not a
# domain name), so it runs in its own UTS namespace named mx.e2e.test.
cat >"$WORK/sm" <<EOF
#!/bin/sh
exec unshare -u -m --propagation private /bin/sh -c 'hostname mx.e2e.test && mount --bind $SASL_DIR /usr/lib/sasl2 && LD_LIBRARY_PATH=$SM_LIBS exec $SM_BIN -C $SM_CF "\$@"' sm "\$@"
EOF
chmod 755 "$WORK/sm"
sm() { "$WORK/sm" "$@"; }
SM_VERSION=$({ sm -d0.1 -bt </dev/null 2>/dev/null || true; } | awk '/^Version/ {print $2; exit}' || true)
if [[ -n $SM_VERSION ]]; then pass "Sendmail $SM_VERSION unpacked into a private root"; else fail "Sendmail from the private root runs"; fi

# The INPUT_MAIL_FILTER line as contrib/sendmail ships it, on the test's
# port, as MAIL_FILTER: the milter runs on the daemons whose I= names it
# (Sendmail 8.13 and later), not on the loopback daemon the milter submits
# its S/MIME copies to (README, "Domain S/MIME"; h).
FILTER_LINE=$(grep -E '^INPUT_MAIL_FILTER' "$REPO_ROOT/contrib/sendmail/sendmail.mc.snippet" | sed "s/inet:8891@127.0.0.1/inet:$MILTER_PORT@$SERVER_IP/; s/^INPUT_MAIL_FILTER/MAIL_FILTER/")
pick_port SM_LOCAL_PORT
mkdir -p "$SM_QUEUE"
chmod 700 "$SM_QUEUE"
# No DNS for Sendmail itself (only loopback is reachable: every lookup of
# the system resolver would time out): hosts from /etc/hosts only.
printf 'hosts files\naliases files\n' >"$WORK/service.switch"
cat >"$WORK/sendmail.mc" <<EOF
divert(-1)
# tests/e2e/sendmail.sh: a private Sendmail on loopback relaying to the sink.
divert(0)dnl
include(\`$SM_ROOT/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(\`nzsecure-milter e2e')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`mx.e2e.test')dnl
define(\`QUEUE_DIR', \`$SM_QUEUE')dnl
define(\`confPID_FILE', \`$WORK/sendmail.pid')dnl
define(\`STATUS_FILE', \`$WORK/sendmail.st')dnl
define(\`ALIAS_FILE', \`')dnl
define(\`HELP_FILE', \`')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confSERVICE_SWITCH_FILE', \`$WORK/service.switch')dnl
define(\`confHOSTS_FILE', \`/etc/hosts')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`confTO_IDENT', \`0')dnl
define(\`confTO_CONNECT', \`5s')dnl
FEATURE(\`nocanonify')dnl
define(\`confDEF_USER_ID', \`65534:65534')dnl
define(\`SMART_HOST', \`relay:[$SINK_IP]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $SINK_PORT')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $SINK_PORT')dnl
define(\`confCACERT_PATH', \`$TLS_DIR')dnl
define(\`confCACERT', \`$TLS_DIR/ca.crt')dnl
define(\`confSERVER_CERT', \`$TLS_DIR/server.crt')dnl
define(\`confSERVER_KEY', \`$TLS_DIR/server.key')dnl
define(\`confCLIENT_CERT', \`$TLS_DIR/server.crt')dnl
define(\`confCLIENT_KEY', \`$TLS_DIR/server.key')dnl
FEATURE(\`promiscuous_relay')dnl
FEATURE(\`accept_unresolvable_domains')dnl
define(\`confAUTH_MECHANISMS', \`PLAIN LOGIN')dnl
define(\`confAUTH_REALM', \`$DOMAIN')dnl
TRUST_AUTH_MECH(\`PLAIN LOGIN')dnl
DAEMON_OPTIONS(\`Port=$SMTP_PORT, Addr=$SERVER_IP, Name=MTA, I=nzsecure')dnl
DAEMON_OPTIONS(\`Port=$SUBMISSION_PORT, Addr=$SERVER_IP, Name=MSA, M=Ea, I=nzsecure')dnl
DAEMON_OPTIONS(\`Port=$SM_LOCAL_PORT, Addr=127.0.0.1, Name=LOCAL')dnl
$FILTER_LINE
MAILER(\`smtp')dnl
EOF
if "$SM_ROOT/usr/bin/m4" "$WORK/sendmail.mc" >"$SM_CF" 2>"$WORK/m4.log" && grep -q '^Xnzsecure' "$SM_CF" && ! grep -q '^O InputMailFilters' "$SM_CF"; then
	pass "sendmail.cf generated with m4 from sendmail-cf, with the milter of contrib/sendmail on the MTA and MSA daemons only"
else
	fail "sendmail.cf generated with m4" "$WORK/m4.log"
fi
check "no confMILTER_MACROS_* in the .mc: the milter asks for its macros" sh -c "! grep -q confMILTER_MACROS '$WORK/sendmail.mc'"

cat >"$WORK/zone" <<EOF
; sendmail.sh (tests/e2e/dnsd). The internet client is 127.0.0.2.
sender.example.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
$DOMAIN.          300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
EOF
start_dns "$WORK/zone"
start_sink
# The milter as the package runs it; generated mail goes into the private
# Sendmail (its -C configuration), which relays it to the sink.
start_milter --set "domains=[\"$DOMAIN\"]" --set 'notify.submit="sendmail"' --set "notify.sendmail=[\"$WORK/sm\"]"
sm -bd -q2s -OQueueLA=100 -ORefuseLA=100 >"$WORK/sendmail-start.log" 2>&1 || fail "sendmail -bd" "$WORK/sendmail-start.log"
if wait_until 15 port_listening "$SMTP_PORT" && wait_until 5 port_listening "$SUBMISSION_PORT"; then
	SM_PID=$(head -n 1 "$WORK/sendmail.pid" 2>/dev/null || true)
	e2e_record_pid "$SM_PID"
	pass "the private Sendmail listens on $SERVER_IP:$SMTP_PORT"
else
	fail "the private Sendmail listens on $SERVER_IP:$SMTP_PORT" "$WORK/sendmail-start.log"
	e2e_finish
fi
sm_accepted() { grep -Eq '^ *<[~-] +250 2\.0\.0 [0-9A-Za-z]+ Message accepted for delivery' "$SEND_OUT"; }
sm_queue_id() { grep -Eo '250 2\.0\.0 [0-9A-Za-z]+ Message accepted' "$SEND_OUT" | awk '{print $3}' | tail -n 1; }

# ------------------------------------------------------------------ a
id=$(unique_id)
rc=0
send --from sender@sender.example --to "user@$DOMAIN" --header "Subject: e2e sendmail a" --add-header "X-Test-Id: $id" || rc=$?
EXPECT_NONE+=("$id")
if ((rc == 23)) && [[ $(last_reply) == 530* ]]; then
	pass "a (G-TLS): plaintext inbound refused at MAIL FROM through Sendmail ($(last_reply))"
else
	fail "a (G-TLS): plaintext inbound refused 530 (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ b
id=$(unique_id)
rc=0
send --tls --from sender@sender.example --to "user@$DOMAIN" --header "Subject: e2e sendmail b" --add-header "X-Test-Id: $id" --body "b $id" || rc=$?
if ((rc == 0)) && sm_accepted && wait_id "$id" 30; then
	pass "b: inbound over TLS accepted through Sendmail and delivered"
	EXPECT_ONE+=("$id")
	f=$(sink_grep "^X-Test-Id: $id\$" | head -n 1)
	assert_contains "$f" '^Authentication-Results: mx\.e2e\.test;' "b: Authentication-Results names Sendmail's \$j (authserv_id unset)"
	assert_contains "$WORK/milter.log" '"tls_version":"TLSv1\.[23]"' "b: the milter saw Sendmail's TLS macros"
else
	fail "b: inbound over TLS accepted and delivered (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ c
id=$(unique_id)
rc=0
SEND_FROM_IP=$SERVER_IP send --from "alice@$DOMAIN" --to someone@partner.example --header "From: alice@$DOMAIN" \
	--header "Subject: e2e sendmail c" --add-header "X-Test-Id: $id" --body "c $id" || rc=$?
if ((rc == 0)) && sm_accepted && wait_id "$id" 30; then
	pass "c: outbound accepted through Sendmail and delivered"
	EXPECT_ONE+=("$id")
	f=$(sink_grep "^X-Test-Id: $id\$" | head -n 1)
	assert_contains "$f" '^X-NZ-Secure-email: compliant; classification="UNCLASSIFIED"; profile=sge; gateway=mx\.e2e\.test' \
		"c (R60): tagged X-NZ-Secure-email, gateway= Sendmail's \$j"
else
	fail "c: outbound accepted and delivered (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ d
id_d=$(unique_id)
rc=0
SEND_FROM_IP=$SERVER_IP send --from "alice@$DOMAIN" --to someone@partner.example --header "From: alice@$DOMAIN" \
	--header "Subject: e2e sendmail d [SECRET]" --add-header "X-Test-Id: $id_d" --body "d $id_d" || rc=$?
qid=$(sm_queue_id)
if ((rc == 0)) && sm_accepted && [[ -n $qid ]]; then
	pass "d (R110): [SECRET] to an external recipient accepted by Sendmail (queue id $qid)"
else
	fail "d (R110): [SECRET] accepted (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi
sleep 3
assert_eq 0 "$(id_count "$id_d")" "d (R110): the held message is not delivered"
sm -qQ -bp >"$WORK/quarantine.txt" 2>&1 || true
assert_contains "$WORK/quarantine.txt" "^$qid .*<alice@$DOMAIN>" "d: the message is in Sendmail's quarantine (sendmail -qQ -bp)"
# The quarantine reason (the hf file's q line; mailq cuts it short) is the
# hold's own reason alone, naming Sendmail's release command.
want_reason="classification SECRET is held for an administrator (R110); release with: sendmail -qQ -qI$qid -Q"
{ grep -a '^q' "$SM_QUEUE/hf$qid" 2>/dev/null | head -n 1 | cut -c2- || true; } >"$WORK/quarantine-reason.txt"
assert_eq "$want_reason" "$(cat "$WORK/quarantine-reason.txt")" "d: the quarantine reason is the hold reason alone, naming Sendmail's release command"
notice() { sink_grep "e2e sendmail d" | xargs -r grep -l "^X-Rcpt-Args: <postmaster@$DOMAIN>" 2>/dev/null | head -n 1; }
has_notice() { [[ -n $(notice) ]]; }
if wait_until 30 has_notice; then
	pass "d (R110): the administrator's notice was submitted through Sendmail and delivered"
	python3 -c 'import quopri,sys; sys.stdout.buffer.write(quopri.decodestring(open(sys.argv[1],"rb").read()))' "$(notice)" >"$WORK/notice.txt" 2>/dev/null || cp "$(notice)" "$WORK/notice.txt"
	assert_contains "$WORK/notice.txt" "Release it with: sendmail -qQ -qI$qid -Q" "d: the notice names Sendmail's release command"
else
	fail "d (R110): the administrator's notice reached postmaster@$DOMAIN" "$WORK/milter.log"
fi
# Released as the notice says (then a queue run delivers it).
eval "sm ${want_reason##*release with: sendmail }" >"$WORK/release.log" 2>&1 || true
sm -q -qI"$qid" >>"$WORK/release.log" 2>&1 || true
if wait_id "$id_d" 30; then
	pass "d: released with 'sendmail -qQ -qI$qid -Q', the message reached the sink"
	EXPECT_ONE+=("$id_d")
else
	fail "d: released with 'sendmail -qQ -qI$qid -Q', the message reached the sink" "$WORK/release.log"
fi

# ------------------------------------------------------------------ e
id=$(unique_id)
rc=0
SEND_FROM_IP=$SERVER_IP send --from "mallory@other.example" --to someone@partner.example --header "From: mallory@other.example" \
	--header "Subject: e2e sendmail e" --add-header "X-Test-Id: $id" || rc=$?
EXPECT_NONE+=("$id")
if ((rc != 0)) && [[ $(last_reply) == 550* ]]; then
	pass "e (R66): outbound From: a foreign domain refused through Sendmail ($(last_reply))"
else
	fail "e (R66): outbound From: a foreign domain refused 550 (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi

# R66 with SMTP AUTH on the submission port (M=Ea: authentication
# required): alice may send as alice@, not as bob@.
id=$(unique_id)
rc=0
send_auth alice alice-secret-8 --from "alice@$DOMAIN" --to someone@partner.example --header "From: alice@$DOMAIN" \
	--header "Subject: e2e sendmail e2" --add-header "X-Test-Id: $id" --body "e2 $id" || rc=$?
if ((rc == 0)) && sm_accepted && wait_id "$id" 30; then
	pass "e (R66): alice, authenticated through Sendmail's SMTP AUTH, sends as alice@$DOMAIN: delivered"
	EXPECT_ONE+=("$id")
	assert_contains "$WORK/milter.log" '"auth":"alice[@"]' "e: the milter saw Sendmail's {auth_authen}"
else
	fail "e (R66): authenticated alice sends as herself (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi
id=$(unique_id)
rc=0
send_auth alice alice-secret-8 --from "alice@$DOMAIN" --to someone@partner.example --header "From: bob@$DOMAIN" \
	--header "Subject: e2e sendmail e3" --add-header "X-Test-Id: $id" || rc=$?
EXPECT_NONE+=("$id")
if ((rc != 0)) && [[ $(last_reply) == 550* ]]; then
	pass "e (R66): authenticated alice sending as bob@$DOMAIN refused through Sendmail ($(last_reply))"
else
	fail "e (R66): authenticated alice sending as bob@ refused 550 (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ f
id=$(unique_id)
rc=0
send --tls --from sender@sender.example --to "user@$DOMAIN" --header "From: The CEO <ceo@$DOMAIN>" \
	--header "Subject: e2e sendmail f" --add-header "X-Test-Id: $id" --body "Please pay invoice $id today." || rc=$?
if ((rc == 0)) && sm_accepted && wait_id "$id" 30; then
	EXPECT_ONE+=("$id")
	f=$(sink_grep "^X-Test-Id: $id\$" | head -n 1)
	assert_contains "$f" '^X-NZ-Secure-Warning: 005' "f (R76): inbound From: our own domain delivered with warning 005 through Sendmail"
else
	fail "f (R76): inbound From: our own domain accepted (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi

# ------------------------------------------------------------------ h
# Domain S/MIME under Sendmail (the README's I= set-up): the milter as
# agency-a.govt.nz's gateway, its copies submitted to the loopback daemon
# that runs no milter.
SM_A=agency-a.govt.nz SM_PEER=agency-b.govt.nz
e2e_pki
mkdir -p "$WORK/peers/$SM_PEER"
cp "$PKI/agency-b.crt" "$WORK/peers/$SM_PEER/agency-b.pem"
stop_milter
start_milter --set 'profile="seemail"' --set "domains=[\"$SM_A\"]" --set "outbound.seemail_domains=[\"$SM_PEER\"]" \
	--set "smime.identities=[\"$SM_A:$PKI/agency-a-new.crt:$PKI/agency-a-new.key\"]" \
	--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" --set "smime.peers=\"$WORK/peers\"" --set "smime.crl_dir=\"$WORK/crl\"" \
	--set 'smime.crl_timeout="2s"' --set "notify.submit=\"smtp:127.0.0.1:$SM_LOCAL_PORT\""
decisions_before=$(grep -c '"msg":"decision"' "$WORK/milter.log" || true)
id_h=$(unique_id)
rc=0
SEND_FROM_IP=$SERVER_IP send --from "alice@$SM_A" --to "bob@$SM_PEER,someone@internet.example" --header "From: alice@$SM_A" \
	--header "Subject: e2e sendmail h" --add-header "X-Test-Id: $id_h" --add-header "MIME-Version: 1.0" \
	--add-header "Content-Type: text/plain; charset=us-ascii" --body "The exercise plans, $id_h." || rc=$?
h_both() { (($(id_count "$id_h") >= 2)); }
if ((rc == 0)) && sm_accepted && wait_until 30 h_both; then
	pass "h: alice -> bob@$SM_PEER + someone@internet.example accepted through Sendmail, two messages at the sink"
else
	fail "h: alice -> peer + internet accepted and delivered (swaks $rc, '$(last_reply)')" "$SEND_OUT" "$WORK/milter.log"
fi
fb=$(file_for "$id_h" "bob@$SM_PEER")
fi_=$(file_for "$id_h" "someone@internet.example")
if [[ -n $fb ]] && unfolded_headers "$fb" | grep -q '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data'; then
	pass "h: bob@$SM_PEER's copy is application/pkcs7-mime (enveloped-data)"
	if openssl cms -decrypt -recip "$PKI/agency-b.crt" -inkey "$PKI/agency-b.key" -in "$fb" -out "$WORK/h.dec" 2>"$WORK/h.err" &&
		openssl cms -verify -CAfile "$PKI/ca.crt" -in "$WORK/h.dec" -out "$WORK/h.out" 2>>"$WORK/h.err" && grep -q "$id_h" "$WORK/h.out"; then
		pass "h: openssl cms decrypts it with agency-b's key and verifies agency-a's signature; the text is inside"
	else
		fail "h: openssl cms decrypts and verifies bob's copy" "$WORK/h.err"
	fi
	assert_not_contains "$fb" "The exercise plans" "h: the text is not in clear in bob's copy"
else
	fail "h: bob@$SM_PEER got an enveloped-data copy" "$fb"
fi
if [[ -n $fi_ && $fi_ != "$fb" ]] && grep -q "The exercise plans, $id_h" "$fi_" && ! grep -qi 'pkcs7' "$fi_"; then
	pass "h: someone@internet.example's copy is the plain message"
else
	fail "h: someone@internet.example got the plain message" "$fi_"
fi
if [[ -n $fb ]]; then assert_not_contains "$fb" '^X-Rcpt-Args: <someone@internet.example>' "h: each copy carries only its own recipient"; fi
assert_eq 2 "$(id_count "$id_h")" "h: two messages for the two recipients, nothing doubled"
# One decision for the transaction: the copy submitted on the loopback
# daemon did not pass the milter again.
sleep 1
assert_eq 1 "$(($(grep -c '"msg":"decision"' "$WORK/milter.log" || true) - decisions_before))" "h: one milter decision (the copy went around the milter, through the daemon without I=)"

# ------------------------------------------------------------------ g
stop_milter
id=$(unique_id)
rc=0
send --tls --from sender@sender.example --to "user@$DOMAIN" --header "Subject: e2e sendmail g" --add-header "X-Test-Id: $id" || rc=$?
EXPECT_NONE+=("$id")
if ((rc != 0)) && [[ $(last_reply) == 4* ]]; then
	pass "g: the milter down: Sendmail tempfails the mail (F=T: $(last_reply))"
else
	fail "g: the milter down: mail tempfailed (swaks $rc, '$(last_reply)')" "$SEND_OUT"
fi

# Every accepted message once, refused ones never (Sendmail's queue is not
# Postfix's: counted at the sink only).
for id in "${EXPECT_ONE[@]}"; do wait_id "$id" 10 || true; done
bad=()
for id in "${EXPECT_ONE[@]}"; do [[ $(id_count "$id") == 1 ]] || bad+=("$id:$(id_count "$id")"); done
for id in "${EXPECT_NONE[@]}"; do [[ $(id_count "$id") == 0 ]] || bad+=("$id:$(id_count "$id")"); done
if ((${#bad[@]} == 0)); then
	pass "all: ${#EXPECT_ONE[@]} accepted messages at the sink exactly once, ${#EXPECT_NONE[@]} refused ones never"
else
	fail "all: every accepted message once, refused ones never (id:copies ${bad[*]})"
fi
e2e_finish
