#!/bin/sh
# classify-vs-grep.sh: compare the trigger-word scan (package classify) with
# grep -F looking for the same words in the same 15 MB of plain text.
#
#   bench/classify-vs-grep.sh [SIZE_MB] [RUNS]
#
# Prints the rate of grep, of the `nzsecure-milter classify` subcommand on
# the same file (best of RUNS, process start and file reading included), and
# of BenchmarkClassify/text (the library on a similar message, in 64 KB
# chunks), and the ratios. The target for plain text is at least 1/4 of
# grep's rate.
set -eu

size_mb=${1:-15}
runs=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

cd "$root"
cli=$tmp/nzsecure-milter
if ! go build -o "$cli" ./cmd/nzsecure-milter; then
	echo "warning: the binary does not build; timing the library benchmark only" >&2
	cli=
fi

# A message: a header block, then plain prose with the odd bracket, CRLF
# line ends, and one marking at the very end.
msg=$tmp/message.eml
awk -v size=$((size_mb * 1024 * 1024)) 'BEGIN {
	printf "From: Alice <alice@agency.govt.nz>\r\nTo: Bob <bob@example.govt.nz>\r\n"
	printf "Subject: benchmark\r\nMIME-Version: 1.0\r\n"
	printf "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	l[0] = "The committee met on Tuesday to discuss the budget (see item 4 [draft]) and"
	l[1] = "agreed that the figures in appendix B should be checked again before Friday."
	l[2] = "Action: Jane to circulate the minutes; Bob to ring the ministry about [the] report."
	n = 0
	for (i = 0; n < size; i++) {
		printf "%s\r\n", l[i % 3]
		n += length(l[i % 3]) + 2
	}
	printf "[SECRET]\r\n"
}' >"$msg"
bytes=$(wc -c <"$msg")

now() { date +%s%N; }

# best_ns CMD...: the fastest of $runs runs, in nanoseconds.
best_ns() {
	best=
	i=0
	while [ $i -lt "$runs" ]; do
		t0=$(now)
		"$@" >/dev/null
		t1=$(now)
		d=$((t1 - t0))
		if [ -z "$best" ] || [ $d -lt "$best" ]; then best=$d; fi
		i=$((i + 1))
	done
	echo "$best"
}

rate() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", (b / 1e6) / (ns / 1e9) }'; }

grep_ns=$(LC_ALL=C best_ns grep -c -F \
	-e '[IN-CONFIDENCE' -e '[SENSITIVE' -e '[RESTRICTED' -e '[CONFIDENTIAL' \
	-e '[SECRET' -e '[TOP SECRET' -e '[UNCLASSIFIED' -e '[RSVPDR' "$msg" || true)
# grep -c exits 1 when nothing matches; the message has one match.
grep_rate=$(rate "$bytes" "$grep_ns")

if [ -n "$cli" ]; then
	cli_ns=$(best_ns "$cli" classify "$msg")
	cli_rate=$(rate "$bytes" "$cli_ns")
	"$cli" classify "$msg" | grep -q '"classification": "SECRET"' || {
		echo "classify did not find the marking" >&2
		exit 1
	}
fi

bench_rate=$(go test -run '^$' -bench 'BenchmarkClassify/text$' -benchtime 20x ./classify/ |
	awk '/MB\/s/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "MB/s") print $i }')

echo "data:                $((bytes / 1024 / 1024)) MB plain text ($bytes bytes)"
echo "grep -F (8 words):   $grep_rate MB/s"
if [ -n "$cli" ]; then
	echo "classify subcommand: $cli_rate MB/s  (ratio to grep $(awk -v a="$cli_rate" -v b="$grep_rate" 'BEGIN { printf "%.2f", a / b }'))"
fi
echo "BenchmarkClassify:   $bench_rate MB/s  (ratio to grep $(awk -v a="$bench_rate" -v b="$grep_rate" 'BEGIN { printf "%.2f", a / b }'))"
echo "target:              ratio >= 0.25"
