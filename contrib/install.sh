#!/usr/bin/env bash
# Installs nzsecure-milter from this source tree and starts it on the default
# policy (profile sge, listening on inet:127.0.0.1:8891).
#
#   sudo bash contrib/install.sh
#
# DESTDIR=/some/root installs into a staging root and starts nothing (used by
# the tests and by packaging). NO_START=1 installs without starting.
# Needs Go >= 1.21 on PATH or at /usr/local/go (newer toolchains named by
# go.mod are fetched through the Go module proxy); installs Debian's golang-go
# when no Go is found.
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR=${DESTDIR:-}
export PATH=$PATH:/usr/local/go/bin

if ! command -v go >/dev/null; then
  echo "install: no Go toolchain found; installing Debian's golang-go"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go
fi
# Go 1.21 or later fetches the toolchain go.mod names through the module
# proxy (GOTOOLCHAIN=auto); older ones cannot build this module.
minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if ! [[ $minor =~ ^[0-9]+$ ]] || ((minor < 21)); then
  echo "install: $(go env GOVERSION) is too old: Go 1.21 or later is needed (it fetches the Go release go.mod asks for)." >&2
  echo "install: on Debian bookworm: apt-get install -t bookworm-backports golang-go, or Go from go.dev at /usr/local/go" >&2
  exit 1
fi
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

echo "install: building"
version=$(git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o bin/nzsecure-milter ./cmd/nzsecure-milter

install -D -m 0755 bin/nzsecure-milter "$DESTDIR/usr/sbin/nzsecure-milter"
if [ -e "$DESTDIR/etc/nzsecure-milter/policy.toml" ]; then
  echo "install: keeping the existing /etc/nzsecure-milter/policy.toml"
else
  install -D -m 0644 contrib/nzsecure-milter.toml "$DESTDIR/etc/nzsecure-milter/policy.toml"
fi
install -D -m 0644 contrib/systemd/nzsecure-milter.service "$DESTDIR/lib/systemd/system/nzsecure-milter.service"
install -D -m 0644 README.md "$DESTDIR/usr/share/doc/nzsecure-milter/README.md"
install -D -m 0644 contrib/postfix/main.cf.snippet "$DESTDIR/usr/share/doc/nzsecure-milter/postfix/main.cf.snippet"
install -D -m 0644 contrib/postfix/master.cf.snippet "$DESTDIR/usr/share/doc/nzsecure-milter/postfix/master.cf.snippet"
"$DESTDIR/usr/sbin/nzsecure-milter" lint "$DESTDIR/etc/nzsecure-milter/policy.toml"

if [ -n "$DESTDIR" ] || [ "${NO_START:-}" = 1 ]; then
  echo "install: installed under ${DESTDIR:-/}; not started"
  exit 0
fi

id nzsecure-milter >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nzsecure-milter
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now nzsecure-milter
  systemctl --no-pager status nzsecure-milter | head -5
else
  # No systemd (a container): run it in the background, logging to a file.
  echo "install: systemd is not running; starting the milter in the background (log: /var/log/nzsecure-milter.log)"
  nohup setpriv --reuid=nzsecure-milter --regid=nzsecure-milter --init-groups \
    /usr/sbin/nzsecure-milter serve --policy /etc/nzsecure-milter/policy.toml >>/var/log/nzsecure-milter.log 2>&1 &
  sleep 1
  kill -0 $! && echo "install: nzsecure-milter running as pid $!"
fi
echo "install: now set 'domains' in /etc/nzsecure-milter/policy.toml, check it with"
echo "  nzsecure-milter lint /etc/nzsecure-milter/policy.toml"
echo "reload it (systemctl reload nzsecure-milter, or kill -HUP), and attach Postfix:"
echo "  see /usr/share/doc/nzsecure-milter/postfix/main.cf.snippet"
