#!/usr/bin/env bash
# tests/e2e/install.sh: the README's first command, contrib/install.sh,
# installs a working milter: run with DESTDIR (a staging root, nothing
# started), it must leave the binary, the default policy (valid, the same
# text as contrib/nzsecure-milter.toml, i.e. the built-in default), the
# systemd unit that lints before starting, and the Postfix snippets; the
# installed binary must run on the installed policy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init install
ROOT=$WORK/root
if DESTDIR=$ROOT bash "$REPO_ROOT/contrib/install.sh" >"$WORK/install.log" 2>&1; then
	pass "install.sh with DESTDIR finished"
else
	fail "install.sh with DESTDIR finished" "$WORK/install.log"
fi
for f in usr/sbin/nzsecure-milter etc/nzsecure-milter/policy.toml lib/systemd/system/nzsecure-milter.service \
	usr/share/doc/nzsecure-milter/README.md usr/share/doc/nzsecure-milter/postfix/main.cf.snippet; do
	check "installed /$f" test -s "$ROOT/$f"
done
check "the installed policy is the built-in default (contrib/nzsecure-milter.toml)" \
	cmp -s "$ROOT/etc/nzsecure-milter/policy.toml" "$REPO_ROOT/contrib/nzsecure-milter.toml"
"$ROOT/usr/sbin/nzsecure-milter" lint "$ROOT/etc/nzsecure-milter/policy.toml" >"$WORK/lint.out" 2>&1 || true
assert_contains "$WORK/lint.out" 'valid: profile sge' "the installed binary lints the installed policy as valid"
"$ROOT/usr/sbin/nzsecure-milter" version >"$WORK/version.out" 2>&1 || true
assert_contains "$WORK/version.out" '^nzsecure-milter ' "the installed binary prints its version"
assert_contains "$ROOT/lib/systemd/system/nzsecure-milter.service" '^ExecStartPre=/usr/sbin/nzsecure-milter lint ' \
	"the systemd unit refuses to start on an invalid policy (ExecStartPre lint)"
assert_contains "$ROOT/lib/systemd/system/nzsecure-milter.service" '^ExecReload=/bin/kill -HUP ' "the systemd unit reloads with SIGHUP"
# A second run keeps an edited policy.
echo '# edited by the administrator' >>"$ROOT/etc/nzsecure-milter/policy.toml"
DESTDIR=$ROOT bash "$REPO_ROOT/contrib/install.sh" >"$WORK/install2.log" 2>&1 || true
assert_contains "$ROOT/etc/nzsecure-milter/policy.toml" '^# edited by the administrator$' "a second install keeps the administrator's policy"
e2e_finish
