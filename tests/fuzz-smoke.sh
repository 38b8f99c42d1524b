#!/usr/bin/env bash
# Runs every fuzz target of the module briefly (FUZZTIME, default 2s each):
# the parsers (MIME walk, RTF, TNEF, UTF-7, HTML, SPF records and macros,
# DMARC records, Authentication-Results, policy files, headers, netstrings,
# MTA-STS policies, warnings) must not panic on new inputs, not only on
# their seeds (which `go test` already runs). Part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-2s}
passed=0
failed=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/fuzz-smoke.$$ 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL: $pkg $name"
		tail -20 /tmp/fuzz-smoke.$$
	fi
done < <(grep -rHoE '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' --include='*_test.go' . |
	sed -E 's#^\./##; s#:func (Fuzz[A-Za-z0-9_]+).*#:\1#' | sort)
rm -f /tmp/fuzz-smoke.$$
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
