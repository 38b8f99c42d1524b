#!/usr/bin/env bash
# bench/throughput.sh: end-to-end throughput of Postfix with nzsecure-milter
# and with its peers, on this machine, in one run (issue 13 point 7).
#
#   bash bench/throughput.sh [-n MESSAGES] [-s SESSIONS] [-l BYTES] [-r ROUNDS]
#   (or BENCH_N, BENCH_SESSIONS, BENCH_SIZE, BENCH_ROUNDS in the environment;
#   BENCH_MODES="noop nz-in" runs a subset of the modes below)
#
# Uses the private Postfix of the e2e harness (tests/e2e/lib.sh), relaying
# everything to smtp-sink on loopback. smtp-source sends N messages over S
# parallel sessions to Postfix in each of six modes:
#   alone        Postfix without a milter
#   noop-plain   bench/noopmilter -plain: the same protocol options, actions
#                and macros as nzsecure-milter, sees every header and body
#                chunk, accepts everything; go-milter's TCP and Go's
#                runtime as they come
#   noop         the same with TCP_QUICKACK after every read and serve's
#                runtime settings (GOGC, GOMAXPROCS), as nzsecure-milter
#                serve does (internal/quickack, internal/runtimetune): the
#                floor for nzsecure-milter
#   noop-unix    the no-op milter over a Unix socket (no delayed ACKs there)
#   noop-replies (only when named in BENCH_MODES) the no-op milter asking
#                for a reply to every event: measured no faster than noop-plain
#   noop-headers (only when named in BENCH_MODES) the no-op milter
#                inserting the two header fields nzsecure-milter inserts
#                inbound: what Postfix's handling of those edits costs
#   nz-in        nzsecure-milter, inbound (from sender.example to
#                agency.govt.nz), the full default `sge` policy
#   odkim-verify OpenDKIM in verifying mode (Mode v), the same inbound mail
#   nz-out       nzsecure-milter, outbound (from agency.govt.nz, client
#                internal), DKIM-signing with an RSA-2048 key (dkim.keys)
#   odkim-sign   OpenDKIM in signing mode (Mode s), the same key and mail
# For each the wall time runs from the first message sent until Postfix has
# delivered all N to the sink (Postfix's "status=sent" log lines). A short
# unmeasured warm-up precedes each run. The modes alternate ROUNDS times
# (the machine's other load then spreads over all of them) and the medians
# are reported, with the ratios nz-in/noop (target >= 0.97) and
# nz-out/odkim-sign (target >= 1.5). In the signing modes Postfix's
# milter_header_checks log every DKIM-Signature a milter adds, so the report
# can say how many messages each signer signed.
#
# smtp-source cannot do STARTTLS and always connects from 127.0.0.1, so the
# inbound milter runs with --set 'internal_networks=[]' (the messages are
# from the internet, as at an MX) and --set 'inbound.min_tls="none"'; the
# outbound one with internal_networks=["127.0.0.0/8"]. The milter's DNS
# lookups go to the loopback test DNS server (tests/e2e/dnsd). Not part of
# `make test`; run with `make bench`. Needs root, Postfix, opendkim.
set -euo pipefail

N=${BENCH_N:-2000}
SESSIONS=${BENCH_SESSIONS:-10}
SIZE=${BENCH_SIZE:-2048}
ROUNDS=${BENCH_ROUNDS:-1}
while getopts "n:s:l:r:h" opt; do
	case $opt in
	n) N=$OPTARG ;;
	s) SESSIONS=$OPTARG ;;
	l) SIZE=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	*)
		sed -n '2,42p' "$0"
		exit 2
		;;
	esac
done
for v in N SESSIONS SIZE ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || {
		echo "throughput: $v must be a positive integer" >&2
		exit 2
	}
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_WORK_ROOT=$BENCH_DIR/work
source "$BENCH_DIR/../tests/e2e/lib.sh"
e2e_need smtp-source opendkim

e2e_init throughput
DOMAIN=agency.govt.nz
IN_FROM=sender@sender.example IN_TO=user@$DOMAIN
OUT_FROM=alice@$DOMAIN OUT_TO=user@peer.example
SELECTOR=bench
IN_ARGS=(--set "domains=[\"$DOMAIN\"]" --set 'internal_networks=[]' --set 'inbound.min_tls="none"')
# Quieter Postfix logs; default process limits (100) and concurrency. In
# the signing modes every DKIM-Signature a milter adds is logged (counted
# in the report) by milter_header_checks; only there: the table is matched
# against every header field a milter adds, which in the inbound modes
# cost as much as the two fields nzsecure-milter inserts (a production
# Postfix has no milter_header_checks).
PLAIN_MAIN="smtpd_tls_loglevel = 0"
SIGNING_MAIN="$PLAIN_MAIN
milter_header_checks = regexp:$WORK/milter_header_checks"
POSTFIX_EXTRA_MAIN=$PLAIN_MAIN
printf '%s\n' '/^DKIM-Signature:/ WARN bench-dkim-signed' >"$WORK/milter_header_checks"
WARMUP=$((N / 20 < 20 ? 20 : (N / 20 > 100 ? 100 : N / 20)))
# Bounded: at least 60s, or 20 ms per message, per run.
DEADLINE=$((N / 50 > 60 ? N / 50 : 60))
# BENCH_MODES: a subset, in this order (e.g. "noop nz-in").
read -r -a MODES <<<"${BENCH_MODES:-alone noop-plain noop noop-unix nz-in odkim-verify nz-out odkim-sign}"

# Counted in what Postfix logged since the run started (LOG_OFF), so the
# polling does not read the whole growing log and compete for the CPU.
LOG_OFF=0
new_log() { tail -c +$((LOG_OFF + 1)) "$WORK/postfix.log"; }
sent_count() { new_log | grep -c 'status=sent' || true; }
signed_count() { new_log | grep -c 'bench-dkim-signed' || true; }

# blast COUNT: smtp-source COUNT messages over $SESSIONS sessions, from
# $FROM to $TO.
blast() {
	timeout "$DEADLINE" smtp-source -s "$SESSIONS" -m "$1" -l "$SIZE" \
		-f "$FROM" -t "$TO" -M bench.client.example -S "throughput $1" \
		"$SERVER_IP:$SMTP_PORT" >>"$WORK/smtp-source.log" 2>&1
}

# CPU accounting of the timed part: the milter process's own CPU (user and
# system, from /proc/PID/stat) per message, and how busy the whole machine
# was (/proc/stat), so the report shows where a ratio comes from: on a
# machine the run keeps busy, a milter's extra CPU is throughput lost.
CLK_TCK=$(getconf CLK_TCK)
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_ticks() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat; }
declare -A MPID=()

# run_mode LABEL MILTER_SPEC: sets RUN_SECONDS (first message sent to all N
# delivered), RUN_ACCEPT (until smtp-source had them all accepted),
# RUN_SIGNED (DKIM-Signature headers milters added in the timed part),
# RUN_CPU (the milter's CPU milliseconds per message; - without a milter),
# RUN_BUSY (the machine's CPUs busy, percent) and RUN_OTHER (the CPU
# milliseconds per message of everything but the milter).
run_mode() {
	local label=$1 spec=$2 base t0 t1 t2 got deadline sbase pid c0 c1 b0 b1 a0 a1
	RUN_SECONDS='' RUN_ACCEPT='' RUN_SIGNED='' RUN_CPU=- RUN_BUSY='' RUN_OTHER=''
	c1=0
	pid=${MPID[$label]:-}
	LOG_OFF=$(stat -c %s "$WORK/postfix.log" 2>/dev/null || echo 0)
	start_postfix "$spec"
	# Warm-up: start the smtpd/cleanup/smtp processes, fill caches.
	base=$(sent_count)
	blast "$WARMUP" || {
		echo "throughput: warm-up failed ($label), see $WORK/smtp-source.log" >&2
		return 1
	}
	wait_until 60 sent_at_least $((base + WARMUP)) || {
		echo "throughput: warm-up not delivered ($label)" >&2
		return 1
	}
	base=$(sent_count) sbase=$(signed_count)
	c0=$([[ -n $pid ]] && proc_ticks "$pid" || echo 0)
	read -r b0 a0 < <(cpu_ticks)
	t0=$(date +%s.%N)
	if ! blast "$N"; then
		echo "throughput: smtp-source failed or timed out ($label); see $WORK/smtp-source.log" >&2
		return 1
	fi
	t1=$(date +%s.%N)
	deadline=$((SECONDS + DEADLINE))
	while got=$(sent_count) && ((got < base + N)); do
		if ((SECONDS >= deadline)); then
			echo "throughput: only $((got - base)) of $N delivered after ${DEADLINE}s ($label)" >&2
			return 1
		fi
		sleep 0.05
	done
	t2=$(date +%s.%N)
	read -r b1 a1 < <(cpu_ticks)
	if [[ -n $pid ]]; then
		c1=$(proc_ticks "$pid")
		RUN_CPU=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v n="$N" 'BEGIN { printf "%.3f", c * 1000 / hz / n }')
	fi
	RUN_BUSY=$(awk -v b="$((b1 - b0))" -v a="$((a1 - a0))" 'BEGIN { printf "%.0f", (a > 0) ? 100 * b / a : 0 }')
	# Everything else (Postfix, smtp-source, smtp-sink, the kernel): the
	# machine's busy CPU time less the milter's, per message.
	RUN_OTHER=$(awk -v b="$((b1 - b0))" -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v n="$N" 'BEGIN { printf "%.3f", (b - c) * 1000 / hz / n }')
	RUN_SIGNED=$(($(signed_count) - sbase))
	stop_postfix
	RUN_SECONDS=$(awk -v a="$t0" -v c="$t2" 'BEGIN { printf "%.3f", c - a }')
	RUN_ACCEPT=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}
sent_at_least() { (($(sent_count) >= $1)); }

e2e_log "N=$N sessions=$SESSIONS size=$SIZE warm-up=$WARMUP rounds=$ROUNDS"
# The sink keeps nothing (no -d): only Postfix and the milter are measured.
smtp-sink -u nobody -h sink.bench -m 500 "$SERVER_IP:$SINK_PORT" 1024 >>"$WORK/sink.log" 2>&1 &
SINK_PID=$!
wait_until 10 port_listening "$SINK_PORT"
e2e_record_pid "$SINK_PID"

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# One RSA-2048 key for both signers (nzsecure-milter's own key generator;
# PKCS#8 PEM, which OpenDKIM reads too).
"$NZBIN" dkim-keygen --domain "$DOMAIN" --selector "$SELECTOR" --out "$WORK/dkim.key" >"$WORK/dkim.txt"
chmod 600 "$WORK/dkim.key"

# The milter's DNS lookups (SPF and the like) go to the loopback test DNS
# server, not to the network: no network latency in the numbers.
{
	echo 'sender.example. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"'
	echo "$DOMAIN. 300 IN TXT \"v=spf1 ip4:127.0.0.0/8 -all\""
	cat "$WORK/dkim.txt"
} >"$WORK/zone"
start_dns "$WORK/zone"

# bg_listen NAME PORT CMD...: start CMD in the background (logs in
# $WORK/NAME.log), wait (bounded) until PORT listens.
bg_listen() {
	local name=$1 port=$2 pid
	shift 2
	"$@" >>"$WORK/$name.log" 2>&1 &
	pid=$!
	echo "$pid" >"$WORK/$name.pid"
	e2e_track "$pid"
	e2e_record_pid "$pid"
	wait_until 15 port_listening "$port" || {
		echo "throughput: $name does not listen on $port; see $WORK/$name.log" >&2
		tail -n 20 "$WORK/$name.log" >&2
		return 1
	}
}

pick_port NOOP_PORT
pick_port OUT_PORT
pick_port ODV_PORT
pick_port ODS_PORT
# BENCH_PROFILE_DIR=DIR: CPU profiles of both nzsecure-milter processes
# and of the no-op floor (NZSECURE_CPUPROFILE), DIR/in.prof, DIR/out.prof
# and DIR/noop.prof, written as they stop.
prof() { [[ -z ${BENCH_PROFILE_DIR:-} ]] || echo "NZSECURE_CPUPROFILE=$BENCH_PROFILE_DIR/$1.prof"; }
if [[ -n ${BENCH_PROFILE_DIR:-} ]]; then mkdir -p "$BENCH_PROFILE_DIR"; fi
(cd "$REPO_ROOT" && go build -o "$WORK/noopmilter" ./bench/noopmilter)
# shellcheck disable=SC2046 # prof prints one word or nothing
bg_listen noopmilter "$NOOP_PORT" env $(prof noop) "$WORK/noopmilter" -listen "$SERVER_IP:$NOOP_PORT"
# Optional experiment (BENCH_MODES): the no-op milter asking for a reply
# to every event.
pick_port NOOPR_PORT
pick_port NOOPP_PORT
if [[ " ${MODES[*]} " == *" noop-replies "* ]]; then
	bg_listen noopmilter-r "$NOOPR_PORT" "$WORK/noopmilter" -replies -listen "$SERVER_IP:$NOOPR_PORT"
fi
pick_port NOOPH_PORT
if [[ " ${MODES[*]} " == *" noop-headers "* ]]; then
	bg_listen noopmilter-h "$NOOPH_PORT" "$WORK/noopmilter" -headers -listen "$SERVER_IP:$NOOPH_PORT"
fi
bg_listen noopmilter-p "$NOOPP_PORT" "$WORK/noopmilter" -plain -listen "$SERVER_IP:$NOOPP_PORT"
# The same no-op milter on a Unix socket (smtpd runs as postfix: mode 666).
"$WORK/noopmilter" -listen "unix:$WORK/noop.sock" >>"$WORK/noopmilter-unix.log" 2>&1 &
MPID[noop-unix]=$!
e2e_track $!
e2e_record_pid $!
wait_until 15 test -S "$WORK/noop.sock"
chmod 666 "$WORK/noop.sock"
if [[ -n ${BENCH_PROFILE_DIR:-} ]]; then export NZSECURE_CPUPROFILE=$BENCH_PROFILE_DIR/in.prof; fi
start_milter "${IN_ARGS[@]}"
unset NZSECURE_CPUPROFILE
# shellcheck disable=SC2046 # prof prints one word or nothing
bg_listen milter-out "$OUT_PORT" env $(prof out) "$NZBIN" serve --listen "inet:$SERVER_IP:$OUT_PORT" \
	--set "dns.servers=[\"$DNS_ADDR\"]" --set 'notify.submit="sendmail"' \
	--set "notify.sendmail=[\"/usr/sbin/sendmail\",\"-C\",\"$PFDIR\"]" \
	--set "domains=[\"$DOMAIN\"]" --set 'internal_networks=["127.0.0.0/8"]' \
	--set "dkim.keys=[\"$DOMAIN:$SELECTOR:$WORK/dkim.key\"]"
# OpenDKIM as its Debian package runs it, in the foreground; relaxed/relaxed
# RSA-SHA256 like nzsecure-milter's signer.
odkim_conf() { # MODE PORT
	cat <<EOF
Mode $1
Socket inet:$2@$SERVER_IP
Background no
Syslog no
PidFile $WORK/opendkim-$1.pid
Domain $DOMAIN
Selector $SELECTOR
KeyFile $WORK/dkim.key
RequireSafeKeys no
InternalHosts 127.0.0.0/8
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
EOF
}
odkim_conf v "$ODV_PORT" >"$WORK/opendkim-v.conf"
odkim_conf s "$ODS_PORT" >"$WORK/opendkim-s.conf"
bg_listen opendkim-v "$ODV_PORT" opendkim -f -x "$WORK/opendkim-v.conf"
bg_listen opendkim-s "$ODS_PORT" opendkim -f -x "$WORK/opendkim-s.conf"

declare -A SPEC=([alone]="" [noop]="inet:$SERVER_IP:$NOOP_PORT" [noop-unix]="unix:$WORK/noop.sock" [noop-replies]="inet:$SERVER_IP:$NOOPR_PORT" [noop-headers]="inet:$SERVER_IP:$NOOPH_PORT" [noop-plain]="inet:$SERVER_IP:$NOOPP_PORT" [nz-in]="inet:$SERVER_IP:$MILTER_PORT"
	[odkim-verify]="inet:$SERVER_IP:$ODV_PORT" [nz-out]="inet:$SERVER_IP:$OUT_PORT" [odkim-sign]="inet:$SERVER_IP:$ODS_PORT")
MPID[noop]=$(cat "$WORK/noopmilter.pid") MPID[noop-plain]=$(cat "$WORK/noopmilter-p.pid") MPID[nz-in]=$MILTER_PID
MPID[nz-out]=$(cat "$WORK/milter-out.pid") MPID[odkim-verify]=$(cat "$WORK/opendkim-v.pid") MPID[odkim-sign]=$(cat "$WORK/opendkim-s.pid")
if [[ -s $WORK/noopmilter-r.pid ]]; then MPID[noop-replies]=$(cat "$WORK/noopmilter-r.pid"); fi
if [[ -s $WORK/noopmilter-h.pid ]]; then MPID[noop-headers]=$(cat "$WORK/noopmilter-h.pid"); fi
declare -A TIMES=() ACCEPTS=() SIGNED=() CPUS=() BUSY=() OTHER=()
for ((round = 1; round <= ROUNDS; round++)); do
	line="round $round:"
	for mode in "${MODES[@]}"; do
		case $mode in
		nz-out | odkim-sign) FROM=$OUT_FROM TO=$OUT_TO POSTFIX_EXTRA_MAIN=$SIGNING_MAIN ;;
		*) FROM=$IN_FROM TO=$IN_TO POSTFIX_EXTRA_MAIN=$PLAIN_MAIN ;;
		esac
		run_mode "$mode" "${SPEC[$mode]}"
		TIMES[$mode]+="$RUN_SECONDS " ACCEPTS[$mode]+="$RUN_ACCEPT " SIGNED[$mode]=$((${SIGNED[$mode]:-0} + RUN_SIGNED))
		CPUS[$mode]+="$RUN_CPU " BUSY[$mode]+="$RUN_BUSY " OTHER[$mode]+="$RUN_OTHER "
		line+=" $mode ${RUN_SECONDS}s"
	done
	e2e_log "$line"
done
decisions=$(cat "$WORK/milter.log" "$WORK/milter-out.log" | grep -c '"msg":"decision"' || true)
rejects=$(cat "$WORK/milter.log" "$WORK/milter-out.log" | grep '"msg":"decision"' | grep -vc '"action":"accept"' || true)
stop_milter
# The outbound milter too (SIGTERM: it writes its profile as it stops).
stop_pid "$(cat "$WORK/milter-out.pid" 2>/dev/null || true)" 20
stop_pid "$(cat "$WORK/noopmilter.pid" 2>/dev/null || true)" 20

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
{
	for mode in "${MODES[@]}"; do
		# shellcheck disable=SC2086 # one time per word
		cpu=-
		[[ ${CPUS[$mode]} == -* ]] || cpu=$(median ${CPUS[$mode]})
		printf '%s %s %s %s %s %s %s %s\n' "$mode" "$(median ${TIMES[$mode]})" "$(median ${ACCEPTS[$mode]})" "${SIGNED[$mode]}" "$cpu" "$(median ${BUSY[$mode]})" "$(median ${OTHER[$mode]})" "${TIMES[$mode]}"
	done
} | awk -v n="$N" -v s="$SESSIONS" -v l="$SIZE" -v cpus="$(nproc)" -v cpu="$cpu_model" \
	-v pf="$(postconf -dh mail_version)" -v dec="$decisions" -v rej="$rejects" -v rounds="$ROUNDS" \
	-v od="$(opendkim -V 2>&1 | awk 'NR == 1 { print $NF }')" '
{ mode[NR] = $1; t[$1] = $2; a[$1] = $3; sg[$1] = $4; cp[$1] = $5; bz[$1] = $6; ot[$1] = $7; r[$1] = n / $2; for (i = 8; i <= NF; i++) rt[$1, i - 7] = $i }
END {
	printf "nzsecure-milter throughput (bench/throughput.sh)\n"
	printf "  machine:   %d CPU(s) %s; Postfix %s; OpenDKIM %s; loopback only\n", cpus, cpu, pf, od
	printf "  load:      %d messages of %d body bytes, %d parallel smtp-source sessions, plaintext\n", n, l, s
	printf "  rounds:    %d, modes alternating; medians shown; a ratio is that of the medians\n", rounds
	printf "             [and in brackets each round'"'"'s own, modes run next to each other]\n"
	printf "  nz-in:     default sge policy, internal_networks=[], inbound.min_tls=\"none\" (smtp-source has no STARTTLS)\n"
	printf "  nz-out:    internal_networks=[\"127.0.0.0/8\"], dkim.keys RSA-2048; odkim-sign: the same key\n"
	printf "  decisions: %d logged by nzsecure-milter (warm-ups included), %d not accept\n", dec, rej
	printf "  %-13s %8s %9s %17s %8s %13s %12s %6s\n", "", "msgs/s", "seconds", "(smtpd accepted)", "signed", "milter ms/msg", "other ms/msg", "busy"
	for (i = 1; i <= NR; i++) {
		m = mode[i]
		# A negative rest (the threads of OpenDKIM, whose CPU /proc accounts
		# oddly) is not shown as a figure.
		printf "  %-13s %8.1f %9.2f %16.2fs %8s %13s %12s %5.0f%%\n", m, r[m], t[m], a[m], (m ~ /nz-out|odkim-sign/) ? sg[m] : "-", (cp[m] == "-") ? "-" : sprintf("%.3f", cp[m]), (ot[m] < 0) ? "n/a" : sprintf("%.3f", ot[m]), bz[m]
	}
	printf "  (milter ms/msg: the milter process'"'"'s CPU per message; other: the rest of the machine'"'"'s (Postfix,\n"
	printf "  smtp-source, smtp-sink, the kernel); busy: the machine'"'"'s CPUs; medians of the rounds)\n"
	ratio("noop-plain", "alone", "(a milter on go-milter as it comes)")
	ratio("noop", "alone", "(the cost any such milter pays)")
	ratio("noop", "noop-plain", "(quick ACKs against delayed ACKs)")
	ratio("noop-unix", "noop", "(Unix socket against TCP with quick ACKs)")
	ratio("noop-headers", "noop", "(what Postfix pays for two inserted header fields)")
	ratio("nz-in", "noop-headers", "(against a no-op milter making the same edits)")
	ratio("nz-in", "noop", "(target >= 0.97)")
	ratio("nz-in", "odkim-verify", "")
	ratio("nz-out", "odkim-sign", "(target >= 1.5)")
	ratio("nz-out", "noop", "")
}
function ratio(a, b, note,   i, per) {
	if (!((a in r) && (b in r))) return
	per = ""
	for (i = 1; i <= rounds; i++) per = per sprintf("%s%.2f", i > 1 ? " " : "", rt[b, i] / rt[a, i])
	printf "  %-25s %.3f [%s] %s\n", a " / " b ":", r[a] / r[b], per, note
}'
E2E_FINISHED=1
