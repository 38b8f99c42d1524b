#!/usr/bin/env bash
# bench/dkim-vs-opendkim.sh: DKIM verification rate of package auth/dkim
# against OpenDKIM, on the same messages (10 KB and 1 MB, each signed once
# with RSA-2048 or Ed25519 by auth/dkim).
#
#   bash bench/dkim-vs-opendkim.sh [-n N]     (or BENCH_N; default 100)
#
# For each message it prints verifications per second of:
#   ours       N verifications in one process (the auth/dkim test binary
#              running BenchmarkVerifyBenchDir; key lookups from memory)
#   opendkim   `opendkim -t f,f,...`: the OpenDKIM filter's test mode
#              verifying N copies in one process (libopendkim; keys from a
#              TestPublicKeys file, no DNS)
#   testmsg    N runs of `opendkim-testmsg`, one process per message: it
#              pays a process start (and a DNS query) per message, so this
#              rate mostly measures process start-up. It asks the system
#              resolver, so it runs in a private mount namespace whose
#              /etc/resolv.conf points at a DNS server serving the keys on
#              127.0.83.53:53 (needs root and unshare; skipped otherwise).
#
# Needs Go and the Debian packages opendkim and opendkim-tools. Not part of
# `make test`.
set -euo pipefail

N=${BENCH_N:-100}
while getopts "n:h" opt; do
	case $opt in
	n) N=$OPTARG ;;
	*)
		sed -n '2,22p' "$0"
		exit 2
		;;
	esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
dns_pid=
cleanup() {
	if [[ -n $dns_pid ]]; then
		touch "$work/data/dns.stop" 2>/dev/null || true
		wait "$dns_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

find_bin() {
	command -v "$1" 2>/dev/null && return
	for d in /usr/sbin /usr/local/sbin /sbin; do
		[[ -x $d/$1 ]] && { echo "$d/$1"; return; }
	done
	return 1
}
opendkim=$(find_bin opendkim) || { echo "opendkim not found: apt-get install opendkim" >&2; exit 1; }
testmsg=$(find_bin opendkim-testmsg) || { echo "opendkim-testmsg not found: apt-get install opendkim-tools" >&2; exit 1; }

cd "$root"
echo "building the auth/dkim test binary..." >&2
go test -c -o "$work/dkim.test" ./auth/dkim
data=$work/data
mkdir -p "$data"
export NZSM_DKIM_BENCH_DIR=$data NZSM_DKIM_BENCH_DNS=127.0.83.53:53
"$work/dkim.test" -test.run '^TestBenchSetup$' >/dev/null

cat >"$data/opendkim.conf" <<EOF
Syslog no
Mode v
TestPublicKeys $data/keys
EOF

now() { date +%s%N; }
rate() { awk -v n="$1" -v ns="$2" 'BEGIN { printf "%.1f", n / (ns / 1e9) }'; }

# opendkim-testmsg needs DNS: serve the keys if we can.
can_testmsg=no
if [[ $(id -u) == 0 ]] && command -v unshare >/dev/null &&
	unshare -m sh -c "mount --bind '$data/resolv.conf' /etc/resolv.conf" 2>/dev/null; then
	"$work/dkim.test" -test.run '^TestBenchServeDNS$' -test.timeout 15m >"$work/dns.log" 2>&1 &
	dns_pid=$!
	for _ in $(seq 100); do
		[[ -e $data/dns.ready ]] && break
		sleep 0.1
	done
	if [[ -e $data/dns.ready ]]; then
		can_testmsg=yes
	else
		echo "warning: the test DNS server did not start:" >&2
		cat "$work/dns.log" >&2
	fi
else
	echo "note: opendkim-testmsg is skipped (needs root and unshare for a private resolv.conf)" >&2
fi

printf '%-32s %12s %12s %12s\n' "message ($N verifications)" "ours/s" "opendkim/s" "testmsg/s"
for f in "$data"/msg-*.eml; do
	name=$(basename "$f" .eml)

	ours=$(NZSM_DKIM_BENCH_MSG=$(basename "$f") "$work/dkim.test" -test.run '^$' \
		-test.bench '^BenchmarkVerifyBenchDir$' -test.benchtime "${N}x" |
		awk '/^BenchmarkVerifyBenchDir/ { for (i = 1; i <= NF; i++) if ($i == "ops/s") print $(i - 1) }')

	# OpenDKIM must agree that the message passes before we time it.
	if ! "$opendkim" -vv -x "$data/opendkim.conf" -t "$f" 2>/dev/null | grep -q 'dkim=pass'; then
		echo "OpenDKIM does not verify $name" >&2
		exit 1
	fi
	list=$(for _ in $(seq "$N"); do printf '%s,' "$f"; done)
	t0=$(now)
	"$opendkim" -x "$data/opendkim.conf" -t "${list%,}" >"$work/opendkim.out" 2>&1
	t1=$(now)
	if grep -q 'failed' "$work/opendkim.out"; then
		echo "OpenDKIM failed a verification of $name:" >&2
		head "$work/opendkim.out" >&2
		exit 1
	fi
	odk=$(rate "$N" $((t1 - t0)))

	tm=-
	if [[ $can_testmsg == yes ]]; then
		t0=$(now)
		unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf || exit 1
			i=0
			while [ $i -lt "$2" ]; do "$3" <"$4" || exit 1; i=$((i + 1)); done' \
			sh "$data/resolv.conf" "$N" "$testmsg" "$f" || {
			echo "opendkim-testmsg failed on $name" >&2
			exit 1
		}
		t1=$(now)
		tm=$(rate "$N" $((t1 - t0)))
	fi
	printf '%-32s %12s %12s %12s\n' "$name" "$ours" "$odk" "$tm"
done
cat <<EOF

ours: auth/dkim in one process (go-msgauth underneath), keys from memory.
opendkim: the OpenDKIM filter's test mode, N files in one process.
testmsg: one opendkim-testmsg process per message: its rate is dominated by
process start-up and a DNS query per message, not by the verification.
Machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg).
EOF
