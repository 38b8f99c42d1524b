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
#   $WORK/dns.log      stderr of the loopback DNS server (start_dns)
#   $WORK/tlspolicy.log  nzsecure-milter tlspolicy (start_tlspolicy)
#   $WORK/postfix/sasl/  sasldb2 and smtpd.conf (enable_submission)
#
# The system Postfix (/etc/postfix, /var/spool/postfix) is never touched.
# Only loopback addresses are used: Postfix, the sink and the milter listen
# on 127.0.0.1; test clients connect from 127.0.0.2 (an "internet" client:
# the milter's default policy treats 127.0.0.1 as an internal network).
# tlspolicy.sh also uses 127.0.0.3 and 127.0.0.4 (MX hosts) and port 53 of
# 127.0.53.53 (DNS for Postfix's C resolver).
#
# Typical scenario:
#   source "$(dirname "$0")/lib.sh"
#   e2e_init myname
#   start_dns "$WORK/zone"   # loopback DNS (tests/e2e/dnsd) for the milter
#   start_sink; start_milter --set 'domains=["agency.govt.nz"]'
#   enable_submission agency.govt.nz alice PASSWORD   # optional: SASL port
#   start_postfix "inet:127.0.0.1:$MILTER_PORT"
#   send --tls --to user@agency.govt.nz ... && pass "..." || fail "..."
#   send_auth alice PASSWORD --from alice@agency.govt.nz --to ...
#   e2e_finish            # prints "e2e: N passed, M failed"; exit status
#
# Also: start_tlspolicy (nzsecure-milter tlspolicy as a socketmap service),
# start_dns53 + pf_use_dns (DNS on port 53 of a spare loopback address for
# Postfix's chrooted smtp clients), see tests/e2e/tlspolicy.sh.
#
# All waits are bounded. An EXIT trap stops Postfix, the sink, the milter,
# tlspolicy, the DNS server and every pid registered with e2e_track, also
# when the script fails.

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
# The sink's address; a scenario may move it off 127.0.0.1 before
# start_sink (Postfix refuses to deliver to an MX host that is one of its
# own inet_interfaces: "mail for ... loops back to myself").
SINK_IP=${SINK_IP:-$SERVER_IP}

E2E_PASSED=0
E2E_FAILED=0
E2E_FINISHED=0
E2E_PIDS=()
E2E_PORTS_USED=" "
SEND_SEQ=0
SEND_OUT=
SINK_PID=
DNS_PID=
TLSPOLICY_PID=
E2E_SUBMISSION=0
MILTER_PID=
MILTER_EXIT=
POSTFIX_RUNNING=0

# ---------------------------------------------------------------- output

e2e_log() { printf '%s e2e[%s]: %s\n' "$(date +%T)" "${E2E_NAME:-?}" "$*" >&2; }

# e2e_context prints the last lines of the logs (those a scenario has:
# milter, Postfix, tlspolicy, DNS server), for a failure report.
e2e_context() {
	local f n=${E2E_CONTEXT_LINES:-15}
	local w=${WORK:-/nonexistent}
	for f in "$@" "$w/milter.log" "$w/postfix.log" "$w/tlspolicy.log" "$w/dns.log"; do
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
	local p i low _high span
	# Below the kernel's ephemeral range: a port in it can be taken by any
	# outgoing connection (or a listener on port 0) between this check and
	# the bind, as happened once to smtp-sink.
	read -r low _high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
	span=$((low - 10000))
	((span >= 1000)) || span=1000
	for ((i = 0; i < 200; i++)); do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
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

# e2e_pki: the S/MIME test PKI (testdata/smime/make-fixtures.sh) in
# $PKI ($WORK/pki) whose CRL distribution point is
# http://127.0.0.1:$CRL_PORT/ca.crl, served by start_crl_server from
# $CRL_SERVED ($WORK/crlsrv: a copy of ca.crl a test may replace);
# stop_crl_server takes the distribution point down. A failure ends the
# script.
e2e_pki() {
	PKI=$WORK/pki
	CRL_SERVED=$WORK/crlsrv
	pick_port CRL_PORT
	e2e_log "making the test PKI (CRL at http://127.0.0.1:$CRL_PORT/ca.crl)"
	if ! OUT=$PKI CDP_URL="http://127.0.0.1:$CRL_PORT/ca.crl" bash "$REPO_ROOT/testdata/smime/make-fixtures.sh" >"$WORK/pki.log" 2>&1; then
		fail "setup: make-fixtures.sh made the PKI" "$WORK/pki.log"
		e2e_finish
	fi
	mkdir -p "$CRL_SERVED" && cp "$PKI/ca.crl" "$CRL_SERVED/ca.crl"
	start_crl_server || { fail "setup: the CRL server listens on 127.0.0.1:$CRL_PORT" "$WORK/crl-http.log"; e2e_finish; }
}
# gpgsm_import_key GNUPGHOME CRT KEY LOG: import a certificate and its key
# into gpgsm (the second S/MIME implementation, M-SEC interoperability).
# gpgsm 2.2 reads PKCS #12 with 3DES bags and a SHA-1 MAC only, and it
# rejects about one such file in 300 ("data error at
# shrouded_key_bag.decrypted-text"), depending on the random salt and IV
# openssl chose: a fresh export of the same key then imports. So export
# and import up to five times, until gpgsm reports the secret key imported.
gpgsm_import_key() {
	local home=$1 crt=$2 key=$3 log=$4 try out
	for try in 1 2 3 4 5; do
		openssl pkcs12 -export -in "$crt" -inkey "$key" -passout pass:e2e \
			-keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 -out "$home/key.p12" 2>>"$log" || return 1
		out=$(printf 'e2e\n' | GNUPGHOME=$home gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 \
			--import "$home/key.p12" 2>&1)
		printf '%s\n' "$out" >>"$log"
		if grep -q 'secret keys imported: 1' <<<"$out"; then
			return 0
		fi
		echo "gpgsm_import_key: gpgsm did not import the key from export $try; exporting again" >>"$log"
	done
	return 1
}

CRL_PID=
start_crl_server() {
	python3 -m http.server --bind 127.0.0.1 --directory "$CRL_SERVED" "$CRL_PORT" >>"$WORK/crl-http.log" 2>&1 &
	CRL_PID=$!
	e2e_track "$CRL_PID"
	e2e_record_pid "$CRL_PID"
	wait_until 10 port_listening "$CRL_PORT"
}
stop_crl_server() {
	[[ -n $CRL_PID ]] || return 0
	stop_pid "$CRL_PID" 5
	CRL_PID=
}

# --------------------------------------------- a second gateway (S/MIME)
# Two agency gateways on loopback (twogateways.sh, certrequest.sh): the
# script's own Postfix and milter are gateway A; gateway B, for domain $B,
# has its own milter on $B_MILTER_PORT and Postfix on $B_SMTP_PORT
# (directories under $GWB, myhostname mx-b.e2e.test, its identity
# agency-b from $PKI, its peer store $WORK/peers-b).
# start_capture_proxy: a TCP proxy on $PROXY_PORT in front of B's Postfix
# that appends every byte A sends to $CAPTURE (A relays $B there).
start_capture_proxy() {
	pick_port PROXY_PORT
	pick_port B_SMTP_PORT
	pick_port B_MILTER_PORT
	CAPTURE=$WORK/capture-a-to-b.txt
	cat >"$WORK/proxy.py" <<'PROXY'
import socket, sys, threading
listen, target, capture = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def pump(src, dst, log):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if log:
                with lock, open(capture, "ab") as f:
                    f.write(b)
            dst.sendall(b)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen))
srv.listen(16)
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pump, args=(c, u, True), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, False), daemon=True).start()
PROXY
	python3 "$WORK/proxy.py" "$PROXY_PORT" "$B_SMTP_PORT" "$CAPTURE" >>"$WORK/proxy.log" 2>&1 &
	local pid=$!
	e2e_track "$pid"
	e2e_record_pid "$pid"
	wait_until 10 port_listening "$PROXY_PORT"
}
# gw_b_milter [--set KEY=VALUE]...: B's milter (later --set win).
gw_b_milter() {
	GWB=$WORK/b
	mkdir -p "$GWB"
	"$NZBIN" serve --listen "inet:$SERVER_IP:$B_MILTER_PORT" \
		--set "dns.servers=[\"$DNS_ADDR\"]" --set 'notify.submit="sendmail"' \
		--set "notify.sendmail=[\"/usr/sbin/sendmail\",\"-C\",\"$GWB/postfix\"]" \
		--set 'profile="seemail"' --set "domains=[\"$B\"]" --set 'internal_networks=["10.255.255.0/24"]' \
		--set "outbound.seemail_domains=[\"$A\"]" \
		--set "smime.identities=[\"$B:$PKI/agency-b.crt:$PKI/agency-b.key\"]" \
		--set "smime.trust_anchors=[\"$PKI/ca.crt\"]" --set "smime.peers=\"$WORK/peers-b\"" \
		--set "smime.crl_dir=\"$GWB/crl\"" --set 'smime.crl_timeout="2s"' \
		--set "smime.held_dir=\"$GWB/held\"" --set "smime.pending=\"$GWB/pending\"" --set "lists.dir=\"$GWB/lists\"" \
		--set "selftest.key_file=\"$GWB/selftest.key\"" --set 'selftest.interval="0s"' \
		--set "outbound.first_contact_state=\"$GWB/first-contact\"" \
		--set 'authserv_id="mx-b.e2e.test"' "$@" >>"$GWB/milter.log" 2>&1 &
	B_MILTER_PID=$!
	e2e_track "$B_MILTER_PID"
	e2e_record_pid "$B_MILTER_PID"
	wait_until 15 port_listening "$B_MILTER_PORT"
}
# gw_b_postfix [MAIN_CF_LINES]: B's Postfix. lib.sh's writer makes the
# config from its globals; they are pointed at B's directories and port
# while it runs, and put back after.
gw_b_postfix() {
	local extra=${1:-}
	local save=("$PFDIR" "$PFQUEUE" "$PFDATA" "$SMTP_PORT" "$WORK" "$E2E_SUBMISSION" "${POSTFIX_EXTRA_MAIN:-}")
	PFDIR=$GWB/postfix PFQUEUE=$GWB/spool PFDATA=$GWB/data SMTP_PORT=$B_SMTP_PORT WORK=$GWB E2E_SUBMISSION=0
	POSTFIX_EXTRA_MAIN="myhostname = mx-b.e2e.test
syslog_name = postfix-e2e-$E2E_NAME-b${extra:+
$extra}"
	write_postfix_config "inet:$SERVER_IP:$B_MILTER_PORT"
	touch "$GWB/postfix.log"
	local rc=0
	postfix -c "$PFDIR" start >"$GWB/postfix-start.log" 2>&1 || rc=$?
	PFDIR=${save[0]} PFQUEUE=${save[1]} PFDATA=${save[2]} SMTP_PORT=${save[3]} WORK=${save[4]} E2E_SUBMISSION=${save[5]}
	POSTFIX_EXTRA_MAIN=${save[6]}
	((rc == 0)) || return 1
	wait_until 15 port_listening "$B_SMTP_PORT" || return 1
	e2e_track "$(tr -d ' \n' <"$GWB/spool/pid/master.pid")"
}
gw_b_queue_empty() {
	local n
	n=$(find "$GWB/spool/incoming" "$GWB/spool/active" "$GWB/spool/deferred" "$GWB/spool/maildrop" -type f 2>/dev/null | wc -l)
	((n == 0))
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

# e2e_build: build nzsecure-milter ($NZBIN) and the loopback DNS server
# tests/e2e/dnsd ($DNSD_BIN) once per run of all scenarios. run-all.sh builds
# first and exports NZBIN, DNSD_BIN and E2E_BUILT=1; a scenario started alone
# builds for itself (go's build cache makes that cheap).
e2e_build() {
	NZBIN=${NZBIN:-$E2E_BIN_DIR/nzsecure-milter}
	DNSD_BIN=${DNSD_BIN:-$E2E_BIN_DIR/dnsd}
	export NZBIN DNSD_BIN
	if [[ ${E2E_BUILT:-0} == 1 && -x $NZBIN && -x $DNSD_BIN ]]; then return 0; fi
	mkdir -p "$(dirname "$NZBIN")" "$(dirname "$DNSD_BIN")" "$E2E_BIN_DIR"
	e2e_log "building $NZBIN and $DNSD_BIN"
	if ! (cd "$REPO_ROOT" && go build -o "$NZBIN" ./cmd/nzsecure-milter &&
		go build -o "$DNSD_BIN" ./tests/e2e/dnsd) >"$E2E_BIN_DIR/build.log" 2>&1; then
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
			fail "go build ./cmd/nzsecure-milter ./tests/e2e/dnsd"
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
	[[ -n $TLSPOLICY_PID ]] && stop_pid "$TLSPOLICY_PID" 5
	[[ -n $DNS_PID ]] && stop_pid "$DNS_PID" 3
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

# start_sink: smtp-sink on $SINK_IP:$SINK_PORT (default 127.0.0.1), one file
# per message in $SINK_DIR (smtp-sink -d). The file is created at MAIL FROM and closed at
# the final "."; an aborted transaction's file is removed. sink_files lists
# only closed files, so a message counts once it is complete.
start_sink() {
	mkdir -p "$SINK_DIR"
	chown nobody "$SINK_DIR"
	smtp-sink -u nobody -h sink.e2e.test -d "$SINK_DIR/msg." -m 500 \
		"$SINK_IP:$SINK_PORT" 512 >>"$WORK/sink.log" 2>&1 &
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
# The directory is listed before the sink's open files are: a file
# created in between is not listed, rather than listed as complete.
sink_files() {
	local open="" f files=("$SINK_DIR"/msg.*)
	if [[ -n $SINK_PID && -d /proc/$SINK_PID/fd ]]; then
		open=$(find "/proc/$SINK_PID/fd" -mindepth 1 -maxdepth 1 -exec readlink {} + 2>/dev/null || true)
	fi
	for f in "${files[@]}"; do
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

# unfolded_headers FILE: the header section, continuation lines joined
# (RFC 5322 section 2.2.3), each fold's white space made one space.
unfolded_headers() {
	sink_headers "$1" | awk '
		/^[ \t]/ { sub(/^[ \t]+/, " "); cur = cur $0; next }
		{ if (cur != "") print cur; cur = $0 }
		END { if (cur != "") print cur }'
}

# qp_decode FILE: the file with quoted-printable decoded (the notices are
# text/plain; charset=utf-8, quoted-printable). Needs python3.
qp_decode() { python3 -c 'import quopri,sys; sys.stdout.buffer.write(quopri.decodestring(open(sys.argv[1],"rb").read()))' "$1"; }

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
# given in $POSTFIX_EXTRA_MAIN (appended last, so they win), extra master.cf
# services in $POSTFIX_EXTRA_MASTER; start_postfix also waits for the ports
# in $POSTFIX_EXTRA_PORTS to listen. enable_submission (before start_postfix)
# adds the SASL submission listener.
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
relayhost = [$SINK_IP]:$SINK_PORT
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
$(pf_submission_main)
${POSTFIX_EXTRA_MAIN:-}
EOF
	pf_main_last_wins "$PFDIR/main.cf"
	cat >"$PFDIR/master.cf" <<EOF
# Private Postfix instance for the e2e test "$E2E_NAME" (tests/e2e/lib.sh).
# No port 25, no local/virtual/lmtp delivery; chroot off (except in services
# a scenario adds through POSTFIX_EXTRA_MASTER).
# pickup stays: postqueue -f refuses to run ("mail system is down") without
# public/pickup.
# service type  private unpriv  chroot  wakeup  maxproc command + args
$SERVER_IP:$SMTP_PORT inet n   -       n       -       -       smtpd
$(pf_submission_master)
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

# pf_main_last_wins FILE: drop every main.cf parameter setting that a later
# one overrides (with its continuation lines), so that $POSTFIX_EXTRA_MAIN can
# override a default without Postfix warning "overriding earlier entry" on
# every command (postmap -q output included).
pf_main_last_wins() {
	awk '
		FNR == NR { if (match($0, /^[A-Za-z0-9_]+[ \t]*=/)) { n = $0; sub(/[ \t]*=.*/, "", n); last[n] = FNR }; next }
		/^[ \t]/ && skip { next }
		{ skip = 0 }
		match($0, /^[A-Za-z0-9_]+[ \t]*=/) { n = $0; sub(/[ \t]*=.*/, "", n); if (last[n] != FNR) { skip = 1; next } }
		{ print }
	' "$1" "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

# start_postfix MILTER_SPEC: write the config and start the private
# instance; wait until smtpd listens on $SMTP_PORT (and $SUBMISSION_PORT
# after enable_submission, and $POSTFIX_EXTRA_PORTS). An empty MILTER_SPEC
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
	local port ports=("$SMTP_PORT")
	if [[ $E2E_SUBMISSION == 1 ]]; then ports+=("$SUBMISSION_PORT"); fi
	# shellcheck disable=SC2206 # a list of port numbers
	ports+=(${POSTFIX_EXTRA_PORTS:-})
	for port in "${ports[@]}"; do
		if ! wait_until 15 port_listening "$port"; then
			echo "start_postfix: smtpd does not listen on $port" >&2
			tail -n 30 "$WORK/postfix.log" >&2
			return 1
		fi
	done
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

# ------------------------------------------------------------ submission

# enable_submission REALM USER PASSWORD [USER PASSWORD]...: before
# start_postfix. Creates the users in a Cyrus sasldb
# ($WORK/postfix/sasl/sasldb2, saslpasswd2 -u REALM) and makes start_postfix
# add a submission listener on 127.0.0.1:$SUBMISSION_PORT: STARTTLS
# required, SASL PLAIN/LOGIN (only after STARTTLS), relaying only for
# authenticated clients, and milter_macro_daemon_name=ORIGINATING so the
# milter sees {daemon_name} ORIGINATING. Users log in as USER or USER@REALM
# (smtpd_sasl_local_domain is REALM); either way Cyrus names the user
# USER@REALM, and that is what Postfix logs as sasl_username and hands the
# milter as {auth_authen}.
enable_submission() {
	local realm=$1
	shift
	e2e_need saslpasswd2 || return 1
	if (($# == 0 || $# % 2)); then
		echo "enable_submission: REALM USER PASSWORD [USER PASSWORD]..." >&2
		return 1
	fi
	# Debian's Postfix reads $config_directory/sasl/smtpd.conf (it ignores
	# cyrus_sasl_config_path); upstream's reads cyrus_sasl_config_path.
	SASL_DIR=$PFDIR/sasl
	SASL_REALM=$realm
	mkdir -p "$SASL_DIR"
	while (($# >= 2)); do
		if ! printf '%s\n' "$2" | saslpasswd2 -p -c -f "$SASL_DIR/sasldb2" -u "$realm" "$1"; then
			echo "enable_submission: saslpasswd2 failed for $1@$realm" >&2
			return 1
		fi
		shift 2
	done
	# smtpd runs as postfix and opens the database read-only.
	chgrp postfix "$SASL_DIR/sasldb2"
	chmod 640 "$SASL_DIR/sasldb2"
	cat >"$SASL_DIR/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $SASL_DIR/sasldb2
mech_list: PLAIN LOGIN
EOF
	chmod 644 "$SASL_DIR/smtpd.conf"
	E2E_SUBMISSION=1
}

# pf_submission_main / pf_submission_master: the main.cf lines and the
# master.cf service for the submission listener (empty unless enabled).
# smtpd (not chrooted: chroot column n) reads $SASL_DIR/smtpd.conf.
pf_submission_main() {
	[[ $E2E_SUBMISSION == 1 ]] || return 0
	cat <<EOF
# SASL for the submission listener (enable_submission): Cyrus, sasldb.
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $SASL_DIR
smtpd_sasl_security_options = noanonymous
smtpd_sasl_local_domain = $SASL_REALM
smtpd_tls_auth_only = yes
EOF
}
pf_submission_master() {
	[[ $E2E_SUBMISSION == 1 ]] || return 0
	cat <<EOF
# Submission (enable_submission): TLS required, SASL, ORIGINATING.
$SERVER_IP:$SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix-e2e-$E2E_NAME/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
EOF
}

# ----------------------------------------------------------------- milter

# start_milter [ARGS...]: $NZBIN serve --listen inet:127.0.0.1:$MILTER_PORT
# ARGS..., logs appended to $WORK/milter.log; waits (bounded) until the port
# listens. Fails if the process exits first.
#
# Two settings come first (ARGS may override them with their own --set):
# mail the milter generates (notices, receipts, ping answers) is submitted
# with "sendmail -C $PFDIR", i.e. into the private instance, which delivers
# it to the sink, never to the machine's own MTA; and once start_dns has run,
# the milter resolves through the test DNS server (dns.servers), so no
# SPF/DKIM/DMARC lookup leaves loopback.
start_milter() {
	: "${NZBIN:?NZBIN is not set: e2e_init builds it}"
	if [[ -n ${DNS_ADDR:-} ]]; then set -- --set "dns.servers=[\"$DNS_ADDR\"]" "$@"; fi
	set -- --set 'notify.submit="sendmail"' \
		--set "notify.sendmail=[\"/usr/sbin/sendmail\",\"-C\",\"$PFDIR\"]" "$@"
	# The self-test key stays in the work dir and serve's scheduled
	# self-test is off (it would talk to 127.0.0.1:25, the machine's own
	# MTA); tests/e2e/selftest.sh runs `selftest` itself.
	set -- --set "selftest.key_file=\"$WORK/selftest.key\"" --set 'selftest.interval="0s"' "$@"
	# The gateway's state directories stay in the work dir too, so no test
	# creates /var/lib/nzsecure-milter (a caller's --set comes later and wins).
	set -- --set "smime.held_dir=\"$WORK/state/held\"" --set "smime.peers=\"$WORK/state/peers\"" \
		--set "smime.crl_dir=\"$WORK/state/crl\"" --set "smime.pending=\"$WORK/state/pending\"" \
		--set "lists.dir=\"$WORK/state/lists\"" --set "outbound.first_contact_state=\"$WORK/state/first-contact\"" "$@"
	printf -- '--- %s start_milter %s\n' "$(date +%T)" "$*" >>"$WORK/milter.log"
	local log_before
	log_before=$(wc -l <"$WORK/milter.log")
	"$NZBIN" serve --listen "inet:$SERVER_IP:$MILTER_PORT" "$@" >>"$WORK/milter.log" 2>&1 &
	MILTER_PID=$!
	MILTER_EXIT=
	local deadline=$((SECONDS + 15))
	# Ready once it listens and has logged "serving" (set-up done: a
	# signal sent now is handled as the running milter handles it).
	while ! port_listening "$MILTER_PORT" ||
		! awk -v n="$log_before" 'NR > n && /"msg":"serving"/ { found = 1 } END { exit !found }' "$WORK/milter.log"; do
		if ! pid_alive "$MILTER_PID"; then
			wait "$MILTER_PID" 2>/dev/null && MILTER_EXIT=0 || MILTER_EXIT=$?
			echo "start_milter: nzsecure-milter exited ($MILTER_EXIT) before listening" >&2
			tail -n 20 "$WORK/milter.log" >&2
			MILTER_PID=
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "start_milter: port $MILTER_PORT not listening, or no \"serving\" logged, after 15s" >&2
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

# send ARGS...: swaks to 127.0.0.1:$SMTP_PORT from 127.0.0.2, or from
# $SEND_FROM_IP if set (127.0.0.1: an internal client); add --tls for
# STARTTLS. The transcript goes to $SEND_OUT ($WORK/send-N.txt) and the
# status is swaks's exit code (0: accepted; 23: refused at MAIL FROM, 24:
# RCPT, 25: DATA, 26: after the final "."; 21/22: connection/banner/EHLO).
send() {
	SEND_SEQ=$((SEND_SEQ + 1))
	SEND_OUT=$WORK/send-$SEND_SEQ.txt
	local rc=0
	swaks --server "$SERVER_IP" --port "$SMTP_PORT" --local-interface "${SEND_FROM_IP:-$CLIENT_IP}" \
		--ehlo client.e2e.test --timeout 30 --suppress-data "$@" >"$SEND_OUT" 2>&1 || rc=$?
	return "$rc"
}

# send_auth USER PASSWORD ARGS...: swaks to the submission listener
# (enable_submission) from 127.0.0.2 (or $SEND_FROM_IP), STARTTLS, then AUTH
# PLAIN as USER (USER or USER@REALM). Transcript and status as for send; 28
# means authentication failed.
send_auth() {
	local user=$1 pass=$2
	shift 2
	SEND_SEQ=$((SEND_SEQ + 1))
	SEND_OUT=$WORK/send-$SEND_SEQ.txt
	local rc=0
	swaks --server "$SERVER_IP" --port "$SUBMISSION_PORT" --local-interface "${SEND_FROM_IP:-$CLIENT_IP}" \
		--ehlo client.e2e.test --timeout 30 --suppress-data \
		--tls --auth PLAIN --auth-user "$user" --auth-password "$pass" \
		"$@" >"$SEND_OUT" 2>&1 || rc=$?
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

# expect_accepted RC ID PASS_MSG FAIL_MSG: the last send (swaks exit
# status RC) got 250: pass PASS_MSG and expect ID at the sink exactly once
# (EXPECT_ONE); else fail "FAIL_MSG (swaks exit RC, reply '...')".
expect_accepted() {
	if (($1 == 0)) && accepted; then
		pass "$3"
		EXPECT_ONE+=("$2")
	else
		fail "$4 (swaks exit $1, reply '$(last_reply)')" "$SEND_OUT"
	fi
}

# expect_sent WHAT RC: the last send (swaks exit status RC) got 250: pass
# "WHAT accepted", else fail with the server's reply. Unlike
# expect_accepted it expects nothing at the sink, for a message accepted
# and then deliberately never delivered.
expect_sent() {
	if (($2 == 0)) && accepted; then
		pass "$1 accepted"
	else
		fail "$1 accepted (swaks exit $2: $(last_reply))" "$SEND_OUT"
	fi
}

# mail_reply: the server's last reply to MAIL FROM in the last send.
mail_reply() { reply_to "MAIL FROM" "$SEND_OUT" | tail -n 1; }

# unique_id: a message id for X-Test-Id headers.
unique_id() { printf '%s-%s-%s' "${E2E_NAME:-e2e}" "$(date +%s%N)" "$RANDOM"; }

# -------------------------------------------------------------------- dns

# start_dns [--listen IP:PORT] ZONEFILE...: the loopback authoritative DNS
# server tests/e2e/dnsd ($DNSD_BIN, built by e2e_build) serving the records
# of the zone files (auth/dnstest.ParseZone format: master-file text plus
# "$FAULT NAME TIMEOUT|SERVFAIL|TRUNCATE" lines), UDP and TCP, by default on
# 127.0.0.1 and a port it picks. Waits (bounded) for its "listening ADDR"
# line, then exports DNS_ADDR (IP:PORT), DNS_IP and DNS_PORT. Every query is
# logged in $WORK/dns.log. start_milter and start_tlspolicy then point the
# milter (dns.servers) and tlspolicy (--dns) at it: start it first.
start_dns() {
	local listen=$SERVER_IP:0 f args=()
	if [[ ${1:-} == --listen ]]; then
		listen=$2
		shift 2
	fi
	: "${DNSD_BIN:?DNSD_BIN is not set: e2e_init builds it}"
	(($# > 0)) || {
		echo "start_dns: no zone file" >&2
		return 1
	}
	for f in "$@"; do args+=(-zone "$f"); done
	: >"$WORK/dns.out"
	"$DNSD_BIN" -v -listen "$listen" "${args[@]}" >"$WORK/dns.out" 2>>"$WORK/dns.log" &
	DNS_PID=$!
	local deadline=$((SECONDS + 10))
	while ! grep -q '^listening ' "$WORK/dns.out"; do
		if ! pid_alive "$DNS_PID" || ((SECONDS >= deadline)); then
			echo "start_dns: dnsd did not start on $listen" >&2
			tail -n 5 "$WORK/dns.log" >&2
			stop_pid "$DNS_PID" 3
			DNS_PID=
			return 1
		fi
		sleep 0.1
	done
	DNS_ADDR=$(awk '/^listening / { print $2; exit }' "$WORK/dns.out")
	DNS_IP=${DNS_ADDR%:*}
	DNS_PORT=${DNS_ADDR##*:}
	export DNS_ADDR DNS_IP DNS_PORT
	e2e_record_pid "$DNS_PID"
	e2e_log "dns server on $DNS_ADDR"
}

stop_dns() {
	[[ -n $DNS_PID ]] || return 0
	stop_pid "$DNS_PID" 5
	DNS_PID=
}

# start_dns53 ZONEFILE...: start_dns on port 53 of a spare loopback address
# (127.0.53.53, or the next of a few if taken): the C resolver, which
# cannot be told a port, can use it. See pf_use_dns.
start_dns53() {
	local ip
	for ip in 127.0.53.53 127.0.53.54 127.0.53.55 127.0.53.56; do
		start_dns --listen "$ip:53" "$@" 2>>"$WORK/dns.log" && return 0
	done
	echo "start_dns53: port 53 is taken on every candidate loopback address" >&2
	return 1
}

# pf_use_dns: make the chrooted services of the private Postfix resolve
# through the test DNS server (start_dns53): a chrooted process reads
# $PFQUEUE/etc/resolv.conf. Only master.cf services with chroot "y" (e.g.
# the smtp transports of tlspolicy.sh) see it; nothing else of the machine's
# DNS changes.
pf_use_dns() {
	[[ ${DNS_PORT:-} == 53 ]] || {
		echo "pf_use_dns: the DNS server must listen on port 53 (start_dns53)" >&2
		return 1
	}
	mkdir -p "$PFQUEUE/etc"
	chmod 755 "$PFQUEUE" "$PFQUEUE/etc"
	printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$DNS_IP" >"$PFQUEUE/etc/resolv.conf"
	chmod 644 "$PFQUEUE/etc/resolv.conf"
}

# ------------------------------------------------------------- tlspolicy

# start_tlspolicy [ARGS...]: $NZBIN tlspolicy --listen
# inet:127.0.0.1:$TLSPOLICY_PORT ARGS... (socketmap service), log appended to
# $WORK/tlspolicy.log; waits (bounded) until it listens. Exports
# TLSPOLICY_MAP, the smtp_tls_policy_maps value for Postfix. Once start_dns
# has run, --dns "$DNS_ADDR" comes first (ARGS may override it), so the
# MTA-STS TXT lookups stay on loopback.
start_tlspolicy() {
	: "${NZBIN:?NZBIN is not set: e2e_init builds it}"
	if [[ -n ${DNS_ADDR:-} ]]; then set -- --dns "$DNS_ADDR" "$@"; fi
	[[ -n ${TLSPOLICY_PORT:-} ]] || pick_port TLSPOLICY_PORT
	printf -- '--- %s start_tlspolicy %s\n' "$(date +%T)" "$*" >>"$WORK/tlspolicy.log"
	"$NZBIN" tlspolicy --listen "inet:$SERVER_IP:$TLSPOLICY_PORT" "$@" >>"$WORK/tlspolicy.log" 2>&1 &
	TLSPOLICY_PID=$!
	local deadline=$((SECONDS + 15))
	while ! port_listening "$TLSPOLICY_PORT"; do
		if ! pid_alive "$TLSPOLICY_PID" || ((SECONDS >= deadline)); then
			echo "start_tlspolicy: tlspolicy did not listen on $TLSPOLICY_PORT" >&2
			tail -n 20 "$WORK/tlspolicy.log" >&2
			stop_pid "$TLSPOLICY_PID" 3
			TLSPOLICY_PID=
			return 1
		fi
		sleep 0.1
	done
	TLSPOLICY_MAP=socketmap:inet:$SERVER_IP:$TLSPOLICY_PORT:policy
	export TLSPOLICY_PORT TLSPOLICY_MAP
	e2e_record_pid "$TLSPOLICY_PID"
}

stop_tlspolicy() {
	[[ -n $TLSPOLICY_PID ]] || return 0
	stop_pid "$TLSPOLICY_PID" 10
	TLSPOLICY_PID=
}

# assert_nothing_lost_or_doubled [WORD]: once the queue has drained, every
# message id in EXPECT_ONE is at the sink exactly once and every id in
# EXPECT_NONE (the WORD ones, default "refused") never, and the Postfix queue
# is empty (two pass/fail lines).
assert_nothing_lost_or_doubled() {
	local id n bad=() word=${1:-refused}
	pf_queue_wait_empty 20 || true
	for id in "${EXPECT_ONE[@]}"; do wait_id "$id" 10 || true; done
	sleep 0.5
	for id in "${EXPECT_ONE[@]}"; do
		n=$(id_count "$id")
		[[ $n == 1 ]] || bad+=("$id:$n")
	done
	for id in "${EXPECT_NONE[@]}"; do
		n=$(id_count "$id")
		[[ $n == 0 ]] || bad+=("$id:$n")
	done
	if ((${#bad[@]} == 0)); then
		pass "all: ${#EXPECT_ONE[@]} accepted messages at the sink exactly once, ${#EXPECT_NONE[@]} $word ones never"
	else
		fail "all: every accepted message once, $word ones never (id:copies ${bad[*]})"
	fi
	check "all: Postfix queue empty at the end" pf_queue_is_empty
}

# Scenario helpers over the last send ($SEND_OUT, swaks's transcript) and the
# sink, keyed by the X-Test-Id header each scenario puts in its messages.
id_count() { sink_grep_count "^X-Test-Id: $1\$"; }
# The sink copies of test message $1 delivered to recipient $2 (X-Rcpt-Args),
# a file a line: the first of them, and how many (one per form, issue 14).
id_files_for() { { sink_grep "^X-Test-Id: $1\$" | xargs -r grep -l "^X-Rcpt-Args: <$2>" 2>/dev/null || true; }; }
file_for() { id_files_for "$1" "$2" | head -n 1; }
copies_for() { id_files_for "$1" "$2" | wc -l | tr -d ' '; }
id_arrived() { (($(id_count "$1") >= 1)); }
wait_id() { wait_until "${2:-20}" id_arrived "$1"; }
accepted() { grep -Eq '^ *<[~-] +250 [0-9.]+ Ok: queued as' "$SEND_OUT"; }
queue_id() { grep -Eo 'queued as [0-9A-Za-z]+' "$SEND_OUT" | awk '{print $3}' | tail -n 1; }
last_reply() { grep -E '^ *<[~*-]+ +[45][0-9][0-9][ -]' "$SEND_OUT" | tail -n 1 | sed -E 's/^ *<[~*-]+ +//'; }

# generated_for RCPT PATTERN: the sink file of a message to RCPT whose text
# matches PATTERN (generated mail carries the original's Subject, R77, but
# not its X-Test-Id).
generated_for() { sink_grep "$2" | xargs -r grep -l "^X-Rcpt-Args: <$1>" 2>/dev/null | head -n 1; }

# ndr_for RCPT PATTERN: the NON DELIVERY REPORT (R74) to RCPT whose text
# matches PATTERN (its Subject may be folded; the original's Subject is in
# the body, R77).
ndr_for() {
	sink_grep "$2" | xargs -r grep -l "^X-Rcpt-Args: <$1>" 2>/dev/null |
		xargs -r grep -l '^Subject: NON DELIVERY REPORT: ' 2>/dev/null | head -n 1
}

# held QID: postqueue -p lists QID with "!" (on hold, R60).
held() { pf_postqueue -p 2>/dev/null | grep -Eq "^$1!"; }

# expect_held QID CASE PASS_MSG FAIL_PREFIX: pass PASS_MSG once QID is on
# hold (within 10s); else fail "FAIL_PREFIX: postqueue -p shows QID! (on
# hold)" with postqueue -p's output in $WORK/CASE.postqueue.
expect_held() {
	local qid=$1 tag=$2
	if [[ -n $qid ]] && wait_until 10 held "$qid"; then
		pass "$3"
	else
		pf_postqueue -p >"$WORK/$tag.postqueue" 2>&1 || true
		fail "$4: postqueue -p shows ${qid:-QUEUEID}! (on hold)" "$WORK/$tag.postqueue"
	fi
}

# decision_for QID: the milter's decision log line for Postfix queue id QID.
decision_for() { grep -F "\"queue_id\":\"$1\"" "$WORK/milter.log" | grep '"msg":"decision"' | tail -n 1; }

# audit_lines: the R113 audit lines of the milter log so far;
# audit_count: how many; audit_since N: those after the first N;
# audit_grew N: more than N now.
audit_lines() { grep -F '"msg":"audit: classified mail breach attempt"' "$WORK/milter.log" || true; }
audit_count() { audit_lines | wc -l | tr -d ' '; }
audit_since() { audit_lines | tail -n "+$(($1 + 1))"; }
audit_grew() { (($(audit_count) > $1)); }
