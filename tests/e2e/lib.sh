# shellcheck shell=bash
# tests/e2e/lib.sh: harness for end-to-end tests through a real Postfix.
#
# Sourced by the scenario scripts (tests/e2e/*.sh). Everything a scenario
# starts lives under one work directory, by default tests/e2e/work/NAME,
# which is removed and recreated on every run:
#
#   $WORK/postfix/   config_directory of a PRIVATE Postfix instance
#   $WORK/spool/     its queue_directory   $WORK/data/  its data_directory
#   $WORK/postfix.log  Postfix's log (maillog_file via postlogd, no syslog)
#   $WORK/sink/      one file per message received by the capture server
#   $WORK/milter.log   stderr/stdout of nzsecure-milter (all restarts)
#   $WORK/tls/       throw-away CA and server certificate for STARTTLS
#   $WORK/send-N.txt   swaks transcripts, one per send
#
# The system Postfix (/etc/postfix, /var/spool/postfix) is never touched.
# Only loopback addresses are used: Postfix, the sink and the milter listen
# on 127.0.0.1; test clients connect from 127.0.0.2 (an "internet" client:
# the milter's default policy treats 127.0.0.1 as an internal network).
#
# Typical scenario:
#   source "$(dirname "$0")/lib.sh"
#   e2e_init myname
#   start_sink; start_milter --set 'domains=["agency.govt.nz"]'
#   start_postfix "inet:127.0.0.1:$MILTER_PORT"
#   send --tls --to user@agency.govt.nz ... && pass "..." || fail "..."
#   e2e_finish            # prints "e2e: N passed, M failed"; exit status
#
# All waits are bounded. An EXIT trap stops Postfix, the sink, the milter
# and every pid registered with e2e_track, also when the script fails.

set -euo pipefail

if [[ -d /usr/local/go/bin && ":$PATH:" != *":/usr/local/go/bin:"* ]]; then
	PATH="$PATH:/usr/local/go/bin"
fi
for _d in /usr/sbin /sbin; do
	[[ ":$PATH:" == *":$_d:"* ]] || PATH="$PATH:$_d"
done
export PATH
# Postfix (user postfix) and smtp-sink (user nobody) must read what we create.
umask 022

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
E2E_WORK_ROOT=${E2E_WORK_ROOT:-$E2E_DIR/work}
# The binary is built here (root runs it; see e2e_build).
E2E_BIN_DIR=${E2E_BIN_DIR:-$E2E_WORK_ROOT/bin}

# e2e_traversable DIR: every existing ancestor of DIR is searchable by
# "others". Postfix's unprivileged daemons (user postfix) must chdir into the
# queue directory and smtp-sink (user nobody) writes into the sink
# directory; a checkout under /root (mode 700) would break both, so the
# per-run state then moves to /tmp.
e2e_traversable() {
	local d=$1 perm
	while [[ -n $d && $d != / ]]; do
		if [[ -e $d ]]; then
			perm=$(stat -c %A "$d")
			[[ ${perm:9:1} == [xt] ]] || return 1
		fi
		d=$(dirname "$d")
	done
}
if ! e2e_traversable "$E2E_WORK_ROOT"; then
	E2E_WORK_ROOT=/tmp/nzsecure-milter-e2e/$(basename "$(dirname "$E2E_WORK_ROOT")")
fi

SERVER_IP=127.0.0.1 # Postfix, sink and milter listen here
CLIENT_IP=127.0.0.2 # test clients connect from here ("the internet")

E2E_PASSED=0
E2E_FAILED=0
E2E_FINISHED=0
E2E_PIDS=()
E2E_PORTS_USED=" "
SEND_SEQ=0
SEND_OUT=
SINK_PID=
MILTER_PID=
MILTER_EXIT=
POSTFIX_RUNNING=0

# ---------------------------------------------------------------- output

e2e_log() { printf '%s e2e[%s]: %s\n' "$(date +%T)" "${E2E_NAME:-?}" "$*" >&2; }

# e2e_context prints the last lines of the logs, for a failure report.
e2e_context() {
	local f n=${E2E_CONTEXT_LINES:-15}
	for f in "$@" "${WORK:-/nonexistent}/milter.log" "${WORK:-/nonexistent}/postfix.log"; do
		[[ -n $f && -s $f ]] || continue
		printf '    --- last %d lines of %s\n' "$n" "${f#"$REPO_ROOT"/}"
		tail -n "$n" "$f" | sed 's/^/    | /'
	done
}

pass() {
	E2E_PASSED=$((E2E_PASSED + 1))
	printf 'PASS: %s\n' "$*"
}

# fail MSG [FILE...]: count a failure and print context (the given files,
# then the last lines of milter.log and postfix.log).
fail() {
	local msg=$1
	shift || true
	E2E_FAILED=$((E2E_FAILED + 1))
	printf 'FAIL: %s\n' "$msg"
	e2e_context "$@"
}

# check MSG CMD...: pass MSG if CMD succeeds, else fail MSG.
check() {
	local msg=$1
	shift
	if "$@"; then pass "$msg"; else fail "$msg"; fi
}

assert_contains() { # FILE PATTERN MSG (PATTERN: extended regexp)
	if [[ -f $1 ]] && grep -Eq -- "$2" "$1"; then
		pass "$3"
	else
		fail "$3 (expected /$2/ in ${1#"$REPO_ROOT"/})" "$1"
	fi
}

assert_not_contains() { # FILE PATTERN MSG
	if [[ -f $1 ]] && ! grep -Eq -- "$2" "$1"; then
		pass "$3"
	else
		fail "$3 (unexpected /$2/ in ${1#"$REPO_ROOT"/})" "$1"
	fi
}

assert_eq() { # EXPECTED ACTUAL MSG
	if [[ "$1" == "$2" ]]; then
		pass "$3"
	else
		fail "$3 (expected '$1', got '$2')"
	fi
}

# e2e_finish prints the summary line and exits: 0 only if nothing failed
# and something passed.
e2e_finish() {
	E2E_FINISHED=1
	printf 'e2e: %d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
	if ((E2E_FAILED > 0 || E2E_PASSED == 0)); then exit 1; fi
	exit 0
}

# ------------------------------------------------------- processes, waits

# e2e_track PID...: stop these on exit. Every process the harness starts is
# also recorded in $WORK/pids with its command line, so that a later run can
# stop what a killed run left behind (same pid and same command line only).
e2e_track() { E2E_PIDS+=("$@"); }
e2e_record_pid() {
	local cmd
	cmd=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 0
	printf '%s %s\n' "$1" "$cmd" >>"$WORK/pids"
}

# e2e_reap_stale: stop leftovers of an earlier run in $WORK (a run killed
# with SIGKILL cannot clean up): its Postfix instance, and recorded pids
# whose command line is unchanged.
e2e_reap_stale() {
	local pid cmd now pids
	if [[ -f $PFDIR/main.cf ]]; then
		postfix_cmd abort >/dev/null 2>&1 || true
		pids=$(pf_instance_pids)
		# shellcheck disable=SC2086 # one pid per word
		[[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
	fi
	[[ -f $WORK/pids ]] || return 0
	while read -r pid cmd; do
		now=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
		[[ ${now% } == "${cmd% }" ]] && kill -KILL "$pid" 2>/dev/null
	done <"$WORK/pids"
	return 0
}

# pid_alive PID: true while PID runs (a zombie child counts as dead).
pid_alive() {
	local st
	[[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

# wait_pid_exit PID TIMEOUT: bounded wait; reaps our own children.
wait_pid_exit() {
	local pid=$1 deadline=$((SECONDS + ${2:-10}))
	while pid_alive "$pid"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
	return 0
}

# stop_pid PID [TIMEOUT]: SIGTERM, bounded wait, then SIGKILL.
stop_pid() {
	local pid=$1
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_pid_exit "$pid" "${2:-10}"; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_pid_exit "$pid" 5 || true
	fi
	wait "$pid" 2>/dev/null || true
}

# wait_until TIMEOUT CMD...: poll CMD every 0.2s until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# port_listening PORT: some socket is in LISTEN state on PORT (read from
# /proc, so no probe connection reaches Postfix or the milter).
port_listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p="$hex" 'FNR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == p) f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pick_port VAR: set VAR to a free TCP port on loopback, one not handed out
# before in this run (runs in the calling shell, so it remembers).
pick_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		[[ $E2E_PORTS_USED == *" $p "* ]] && continue
		port_listening "$p" && continue
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
		E2E_PORTS_USED+="$p "
		printf -v "$1" '%s' "$p"
		return 0
	done
	echo "pick_port: no free port found" >&2
	return 1
}

# ----------------------------------------------------------------- setup

# e2e_need CMD...: every command must exist.
e2e_need() {
	local c missing=()
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
	if ((${#missing[@]})); then
		echo "e2e: missing commands: ${missing[*]} (run: make install-deps)" >&2
		return 1
	fi
}

# e2e_build: build nzsecure-milter once per run of all scenarios. run-all.sh
# builds first and exports NZBIN and E2E_BUILT=1; a scenario started alone
# builds for itself (go's build cache makes that cheap).
e2e_build() {
	NZBIN=${NZBIN:-$E2E_BIN_DIR/nzsecure-milter}
	export NZBIN
	if [[ ${E2E_BUILT:-0} == 1 && -x $NZBIN ]]; then return 0; fi
	mkdir -p "$(dirname "$NZBIN")" "$E2E_BIN_DIR"
	e2e_log "building $NZBIN"
	if ! (cd "$REPO_ROOT" && go build -o "$NZBIN" ./cmd/nzsecure-milter) >"$E2E_BIN_DIR/build.log" 2>&1; then
		cat "$E2E_BIN_DIR/build.log" >&2
		return 1
	fi
	E2E_BUILT=1
	export E2E_BUILT
}

# e2e_make_certs DIR: a CA and a server certificate (mx.e2e.test,
# localhost, 127.0.0.1) signed by it.
e2e_make_certs() {
	local d=$1
	mkdir -p "$d"
	(
		cd "$d"
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout ca.key -out ca.crt -days 3 -subj "/CN=nzsecure-milter e2e CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout server.key -out server.csr -subj "/CN=mx.e2e.test"
		printf '%s\n' "subjectAltName=DNS:mx.e2e.test,DNS:localhost,IP:127.0.0.1" \
			"extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE" >server.ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 3 -extfile server.ext -out server.crt
		chmod 644 ca.crt server.crt
	) >"$d/openssl.log" 2>&1 || {
		cat "$d/openssl.log" >&2
		return 1
	}
}

# e2e_init NAME [--no-build]: fresh work dir, ports, certificates, cleanup
# trap, and (unless --no-build) the nzsecure-milter binary in $NZBIN.
e2e_init() {
	E2E_NAME=$1
	mkdir -p "$E2E_WORK_ROOT"
	# Physical path: sink_files compares it with /proc/PID/fd link targets.
	E2E_WORK_ROOT=$(cd -P "$E2E_WORK_ROOT" && pwd)
	WORK=$E2E_WORK_ROOT/$E2E_NAME # never taken from the environment: rm -rf below
	export WORK E2E_NAME
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'E2E_ERR="line $LINENO: $BASH_COMMAND"' ERR

	if [[ $(id -u) != 0 ]]; then
		echo "e2e: must run as root (it starts a private Postfix instance)" >&2
		exit 1
	fi
	e2e_need postfix postconf postsuper postqueue smtp-sink swaks openssl awk timeout

	PFDIR=$WORK/postfix
	PFQUEUE=$WORK/spool
	PFDATA=$WORK/data
	SINK_DIR=$WORK/sink
	TLS_DIR=$WORK/tls
	e2e_reap_stale
	rm -rf "$WORK"
	mkdir -p "$WORK"
	chmod 755 "$E2E_WORK_ROOT" "$WORK"

	pick_port SMTP_PORT
	pick_port SUBMISSION_PORT
	pick_port SINK_PORT
	pick_port MILTER_PORT
	export SMTP_PORT SUBMISSION_PORT SINK_PORT MILTER_PORT

	e2e_make_certs "$TLS_DIR"
	if [[ ${2:-} != --no-build ]]; then
		if ! e2e_build; then
			fail "go build ./cmd/nzsecure-milter"
			e2e_finish
		fi
	fi
	e2e_log "work dir $WORK; smtp $SMTP_PORT, sink $SINK_PORT, milter $MILTER_PORT"
}

# e2e_cleanup (EXIT trap): stop everything we started, print a summary if
# the script died before e2e_finish.
e2e_cleanup() {
	local rc=$? p
	trap - EXIT ERR
	set +e
	for p in "${E2E_PIDS[@]}"; do
		[[ -n $p ]] && stop_pid "$p" 3
	done
	stop_postfix >/dev/null 2>&1
	[[ -n $MILTER_PID ]] && stop_pid "$MILTER_PID" 5
	[[ -n $SINK_PID ]] && stop_pid "$SINK_PID" 3
	if [[ $E2E_FINISHED != 1 ]]; then
		E2E_FAILED=$((E2E_FAILED + 1))
		printf 'FAIL: %s aborted (exit status %s%s)\n' "${E2E_NAME:-script}" "$rc" \
			"${E2E_ERR:+, last failed command at $E2E_ERR}"
		e2e_context
		printf 'e2e: %d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
		((rc != 0)) || rc=1
	fi
	exit "$rc"
}

# ------------------------------------------------------------------ sink

# start_sink: smtp-sink on 127.0.0.1:$SINK_PORT, one file per message in
# $SINK_DIR (smtp-sink -d). The file is created at MAIL FROM and closed at
# the final "."; an aborted transaction's file is removed. sink_files lists
# only closed files, so a message counts once it is complete.
start_sink() {
	mkdir -p "$SINK_DIR"
	chown nobody "$SINK_DIR"
	smtp-sink -u nobody -h sink.e2e.test -d "$SINK_DIR/msg." -m 500 \
		"$SERVER_IP:$SINK_PORT" 512 >>"$WORK/sink.log" 2>&1 &
	SINK_PID=$!
	if ! wait_until 10 port_listening "$SINK_PORT"; then
		echo "start_sink: smtp-sink did not listen on $SINK_PORT" >&2
		cat "$WORK/sink.log" >&2
		return 1
	fi
	e2e_record_pid "$SINK_PID"
}

stop_sink() {
	[[ -n $SINK_PID ]] || return 0
	stop_pid "$SINK_PID" 5
	SINK_PID=
}

# sink_files: complete message files (those the sink does not hold open).
sink_files() {
	local open="" f
	if [[ -n $SINK_PID && -d /proc/$SINK_PID/fd ]]; then
		open=$(find "/proc/$SINK_PID/fd" -mindepth 1 -maxdepth 1 -exec readlink {} + 2>/dev/null || true)
	fi
	for f in "$SINK_DIR"/msg.*; do
		[[ -f $f ]] || continue
		[[ -n $open ]] && grep -qxF -- "$f" <<<"$open" && continue
		echo "$f"
	done
}

sink_count() { sink_files | wc -l | tr -d ' '; }

# sink_wait N [TIMEOUT]: wait until at least N messages arrived.
sink_wait() {
	local n=$1 deadline=$((SECONDS + ${2:-20}))
	while (($(sink_count) < n)); do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# sink_grep PATTERN: names of complete messages matching PATTERN (grep -E).
sink_grep() {
	local f found=1
	while read -r f; do
		if grep -Eq -- "$1" "$f"; then echo "$f"; found=0; fi
	done < <(sink_files)
	return $found
}

# sink_grep_count PATTERN: how many complete messages match.
sink_grep_count() { { sink_grep "$1" || true; } | wc -l | tr -d ' '; }

# sink_headers FILE: the header section of a captured message (smtp-sink's
# own X-Client-*, X-Mail-Args, X-Rcpt-Args and Received first).
sink_headers() { sed '/^$/q' "$1"; }

# sink_body FILE: the body of a captured message.
sink_body() { sed '1,/^$/d' "$1"; }

# ---------------------------------------------------------------- postfix

postfix_cmd() { postfix -c "$PFDIR" "$@"; }
pf_postqueue() { postqueue -c "$PFDIR" "$@"; }
pf_postsuper() { postsuper -c "$PFDIR" "$@"; }
pf_postconf() { postconf -c "$PFDIR" "$@"; }

# pf_queue_count: messages in this instance's queues (incoming, active,
# deferred, hold, maildrop), counted on disk.
pf_queue_count() {
	local d n=0
	for d in incoming active deferred hold maildrop; do
		[[ -d $PFQUEUE/$d ]] || continue
		n=$((n + $(find "$PFQUEUE/$d" -type f | wc -l)))
	done
	echo "$n"
}

# pf_queue_wait_empty [TIMEOUT]: wait until the queue is empty.
pf_queue_wait_empty() { wait_until "${1:-20}" pf_queue_is_empty; }
pf_queue_is_empty() { [[ $(pf_queue_count) == 0 ]]; }
pf_queue_nonempty() { (($(pf_queue_count) > 0)); }

# write_postfix_config MILTER_SPEC: main.cf and master.cf of the private
# instance. MILTER_SPEC may be empty (no milter). Extra main.cf lines can be
# given in $POSTFIX_EXTRA_MAIN (appended last, so they win).
write_postfix_config() {
	local milter=$1
	mkdir -p "$PFDIR" "$PFQUEUE" "$PFDATA"
	chmod 755 "$PFDIR" "$PFQUEUE"
	chown postfix "$PFDATA"
	chmod 700 "$PFDATA"
	cat >"$PFDIR/main.cf" <<EOF
# Private Postfix instance for the nzsecure-milter e2e test "$E2E_NAME".
# Generated by tests/e2e/lib.sh; removed with the work directory.
compatibility_level = 3.6
queue_directory = $PFQUEUE
data_directory = $PFDATA
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-e2e-$E2E_NAME
# Log to a file through postlogd (master.cf "postlog"), no syslog needed.
maillog_file = $WORK/postfix.log
maillog_file_prefixes = $WORK
myhostname = mx.e2e.test
mydomain = e2e.test
myorigin = \$myhostname
# Loopback only, IPv4 only; no port 25 listener (see master.cf).
inet_interfaces = $SERVER_IP
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing is delivered locally: all mail, any domain, goes to the sink.
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:5.1.1 no local delivery in the e2e instance
relayhost = [$SERVER_IP]:$SINK_PORT
# Postfix insists on a reject_unauth_destination; 127.0.0.0/8 (all test
# clients) is in mynetworks, so everything is relayed.
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtp_tls_security_level = none
notify_classes =
biff = no
append_dot_mydomain = no
# STARTTLS for test clients.
smtpd_tls_security_level = may
smtpd_tls_cert_file = $TLS_DIR/server.crt
smtpd_tls_key_file = $TLS_DIR/server.key
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
# The milter under test. Macros are left at Postfix's defaults.
smtpd_milters = $milter
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = 5s
milter_command_timeout = 15s
milter_content_timeout = 30s
# Retry deferred mail quickly.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
${POSTFIX_EXTRA_MAIN:-}
EOF
	cat >"$PFDIR/master.cf" <<EOF
# Private Postfix instance for the e2e test "$E2E_NAME" (tests/e2e/lib.sh).
# No port 25, no local/virtual/lmtp delivery; chroot off everywhere.
# pickup stays: postqueue -f refuses to run ("mail system is down") without
# public/pickup.
# service type  private unpriv  chroot  wakeup  maxproc command + args
$SERVER_IP:$SMTP_PORT inet n   -       n       -       -       smtpd
# Submission listener, for the authentication tests (not used yet):
# $SERVER_IP:$SUBMISSION_PORT inet n - n - - smtpd
#   -o syslog_name=postfix-e2e-$E2E_NAME/submission
#   -o smtpd_tls_security_level=encrypt
#   -o smtpd_sasl_auth_enable=yes
#   -o smtpd_client_restrictions=permit_sasl_authenticated,reject
#   -o milter_macro_daemon_name=ORIGINATING
${POSTFIX_EXTRA_MASTER:-}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# start_postfix MILTER_SPEC: write the config and start the private
# instance; wait until smtpd listens on $SMTP_PORT. An empty MILTER_SPEC
# runs Postfix without a milter.
start_postfix() {
	write_postfix_config "${1:-}"
	touch "$WORK/postfix.log"
	# "postfix start" runs post-install create-missing (queue directories,
	# owners, modes) and the integrity checks itself.
	if ! postfix_cmd start >"$WORK/postfix-start.log" 2>&1; then
		echo "start_postfix: postfix -c $PFDIR start failed" >&2
		cat "$WORK/postfix-start.log" "$WORK/postfix.log" >&2
		return 1
	fi
	POSTFIX_RUNNING=1
	if ! wait_until 15 port_listening "$SMTP_PORT"; then
		echo "start_postfix: smtpd does not listen on $SMTP_PORT" >&2
		tail -n 30 "$WORK/postfix.log" >&2
		return 1
	fi
}

postfix_master_pid() {
	[[ -r $PFQUEUE/pid/master.pid ]] && tr -d ' \n' <"$PFQUEUE/pid/master.pid"
}

# pf_instance_pids: processes of this instance (master and children carry
# MAIL_CONFIG=$PFDIR in their environment).
pf_instance_pids() {
	local e pid
	for e in /proc/[0-9]*/environ; do
		pid=${e#/proc/}
		pid=${pid%/environ}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		if { tr '\0' '\n' <"$e"; } 2>/dev/null | grep -qxF "MAIL_CONFIG=$PFDIR"; then
			echo "$pid"
		fi
	done
}

# stop_postfix: orderly stop, bounded wait, then kill what is left of this
# instance (and only of this instance).
stop_postfix() {
	[[ $POSTFIX_RUNNING == 1 ]] || return 0
	local mpid pids
	mpid=$(postfix_master_pid || true)
	postfix_cmd stop >/dev/null 2>&1 || true
	if [[ -n $mpid ]] && ! wait_pid_exit "$mpid" 10; then
		postfix_cmd abort >/dev/null 2>&1 || true
		kill -KILL "$mpid" 2>/dev/null || true
	fi
	if ! wait_until 5 pf_no_instance_pids; then
		pids=$(pf_instance_pids)
		# shellcheck disable=SC2086 # one pid per word
		[[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
	fi
	POSTFIX_RUNNING=0
}
pf_no_instance_pids() { [[ -z $(pf_instance_pids) ]]; }

# ----------------------------------------------------------------- milter

# start_milter [ARGS...]: $NZBIN serve --listen inet:127.0.0.1:$MILTER_PORT
# ARGS..., logs appended to $WORK/milter.log; waits (bounded) until the port
# listens. Fails if the process exits first.
start_milter() {
	: "${NZBIN:?NZBIN is not set: e2e_init builds it}"
	printf -- '--- %s start_milter %s\n' "$(date +%T)" "$*" >>"$WORK/milter.log"
	"$NZBIN" serve --listen "inet:$SERVER_IP:$MILTER_PORT" "$@" >>"$WORK/milter.log" 2>&1 &
	MILTER_PID=$!
	MILTER_EXIT=
	local deadline=$((SECONDS + 15))
	while ! port_listening "$MILTER_PORT"; do
		if ! pid_alive "$MILTER_PID"; then
			wait "$MILTER_PID" 2>/dev/null && MILTER_EXIT=0 || MILTER_EXIT=$?
			echo "start_milter: nzsecure-milter exited ($MILTER_EXIT) before listening" >&2
			tail -n 20 "$WORK/milter.log" >&2
			MILTER_PID=
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "start_milter: port $MILTER_PORT not listening after 15s" >&2
			return 1
		fi
		sleep 0.1
	done
	e2e_record_pid "$MILTER_PID"
}

# stop_milter [TIMEOUT]: SIGTERM and wait (bounded, default 20s); the exit
# status lands in $MILTER_EXIT (137 if it had to be killed).
stop_milter() {
	[[ -n $MILTER_PID ]] || return 0
	kill -TERM "$MILTER_PID" 2>/dev/null || true
	if wait_pid_exit "$MILTER_PID" "${1:-20}"; then
		wait "$MILTER_PID" 2>/dev/null && MILTER_EXIT=0 || MILTER_EXIT=$?
	else
		kill -KILL "$MILTER_PID" 2>/dev/null || true
		wait_pid_exit "$MILTER_PID" 5 || true
		wait "$MILTER_PID" 2>/dev/null || true
		MILTER_EXIT=137
	fi
	MILTER_PID=
}

# kill_milter: SIGKILL, no chance to clean up.
kill_milter() {
	[[ -n $MILTER_PID ]] || return 0
	kill -KILL "$MILTER_PID" 2>/dev/null || true
	wait_pid_exit "$MILTER_PID" 5 || true
	wait "$MILTER_PID" 2>/dev/null || true
	MILTER_EXIT=137
	MILTER_PID=
	wait_until 5 port_free "$MILTER_PORT" || true
}
port_free() { ! port_listening "$1"; }

# milter_signal SIG: send a signal to the running milter.
milter_signal() { kill "-$1" "$MILTER_PID"; }

# ------------------------------------------------------------------- send

# send ARGS...: swaks to 127.0.0.1:$SMTP_PORT from 127.0.0.2 (add --tls for
# STARTTLS); the transcript goes to $SEND_OUT ($WORK/send-N.txt) and the
# status is swaks's exit code (0: accepted; 23: refused at MAIL FROM, 24:
# RCPT, 25: DATA, 26: after the final "."; 21/22: connection/banner/EHLO).
send() {
	SEND_SEQ=$((SEND_SEQ + 1))
	SEND_OUT=$WORK/send-$SEND_SEQ.txt
	local rc=0
	swaks --server "$SERVER_IP" --port "$SMTP_PORT" --local-interface "$CLIENT_IP" \
		--ehlo client.e2e.test --timeout 30 --suppress-data "$@" >"$SEND_OUT" 2>&1 || rc=$?
	return "$rc"
}

# reply_to CMD FILE: the server's reply lines (after "<~ "/"<** ") to the
# given client command in a swaks transcript, e.g. reply_to "MAIL FROM" f.
reply_to() {
	awk -v cmd="$1" '
		/^ *~> / || /^ *-> / { cur = $0; sub(/^ *[~-]> /, "", cur); want = (index(toupper(cur), toupper(cmd)) == 1); next }
		want && /^ *<[~*-]+ / { line = $0; sub(/^ *<[~*-]+ +/, "", line); print line }
	' "$2"
}

# unique_id: a message id for X-Test-Id headers.
unique_id() { printf '%s-%s-%s' "${E2E_NAME:-e2e}" "$(date +%s%N)" "$RANDOM"; }
