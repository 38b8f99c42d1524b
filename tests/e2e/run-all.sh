#!/usr/bin/env bash
# tests/e2e/run-all.sh: run every end-to-end scenario script.
#
# Builds nzsecure-milter and tests/e2e/dnsd once, runs each tests/e2e/*.sh
# except lib.sh and this file (in name order, one after the other: each
# starts its own private Postfix), adds up their "e2e: N passed, M failed"
# lines and prints the total as the last line, in the same form. Exits
# non-zero if a script failed or printed no summary, if anything failed, or
# if nothing passed.
#
# Environment: E2E_ONLY="foundation other" runs only those scripts.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$E2E_DIR/lib.sh"
E2E_NAME=run-all

mkdir -p "$E2E_WORK_ROOT"
if ! e2e_build; then
	echo "FAIL: go build ./cmd/nzsecure-milter ./tests/e2e/dnsd (see above)"
	echo "e2e: 0 passed, 1 failed"
	exit 1
fi

total_pass=0
total_fail=0
bad_scripts=()
start=$SECONDS
for script in "$E2E_DIR"/*.sh; do
	name=$(basename "$script" .sh)
	case $name in lib | run-all) continue ;; esac
	if [[ -n ${E2E_ONLY:-} && " $E2E_ONLY " != *" $name "* ]]; then continue; fi
	echo "=== e2e $name"
	out=$E2E_WORK_ROOT/$name.out
	rc=0
	# Unbounded only in theory: every wait inside is bounded; the timeout
	# is a last resort against a wedged script.
	timeout --kill-after=10 "${E2E_SCRIPT_TIMEOUT:-240}" bash "$script" 2>&1 | tee "$out" || rc=$?
	summary=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1 || true)
	if [[ -z $summary ]]; then
		echo "FAIL: $name printed no summary (exit status $rc)"
		total_fail=$((total_fail + 1))
		bad_scripts+=("$name")
		continue
	fi
	p=$(awk '{print $2}' <<<"$summary")
	f=$(awk '{print $4}' <<<"$summary")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if ((rc != 0)); then
		bad_scripts+=("$name")
		# A script that exits non-zero must count as a failure even if its
		# own summary does not show one.
		((f > 0)) || total_fail=$((total_fail + 1))
	fi
done

if ((${#bad_scripts[@]})); then
	echo "e2e: failing scripts: ${bad_scripts[*]} (logs under ${E2E_WORK_ROOT#"$REPO_ROOT"/}/)"
fi
echo "=== e2e: all scripts took $((SECONDS - start))s"
echo "e2e: $total_pass passed, $total_fail failed"
if ((total_fail > 0 || total_pass == 0 || ${#bad_scripts[@]} > 0)); then
	exit 1
fi
