#!/bin/sh
# smime-vs-openssl.sh: domain S/MIME throughput of package smime beside
# `openssl cms` on the same inputs, in the same run (issue 14).
#
#   bench/smime-vs-openssl.sh [RUNS]
#
# For 10 KB and 1 MB messages, prints operations per second for
# sign+encrypt (outbound) and decrypt+verify (inbound): BenchmarkSignEncrypt
# and BenchmarkDecryptVerify, and openssl cms doing the same two steps
# (process start included, as a gateway calling it would pay), and the
# ratio ours/openssl. The goal is a ratio of at least 1.
set -eu

runs=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
fx=$root/testdata/smime
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$root"

gen() { # SIZE FILE
	awk -v size="$1" 'BEGIN {
		printf "Content-Type: text/plain; charset=us-ascii\r\n\r\n"; n = 45
		while (n < size) { printf "The committee met on Tuesday to discuss the budget and agreed on items 1-4.\r\n"; n += 77 }
	}' >"$2"
}
now_ns() { date +%s%N; }

go test -run '^$' -bench 'SignEncrypt|DecryptVerify' -benchtime "${runs}x" ./smime >"$tmp/go.txt"

for size in 10240 1048576; do
	label=$((size / 1024))KB
	gen "$size" "$tmp/in.txt"
	t0=$(now_ns)
	i=0
	while [ $i -lt "$runs" ]; do
		openssl cms -sign -nodetach -binary -in "$tmp/in.txt" -signer "$fx/agency-a-new.crt" -inkey "$fx/agency-a-new.key" -outform DER -out "$tmp/s.der"
		openssl cms -encrypt -binary -aes256 -inform DER -in "$tmp/s.der" -outform DER -out "$tmp/e.der" "$fx/agency-b.crt"
		i=$((i + 1))
	done
	t1=$(now_ns)
	i=0
	while [ $i -lt "$runs" ]; do
		openssl cms -decrypt -binary -inform DER -in "$tmp/e.der" -recip "$fx/agency-b.crt" -inkey "$fx/agency-b.key" -out "$tmp/d.der"
		openssl cms -verify -binary -inform DER -in "$tmp/d.der" -CAfile "$fx/ca.crt" -purpose smimesign -out /dev/null 2>/dev/null
		i=$((i + 1))
	done
	t2=$(now_ns)
	for op in SignEncrypt DecryptVerify; do
		ns=$(awk -v b="Benchmark$op/$label" '$1 ~ "^"b"(-[0-9]+)?$" { print $3 }' "$tmp/go.txt")
		if [ "$op" = SignEncrypt ]; then o=$(((t1 - t0) / runs)); else o=$(((t2 - t1) / runs)); fi
		awk -v op="$op" -v l="$label" -v g="$ns" -v o="$o" 'BEGIN {
			printf "%-14s %-7s smime %8.1f op/s   openssl cms %8.1f op/s   ratio %.2f\n", op, l, 1e9 / g, 1e9 / o, o / g }'
	done
done
