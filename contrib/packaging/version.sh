#!/bin/sh
# Prints the package version, valid for Debian (and RPM), from git:
#   tag v1.2.3                      -> 1.2.3
#   4 commits after v1.2.3          -> 1.2.3+4.gabc1234
#   no tag yet (base from cmd/nzsecure-milter/common.go's 0.1.0-dev)
#                                   -> 0.1.0~git20261201091010.abc1234
# (~ sorts before the 0.1.0 release; the commit time orders builds), with
# ".dirty" appended when the work tree has changes.
set -eu
cd "$(dirname "$0")/../.."
base=$(sed -nE 's/^var version = "([0-9]+\.[0-9]+\.[0-9]+).*"/\1/p' cmd/nzsecure-milter/common.go)
base=${base:-0.1.0}
# Not a git checkout (a source tarball): the base version.
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	printf '%s\n' "$base"
	exit 0
fi
dirty=
if ! git diff --quiet HEAD -- 2>/dev/null; then dirty=.dirty; fi
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	v=${d#v}
	# 1.2.3-4-gabc1234 -> 1.2.3+4.gabc1234
	v=$(printf '%s' "$v" | sed -E 's/-([0-9]+)-(g[0-9a-f]+)$/+\1.\2/')
	printf '%s%s\n' "$v" "$dirty"
	exit 0
fi
when=$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
hash=$(git rev-parse --short=7 HEAD)
printf '%s~git%s.%s%s\n' "$base" "$when" "$hash" "$dirty"
