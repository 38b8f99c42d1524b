#!/usr/bin/env bash
# Runs every fuzz target of the module briefly (FUZZTIME, default 3000
# executions each):
# the parsers (MIME walk, RTF, TNEF, UTF-7, HTML, SPF records and macros,
# DMARC records, Authentication-Results, policy files, headers, netstrings,
# MTA-STS policies, warnings) must not panic on new inputs, not only on
# their seeds (which `go test` already runs). Part of `make test`.
#
# The budget is a count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report "context deadline exceeded" at the boundary with no
# failing input (golang/go#75804, fixed in Go 1.27); a count has no deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3000x}
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
