#!/usr/bin/env bash
# bench/throughput.sh: end-to-end throughput of Postfix with and without
# nzsecure-milter, on this machine, in one run.
#
#   bash bench/throughput.sh [-n MESSAGES] [-s SESSIONS] [-l BYTES] [-r ROUNDS]
#   (or BENCH_N, BENCH_SESSIONS, BENCH_SIZE, BENCH_ROUNDS in the environment)
#
# Uses the private Postfix of the e2e harness (tests/e2e/lib.sh), relaying
# everything to smtp-sink on loopback. smtp-source sends N messages over S
# parallel sessions, (a) to Postfix without a milter, (b) to Postfix with
# nzsecure-milter attached (milter_protocol 6, default macros). For each the
# wall time runs from the first message sent until Postfix has delivered all
# N to the sink (counted from Postfix's "status=sent" log lines, i.e. the
# sink answered 250). A short unmeasured warm-up precedes each run. With
# -r ROUNDS > 1 the two runs alternate ROUNDS times and the medians are
# reported (the machine's other load then matters less).
#
# smtp-source cannot do STARTTLS and always connects from 127.0.0.1, so the
# milter runs with --set 'internal_networks=[]' (the messages are inbound,
# from the internet, as at an MX) and --set 'inbound.min_tls="none"' (so the
# plaintext messages are accepted rather than refused at MAIL FROM). The
# report says so. The milter's DNS lookups go to the loopback test DNS
# server (tests/e2e/dnsd), where sender.example's SPF record passes
# 127.0.0.1. Not part of `make test`; run with `make bench`. Needs root.
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
		sed -n '2,20p' "$0"
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
e2e_need smtp-source

e2e_init throughput
FROM=sender@sender.example
TO=user@agency.govt.nz
MILTER_ARGS=(--set 'domains=["agency.govt.nz"]' --set 'internal_networks=[]' --set 'inbound.min_tls="none"')
# Quieter Postfix logs; default process limits (100) and concurrency.
POSTFIX_EXTRA_MAIN="smtpd_tls_loglevel = 0"
WARMUP=$((N / 20 < 20 ? 20 : (N / 20 > 100 ? 100 : N / 20)))
# Bounded: at least 60s, or 20 ms per message, per run.
DEADLINE=$((N / 50 > 60 ? N / 50 : 60))

sent_count() { grep -c 'status=sent' "$WORK/postfix.log" || true; }

# blast COUNT: smtp-source COUNT messages over $SESSIONS sessions.
blast() {
	timeout "$DEADLINE" smtp-source -s "$SESSIONS" -m "$1" -l "$SIZE" \
		-f "$FROM" -t "$TO" -M bench.client.example -S "throughput $1" \
		"$SERVER_IP:$SMTP_PORT" >>"$WORK/smtp-source.log" 2>&1
}

# run_mode LABEL MILTER_SPEC: sets RUN_SECONDS (first message sent to all N
# delivered) and RUN_ACCEPT (until smtp-source had them all accepted).
run_mode() {
	local label=$1 spec=$2 base t0 t1 t2 got deadline
	RUN_SECONDS='' RUN_ACCEPT=''
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
	base=$(sent_count)
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
	stop_postfix
	RUN_SECONDS=$(awk -v a="$t0" -v c="$t2" 'BEGIN { printf "%.3f", c - a }')
	RUN_ACCEPT=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}
sent_at_least() { (($(sent_count) >= $1)); }

e2e_log "N=$N sessions=$SESSIONS size=$SIZE warm-up=$WARMUP"
# The sink keeps nothing (no -d): only Postfix and the milter are measured.
smtp-sink -u nobody -h sink.bench -m 500 "$SERVER_IP:$SINK_PORT" 1024 >>"$WORK/sink.log" 2>&1 &
SINK_PID=$!
wait_until 10 port_listening "$SINK_PORT"
e2e_record_pid "$SINK_PID"

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# The milter's DNS lookups (SPF and the like for sender.example) go to the
# loopback test DNS server, not to the network: no network latency in the
# numbers. smtp-source connects from 127.0.0.1.
cat >"$WORK/zone" <<'EOF'
sender.example. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
EOF
start_dns "$WORK/zone"
start_milter "${MILTER_ARGS[@]}"
T0=() A0=() T1=() A1=()
for ((round = 1; round <= ROUNDS; round++)); do
	run_mode "without milter" ""
	T0+=("$RUN_SECONDS") A0+=("$RUN_ACCEPT")
	run_mode "with milter" "inet:$SERVER_IP:$MILTER_PORT"
	T1+=("$RUN_SECONDS") A1+=("$RUN_ACCEPT")
	e2e_log "round $round: without ${T0[-1]}s, with ${T1[-1]}s"
done
t_without=$(median "${T0[@]}") acc_without=$(median "${A0[@]}")
t_with=$(median "${T1[@]}") acc_with=$(median "${A1[@]}")
decisions=$(grep -c '"msg":"decision"' "$WORK/milter.log" || true)
rejects=$(grep '"msg":"decision"' "$WORK/milter.log" | grep -vc '"action":"accept"' || true)
stop_milter

[[ -n ${t_without:-} && -n ${t_with:-} ]] || {
	echo "throughput: a run failed; logs in $WORK" >&2
	exit 1
}

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
awk -v n="$N" -v s="$SESSIONS" -v l="$SIZE" -v t0="$t_without" -v t1="$t_with" \
	-v a0="$acc_without" -v a1="$acc_with" -v cpus="$(nproc)" -v cpu="$cpu_model" \
	-v pf="$(postconf -dh mail_version)" -v dec="$decisions" -v rej="$rejects" -v rounds="$ROUNDS" '
BEGIN {
	r0 = n / t0; r1 = n / t1
	printf "nzsecure-milter throughput (bench/throughput.sh)\n"
	printf "  machine:   %d CPU(s) %s; Postfix %s; loopback only\n", cpus, cpu, pf
	printf "  load:      %d messages of %d body bytes, %d parallel smtp-source sessions, plaintext\n", n, l, s
	if (rounds > 1) printf "  rounds:    %d, alternating; medians shown\n", rounds
	printf "  milter:    --set internal_networks=[] --set inbound.min_tls=\"none\" (smtp-source has no STARTTLS;\n"
	printf "             the messages are inbound from the internet, plaintext allowed)\n"
	printf "  decisions: %d logged by the milter (warm-up included), %d not accept\n", dec, rej
	printf "  %-16s %8s %10s %16s\n", "", "msgs/s", "seconds", "(smtpd accepted)"
	printf "  %-16s %8.1f %10.2f %15.2fs\n", "without milter", r0, t0, a0
	printf "  %-16s %8.1f %10.2f %15.2fs\n", "with milter", r1, t1, a1
	printf "  ratio with/without: %.2f (%.0f%% of Postfix alone)\n", r1 / r0, 100 * r1 / r0
}'
E2E_FINISHED=1
