#!/usr/bin/env bash
# tests/e2e/package.sh: the .deb of `make package`, installed with apt-get
# and run as its systemd unit runs it, filters mail through a private
# Postfix configured with the README's postconf lines (issue 16):
#
#   a. install: apt-get install ./nzsecure-milter_V1.deb; the service user
#      (in group postdrop), /var/lib/nzsecure-milter, the socket directory
#      in Postfix's chroot (group postfix), the conffile, the man pages;
#      /etc/postfix is left as it was; `version` names the installed policy.
#   b. the service as the unit starts it, without systemd: the unit's User,
#      Group, SupplementaryGroups, ExecStartPre (lint) and ExecStart, with
#      no new privileges, an empty capability bounding set, UMask, and the
#      file system read-only (ProtectSystem=strict) except the
#      ReadWritePaths (the private instance's maildrop in place of
#      /var/spool/postfix/maildrop), a private /tmp and /var/tmp (unshare -m,
#      setpriv); the listening socket is held by tests/e2e/sockhold, which
#      plays nzsecure-milter.socket (LISTEN_FDS, fd 3).
#   c. one inbound message (TLS, tagged with Authentication-Results) and one
#      outbound (X-NZ-Secure-email) filtered; a ping answered (generated
#      mail submitted through sendmail/postdrop under no-new-privileges and
#      delivered).
#   d. socket activation: 100 messages sent while the service is restarted
#      3 times: none tempfailed, none lost or doubled.
#   e. upgrade to a second build (V1.1) with an edited policy: the edit is
#      kept, the service restarts on the new binary and still filters.
#   f. purge: binary, units and state gone; the user stays (Debian policy).
#
# Without systemd there is no service manager to run the postinst's
# try-restart; the test restarts the service as `systemctl try-restart`
# would after the upgrade.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init package
e2e_need apt-get dpkg dpkg-query setpriv unshare findmnt mount
DOMAIN=agency.govt.nz
UNIT=/lib/systemd/system/nzsecure-milter.service
POLICY=/etc/nzsecure-milter/policy.toml
EXPECT_ONE=()
EXPECT_NONE=()
ALT_MAIN_CF_CREATED=0
HOLD_PID=

package_cleanup() {
	[[ -n $HOLD_PID ]] && stop_pid "$HOLD_PID" 20
	if [[ ${KEEP_PACKAGE:-0} != 1 ]] && dpkg-query -W nzsecure-milter >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q nzsecure-milter >>"$WORK/purge.log" 2>&1 || true
	fi
	[[ $ALT_MAIN_CF_CREATED == 1 ]] && rm -f /etc/postfix/main.cf
	e2e_cleanup
}
trap package_cleanup EXIT

# unit_get KEY: the values of KEY= lines of the installed unit, one a line.
unit_get() { sed -nE "s/^$1=//p" "$UNIT"; }

# ------------------------------------------------------------- build
V1=$(sh "$REPO_ROOT/contrib/packaging/version.sh")
V2=$V1.1
for v in "$V1" "$V2"; do
	if make -C "$REPO_ROOT" --no-print-directory package PKG_VERSION="$v" PKG_FORMATS=deb >"$WORK/make-$v.log" 2>&1; then
		cp "$REPO_ROOT"/dist/nzsecure-milter_*_*.deb "$WORK/nzsecure-milter-$v.deb"
		pass "make package PKG_VERSION=$v built a .deb"
	else
		fail "make package PKG_VERSION=$v" "$WORK/make-$v.log"
		e2e_finish
	fi
done

# ----------------------------------------------------------- a. install
if dpkg-query -W nzsecure-milter >/dev/null 2>&1; then
	e2e_log "removing an nzsecure-milter package left installed"
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -q nzsecure-milter >"$WORK/purge0.log" 2>&1 || true
fi
etc_postfix_sum() { find /etc/postfix -type f -print0 | sort -z | xargs -0 md5sum; }
etc_postfix_sum >"$WORK/etc-postfix.before"
if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$WORK/nzsecure-milter-$V1.deb" >"$WORK/install1.log" 2>&1; then
	pass "a: apt-get install ./nzsecure-milter-$V1.deb"
else
	fail "a: apt-get install ./nzsecure-milter-$V1.deb" "$WORK/install1.log"
	e2e_finish
fi
assert_eq "$V1" "$(dpkg-query -W -f='${Version}' nzsecure-milter)" "a: the installed version is $V1"
check "a: the service user nzsecure-milter exists" sh -c 'getent passwd nzsecure-milter >/dev/null'
id -nG nzsecure-milter 2>&1 | tr ' ' '\n' >"$WORK/groups"
assert_contains "$WORK/groups" '^postdrop$' "a: nzsecure-milter is in group postdrop (notices through sendmail)"
assert_eq "nzsecure-milter:nzsecure-milter 750" "$(stat -c '%U:%G %a' /var/lib/nzsecure-milter 2>&1)" "a: /var/lib/nzsecure-milter belongs to the service user"
assert_eq "nzsecure-milter:postfix 750" "$(stat -c '%U:%G %a' /var/spool/postfix/nzsecure 2>&1)" \
	"a: the socket directory in Postfix's chroot: owner nzsecure-milter, group postfix"
dpkg-query -W -f='${Conffiles}\n' nzsecure-milter >"$WORK/conffiles" 2>&1 || true
assert_contains "$WORK/conffiles" "^ $POLICY " "a: $POLICY is a conffile"
check "a: the default policy is the built-in one" cmp -s "$POLICY" "$REPO_ROOT/contrib/nzsecure-milter.toml"
for f in /usr/share/man/man8/nzsecure-milter.8.gz /usr/share/man/man5/nzsecure-milter.toml.5.gz; do
	zcat "$f" >"$WORK/$(basename "$f" .gz)" 2>&1 || true
	assert_contains "$WORK/$(basename "$f" .gz)" '^\.TH NZSECURE' "a: man page $f installed"
done
for u in nzsecure-milter.service nzsecure-milter.socket nzsecure-milter-tlspolicy.service nzsecure-milter-tlspolicy.socket; do
	check "a: unit $u installed" test -s "/lib/systemd/system/$u"
done
etc_postfix_sum >"$WORK/etc-postfix.after"
check "a: /etc/postfix is left as it was (the package does not touch Postfix's configuration)" \
	cmp -s "$WORK/etc-postfix.before" "$WORK/etc-postfix.after"
/usr/sbin/nzsecure-milter version >"$WORK/version1.out" 2>&1 || true
assert_contains "$WORK/version1.out" "^nzsecure-milter $V1 " "a: nzsecure-milter version prints $V1"
assert_contains "$WORK/version1.out" "^policy: $POLICY " "a: nzsecure-milter version names the installed policy"

# -------------------------------------------- the administrator's edits
# The policy as an administrator edits it; generated mail is submitted into
# the private instance (sendmail -C), DNS is the test server.
cat >"$WORK/zone" <<EOF
; package.sh (tests/e2e/dnsd). The internet client is 127.0.0.2.
sender.example.   300 IN TXT "v=spf1 ip4:127.0.0.2 -all"
$DOMAIN.          300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
EOF
start_dns "$WORK/zone"
edit_policy() {
	sed -i -E \
		-e "s|^domains = \[\]$|domains = [\"$DOMAIN\"]|" \
		-e "s|^sendmail = \[\"/usr/sbin/sendmail\"\]$|sendmail = [\"/usr/sbin/sendmail\", \"-C\", \"$PFDIR\"]|" \
		-e "s|^servers = \[\]$|servers = [\"$DNS_ADDR\"]|" "$POLICY"
	echo '# edited by the administrator (tests/e2e/package.sh)' >>"$POLICY"
}
edit_policy
/usr/sbin/nzsecure-milter lint "$POLICY" >"$WORK/lint.out" 2>&1 || true
assert_contains "$WORK/lint.out" 'valid: ' "the edited policy is valid"

# Postfix's sendmail run by a user other than root accepts -C only for a
# directory named in alternate_config_directories of the default main.cf.
# The CI machine has none ("No configuration"): create one for the test.
if [[ ! -e /etc/postfix/main.cf ]]; then
	printf '# tests/e2e/package.sh (removed at its end)\nalternate_config_directories = %s\n' "$PFDIR" >/etc/postfix/main.cf
	ALT_MAIN_CF_CREATED=1
elif ! grep -qF "$PFDIR" /etc/postfix/main.cf; then
	fail "c: /etc/postfix/main.cf exists and does not list $PFDIR in alternate_config_directories: the service user cannot submit into the private instance"
fi

# --------------------------------------------------- Postfix, README lines
start_sink
start_postfix ""
sed -n '/<!-- postconf-begin/,/<!-- postconf-end/p' "$REPO_ROOT/README.md" | sed -nE 's/^ *(postconf -e .*)$/\1/p' >"$WORK/readme-postconf"
if [[ $(wc -l <"$WORK/readme-postconf") -ge 3 ]]; then
	pass "the README's postconf -e lines found ($(wc -l <"$WORK/readme-postconf"))"
else
	fail "the README's postconf -e lines found" "$WORK/readme-postconf"
fi
# Applied as written, to the private instance (-c), on the test's port.
while read -r line; do
	line=${line//127.0.0.1:8891/$SERVER_IP:$MILTER_PORT}
	eval "postconf -c \"\$PFDIR\" ${line#postconf }" || fail "README line: $line"
done <"$WORK/readme-postconf"
assert_eq "inet:$SERVER_IP:$MILTER_PORT" "$(pf_postconf -h smtpd_milters)" "Postfix's smtpd_milters set by the README's lines"
postfix_cmd reload >"$WORK/reload.log" 2>&1 || fail "postfix reload" "$WORK/reload.log"

# ------------------------------------------------ b. the unit's sandbox
# unit-exec.sh: what systemd would do for the unit, from its own lines.
RW_PATHS=("$PFQUEUE/maildrop")
for p in $(unit_get ReadWritePaths); do
	p=${p#-}
	[[ -e $p ]] && RW_PATHS+=("$p")
done
PRIVATE_TMP=(/var/tmp)
[[ $WORK == /tmp/* ]] || PRIVATE_TMP+=(/tmp)
cat >"$WORK/unit-exec.sh" <<EOF
#!/bin/bash
# Generated by tests/e2e/package.sh from $UNIT. Runs in its own mount
# namespace (unshare -m: same pid, so LISTEN_PID stays right).
set -e
for p in ${RW_PATHS[*]}; do mount --bind "\$p" "\$p"; done
# ProtectSystem=strict: every mount read-only but the API file systems and
# the ReadWritePaths.
findmnt -rn -o TARGET | while read -r m; do
	m=\$(printf '%b' "\$m")
	case \$m in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
	for p in ${RW_PATHS[*]}; do [[ \$m == "\$p" ]] && continue 2; done
	mount -o remount,bind,ro "\$m" 2>/dev/null || true
done
# PrivateTmp=yes
for d in ${PRIVATE_TMP[*]}; do mount -t tmpfs -o mode=1777 tmpfs "\$d"; done
umask $(unit_get UMask)
exec setpriv --reuid=$(unit_get User) --regid=$(unit_get Group) --groups=$(unit_get SupplementaryGroups | tail -n 1) \\
	--no-new-privs --bounding-set=-all --inh-caps=-all -- \\
	/bin/sh -c '$(unit_get ExecStartPre) && exec $(unit_get ExecStart)'
EOF
chmod 755 "$WORK/unit-exec.sh"
check "b: the unit asks for NoNewPrivileges=yes and ProtectSystem=strict" \
	test "$(unit_get NoNewPrivileges)/$(unit_get ProtectSystem)" = yes/strict
SOCKHOLD_BIN=$E2E_BIN_DIR/sockhold
(cd "$REPO_ROOT" && go build -o "$SOCKHOLD_BIN" ./tests/e2e/sockhold) >"$WORK/sockhold-build.log" 2>&1 ||
	fail "go build ./tests/e2e/sockhold" "$WORK/sockhold-build.log"
"$SOCKHOLD_BIN" -listen "$SERVER_IP:$MILTER_PORT" -pidfile "$WORK/service.pid" -- \
	unshare -m --propagation private "$WORK/unit-exec.sh" >>"$WORK/milter.log" 2>&1 &
HOLD_PID=$!
e2e_record_pid "$HOLD_PID"
service_pid() { cat "$WORK/service.pid" 2>/dev/null; }
# serving_count: how many times a service said it serves.
serving_count() { grep -c '"msg":"serving"' "$WORK/milter.log" 2>/dev/null || true; }
service_serving() { (($(serving_count) >= ${1:-1})); }
if wait_until 20 service_serving 1; then
	pass "b: the service started as its unit starts it (lint, then serve on the passed socket)"
else
	fail "b: the service started as its unit starts it" "$WORK/milter.log"
fi
assert_contains "$WORK/milter.log" '"msg":"serving".*"listen":"systemd:tcp:' "b: serve uses the socket passed by socket activation (fd 3)"
pid=$(service_pid)
status=$(cat "/proc/$pid/status" 2>/dev/null || true)
assert_eq "$(id -u nzsecure-milter)" "$(awk '/^Uid:/ {print $2}' <<<"$status")" "b: the service runs as user nzsecure-milter"
assert_eq 1 "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$status")" "b: the service runs with no new privileges"
assert_eq 0000000000000000 "$(awk '/^CapBnd:/ {print $2}' <<<"$status")" "b: the service has an empty capability bounding set"
awk '/^Groups:/' <<<"$status" | tr ' \t' '\n\n' >"$WORK/service-groups"
assert_contains "$WORK/service-groups" "^$(getent group postdrop | cut -d: -f3)\$" "b: the service carries the postdrop group"
awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo" >"$WORK/root-mount" 2>/dev/null || true
assert_contains "$WORK/root-mount" '(^|,)ro(,|$)' "b: / is read-only for the service (ProtectSystem=strict)"
awk -v p="$PFQUEUE/maildrop" '$5 == p {print $6}' "/proc/$pid/mountinfo" >"$WORK/maildrop-mount" 2>/dev/null || true
assert_contains "$WORK/maildrop-mount" '(^|,)rw(,|$)' "b: the maildrop is writable for the service (ReadWritePaths)"

# ------------------------------------------------------ c. mail filtered
inbound_and_outbound() { # LABEL
	local id_in id_out rc
	id_in=$(unique_id)
	rc=0
	send --tls --from sender@sender.example --to "user@$DOMAIN" --header "Subject: e2e package $1 inbound" \
		--add-header "X-Test-Id: $id_in" --body "inbound $id_in" || rc=$?
	if ((rc == 0)) && accepted && wait_id "$id_in" 20; then
		pass "$1: inbound message over TLS accepted and delivered"
		EXPECT_ONE+=("$id_in")
		f=$(sink_grep "^X-Test-Id: $id_in\$" | head -n 1)
		assert_contains "$f" '^Authentication-Results: .*' "$1: the inbound message carries the milter's Authentication-Results"
	else
		fail "$1: inbound message over TLS accepted and delivered (swaks $rc, '$(last_reply)')" "$SEND_OUT"
	fi
	id_out=$(unique_id)
	rc=0
	SEND_FROM_IP=$SERVER_IP send --from "alice@$DOMAIN" --to someone@partner.example --header "From: alice@$DOMAIN" \
		--header "Subject: e2e package $1 outbound" --add-header "X-Test-Id: $id_out" --body "outbound $id_out" || rc=$?
	if ((rc == 0)) && accepted && wait_id "$id_out" 20; then
		pass "$1: outbound message accepted and delivered"
		EXPECT_ONE+=("$id_out")
		f=$(sink_grep "^X-Test-Id: $id_out\$" | head -n 1)
		assert_contains "$f" '^X-NZ-Secure-email: compliant; classification="UNCLASSIFIED"' "$1: the outbound message is tagged X-NZ-Secure-email"
	else
		fail "$1: outbound message accepted and delivered (swaks $rc, '$(last_reply)')" "$SEND_OUT"
	fi
}
inbound_and_outbound c
id_ping=$(unique_id)
rc=0
send --tls --from sender@sender.example --to "ping@$DOMAIN" --header "Subject: e2e package ping $id_ping" \
	--add-header "X-Test-Id: $id_ping" --body "ping" || rc=$?
((rc == 0)) && accepted || fail "c: ping accepted (swaks $rc)" "$SEND_OUT"
EXPECT_NONE+=("$id_ping")
ping_answer() { sink_grep "e2e package ping $id_ping" | xargs -r grep -l '^Subject: PING REPLY: ' 2>/dev/null | head -n 1; }
has_ping_answer() { [[ -n $(ping_answer) ]]; }
if wait_until 30 has_ping_answer; then
	pass "c: the ping answer, submitted by the sandboxed service through sendmail/postdrop, was delivered"
else
	fail "c: the ping answer (generated mail) was delivered within 30s" "$WORK/postfix.log"
fi

# ------------------------------------ d. restarts under socket activation
N=100
RESTARTS=3
: >"$WORK/flow.results"
flow_sent_at_least() { (($(wc -l <"$WORK/flow.results") >= $1)); }
flow() {
	local i id rc
	for ((i = 1; i <= N; i++)); do
		id=flow-$i-$(unique_id)
		rc=0
		SEND_FROM_IP=$SERVER_IP swaks --server "$SERVER_IP" --port "$SMTP_PORT" --local-interface "$SERVER_IP" \
			--ehlo client.e2e.test --timeout 60 --from "alice@$DOMAIN" --to someone@partner.example \
			--header "From: alice@$DOMAIN" --header "Subject: e2e package flow $i" --add-header "X-Test-Id: $id" \
			--body "flow $i" >"$WORK/flow-$i.txt" 2>&1 || rc=$?
		echo "$id $rc" >>"$WORK/flow.results"
	done
}
flow &
FLOW_PID=$!
starts_before=$(serving_count)
restarted=0
for ((r = 1; r <= RESTARTS; r++)); do
	# Spread the restarts over the run.
	wait_until 60 flow_sent_at_least $((r * N / (RESTARTS + 1))) || true
	old=$(service_pid)
	kill -TERM "$old" 2>/dev/null || true
	if wait_pid_exit "$old" 30 && wait_until 30 service_serving $((starts_before + r)); then
		restarted=$((restarted + 1))
	fi
done
wait_pid_exit "$FLOW_PID" 200 || kill "$FLOW_PID" 2>/dev/null
wait "$FLOW_PID" 2>/dev/null || true
assert_eq "$RESTARTS" "$restarted" "d: the service was restarted $RESTARTS times while mail flowed"
assert_eq "$N" "$(wc -l <"$WORK/flow.results")" "d: $N messages sent"
bad=$(awk '$2 != 0' "$WORK/flow.results" | wc -l)
if ((bad == 0)); then
	pass "d: no message tempfailed or refused during the restarts (all $N accepted)"
else
	f=$(awk '$2 != 0 {print $1; exit}' "$WORK/flow.results")
	fail "d: $bad of $N messages not accepted during the restarts (first: $f)" \
		"$WORK/flow-$(cut -d- -f2 <<<"$f").txt"
fi
while read -r id rc; do [[ $rc == 0 ]] && EXPECT_ONE+=("$id"); done <"$WORK/flow.results"

# --------------------------------------------------------- e. upgrade
if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"$WORK/nzsecure-milter-$V2.deb" >"$WORK/install2.log" 2>&1; then
	pass "e: upgrade: apt-get install ./nzsecure-milter-$V2.deb"
else
	fail "e: upgrade to $V2" "$WORK/install2.log"
fi
assert_eq "$V2" "$(dpkg-query -W -f='${Version}' nzsecure-milter)" "e: the installed version is $V2"
assert_contains "$POLICY" '^# edited by the administrator' "e: the upgrade kept the edited policy"
assert_contains "$POLICY" "^domains = \\[\"$DOMAIN\"\\]" "e: the upgrade kept the edited domains"
check "e: the postinst restarts the service on upgrade (try-restart)" grep -q 'try-restart nzsecure-milter.service' /var/lib/dpkg/info/nzsecure-milter.postinst
# What systemd's try-restart does: stop, start the new binary on the same socket.
starts_before=$(serving_count)
old=$(service_pid)
kill -TERM "$old" 2>/dev/null || true
wait_pid_exit "$old" 30 || true
if wait_until 30 service_serving $((starts_before + 1)); then
	pass "e: the service restarted after the upgrade"
else
	fail "e: the service restarted after the upgrade" "$WORK/milter.log"
fi
grep '"msg":"serving"' "$WORK/milter.log" | tail -n 1 >"$WORK/last-serving"
assert_contains "$WORK/last-serving" "\"version\":\"$V2\"" "e: the restarted service runs $V2"
inbound_and_outbound e

assert_nothing_lost_or_doubled "ping (answered, not delivered)"

# ---------------------------------------------------------- f. purge
stop_pid "$HOLD_PID" 20
HOLD_PID=
if DEBIAN_FRONTEND=noninteractive apt-get purge -y -q nzsecure-milter >"$WORK/purge.log" 2>&1; then
	pass "f: apt-get purge nzsecure-milter"
else
	fail "f: apt-get purge nzsecure-milter" "$WORK/purge.log"
fi
check "f: the binary is gone" test ! -e /usr/sbin/nzsecure-milter
check "f: the policy is gone (purge)" test ! -e "$POLICY"
check "f: the state directory is gone (purge)" test ! -e /var/lib/nzsecure-milter
check "f: the socket directory is gone (purge)" test ! -e /var/spool/postfix/nzsecure
e2e_finish
