#!/usr/bin/env bash
# Installs nzsecure-milter from this source tree and starts it on the
# default policy (profile sge, listening on inet:127.0.0.1:8891).
#
#   sudo bash contrib/install.sh
#
# On Debian (dpkg present) it builds the .deb (make package, nfpm fetched
# with `go install`) and installs it with apt-get: an upgrade replaces the
# running milter in place (the package restarts it under systemd; the
# socket unit holds the listening socket meanwhile) and an edited
# /etc/nzsecure-milter/policy.toml is kept (a conffile). Elsewhere it copies
# the files and enables the systemd units.
#
# Without systemd (a container) it runs the milter in the background as the
# nzsecure-milter user, after stopping the one an earlier run started
# (/run/nzsecure-milter.pid), and fails unless the new one is listening.
#
# DESTDIR=/some/root copies the files into a staging root and starts nothing
# (used by the tests). NO_START=1 installs without starting.
#
# Needs Go 1.21 or later on PATH or at /usr/local/go: Go 1.21+ fetches the
# exact release go.mod names through the Go module proxy. Debian 12's
# golang-go is 1.19, too old; get Go from https://go.dev/dl/ :
#   curl -LO https://go.dev/dl/go1.22.12.linux-amd64.tar.gz
#   rm -rf /usr/local/go && tar -C /usr/local -xzf go1.22.12.linux-amd64.tar.gz
# or from bookworm-backports: apt-get install -t bookworm-backports golang-go
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR=${DESTDIR:-}
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
LISTEN=127.0.0.1:8891
PIDFILE=/run/nzsecure-milter.pid

die() {
	echo "install: $*" >&2
	exit 1
}

if ! command -v go >/dev/null; then
	die "no Go toolchain found (Go 1.21 or later is needed; see the top of contrib/install.sh: Go from go.dev at /usr/local/go, or apt-get install -t bookworm-backports golang-go)"
fi
# Go 1.21 or later fetches the toolchain go.mod names through the module
# proxy (GOTOOLCHAIN=auto); older ones cannot build this module.
minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if ! [[ $minor =~ ^[0-9]+$ ]] || ((minor < 21)); then
	echo "install: $(go env GOVERSION) is too old: Go 1.21 or later is needed (it fetches the Go release go.mod asks for)." >&2
	die "on Debian bookworm: apt-get install -t bookworm-backports golang-go, or Go from https://go.dev/dl/ at /usr/local/go"
fi
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

# listening: something listens on $LISTEN (read from /proc: no probe
# connection reaches the milter).
listening() {
	local hex
	hex=$(printf '%04X' "${LISTEN##*:}")
	awk -v p="$hex" 'FNR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == p) f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

systemd_running() { [[ -d /run/systemd/system ]]; }

# check_started UNIT: fail loudly unless systemd has the unit active.
check_started() {
	local i
	for ((i = 0; i < 50; i++)); do
		systemctl is-active --quiet "$1" && return 0
		sleep 0.2
	done
	systemctl --no-pager status "$1" | head -n 20 >&2 || true
	die "$1 did not start (journalctl -u $1)"
}

copy_files() {
	echo "install: building"
	version=$(sh contrib/packaging/version.sh 2>/dev/null || echo 0.1.0-dev)
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o bin/nzsecure-milter ./cmd/nzsecure-milter
	install -D -m 0755 bin/nzsecure-milter "$DESTDIR/usr/sbin/nzsecure-milter.new"
	mv -f "$DESTDIR/usr/sbin/nzsecure-milter.new" "$DESTDIR/usr/sbin/nzsecure-milter"
	if [ -e "$DESTDIR/etc/nzsecure-milter/policy.toml" ]; then
		echo "install: keeping the existing /etc/nzsecure-milter/policy.toml"
	else
		install -D -m 0644 contrib/nzsecure-milter.toml "$DESTDIR/etc/nzsecure-milter/policy.toml"
	fi
	local u
	for u in nzsecure-milter.service nzsecure-milter.socket nzsecure-milter-tlspolicy.service nzsecure-milter-tlspolicy.socket; do
		install -D -m 0644 "contrib/systemd/$u" "$DESTDIR/lib/systemd/system/$u"
	done
	install -D -m 0644 README.md "$DESTDIR/usr/share/doc/nzsecure-milter/README.md"
	install -D -m 0644 contrib/postfix/main.cf.snippet "$DESTDIR/usr/share/doc/nzsecure-milter/postfix/main.cf.snippet"
	install -D -m 0644 contrib/postfix/master.cf.snippet "$DESTDIR/usr/share/doc/nzsecure-milter/postfix/master.cf.snippet"
	install -D -m 0644 contrib/sendmail/sendmail.mc.snippet "$DESTDIR/usr/share/doc/nzsecure-milter/sendmail/sendmail.mc.snippet"
	"$DESTDIR/usr/sbin/nzsecure-milter" lint "$DESTDIR/etc/nzsecure-milter/policy.toml"
}

if [ -n "$DESTDIR" ]; then
	copy_files
	echo "install: installed under $DESTDIR; not started"
	exit 0
fi
[[ $(id -u) == 0 ]] || die "run as root (sudo bash contrib/install.sh)"

if command -v dpkg >/dev/null && command -v apt-get >/dev/null; then
	# The Debian package: user, directories, units and upgrades handled by
	# its maintainer scripts.
	missing=()
	for c in make git; do command -v "$c" >/dev/null || missing+=("$c"); done
	if ((${#missing[@]})); then
		echo "install: apt-get install ${missing[*]} (to build the package)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
	echo "install: building the .deb (make package)"
	make --no-print-directory nfpm-install >/dev/null
	make --no-print-directory package PKG_FORMATS=deb
	deb=$(ls dist/nzsecure-milter_*.deb)
	echo "install: apt-get install ./$deb"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "./$deb"
else
	copy_files
	id nzsecure-milter >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /var/lib/nzsecure-milter \
		--shell /usr/sbin/nologin nzsecure-milter
	getent group postdrop >/dev/null && usermod -a -G postdrop nzsecure-milter
	install -d -o nzsecure-milter -g nzsecure-milter -m 0750 /var/lib/nzsecure-milter
	if systemd_running; then
		systemctl daemon-reload
		systemctl enable nzsecure-milter.socket nzsecure-milter.service
		systemctl start nzsecure-milter.socket
		systemctl restart nzsecure-milter.service
	fi
fi

if [ "${NO_START:-}" = 1 ]; then
	echo "install: installed; not started (NO_START=1)"
	exit 0
fi

if systemd_running; then
	# The package (or the lines above) started or restarted it.
	systemctl start nzsecure-milter.socket nzsecure-milter.service
	check_started nzsecure-milter.socket
	check_started nzsecure-milter.service
	systemctl --no-pager status nzsecure-milter | head -5
else
	# No systemd (a container): one milter in the background, logging to a
	# file. An earlier one is stopped first (an upgrade), so the new one
	# does not die on "address already in use". An invalid policy leaves
	# the running one alone.
	/usr/sbin/nzsecure-milter lint /etc/nzsecure-milter/policy.toml || die "the policy is not valid; nothing restarted"
	if [[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		old=$(cat "$PIDFILE")
		echo "install: stopping the running milter (pid $old)"
		kill -TERM "$old"
		for ((i = 0; i < 150; i++)); do
			kill -0 "$old" 2>/dev/null || break
			sleep 0.2
		done
		! kill -0 "$old" 2>/dev/null || die "the running milter (pid $old) did not stop within 30s"
	fi
	if listening; then
		die "$LISTEN is in use by another process (not a milter this script started); stop it first"
	fi
	echo "install: systemd is not running; starting the milter in the background (log: /var/log/nzsecure-milter.log)"
	groups=nzsecure-milter
	getent group postdrop >/dev/null && groups=postdrop
	nohup setpriv --reuid=nzsecure-milter --regid=nzsecure-milter --groups="$groups" --no-new-privs \
		/usr/sbin/nzsecure-milter serve --policy /etc/nzsecure-milter/policy.toml >>/var/log/nzsecure-milter.log 2>&1 &
	pid=$!
	echo "$pid" >"$PIDFILE"
	for ((i = 0; i < 50; i++)); do
		listening && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if ! kill -0 "$pid" 2>/dev/null || ! listening; then
		tail -n 20 /var/log/nzsecure-milter.log >&2
		rm -f "$PIDFILE"
		die "the milter did not start listening on $LISTEN (log above: /var/log/nzsecure-milter.log)"
	fi
	echo "install: nzsecure-milter running as pid $pid, listening on $LISTEN"
fi
echo "install: now set 'domains' in /etc/nzsecure-milter/policy.toml, check it with"
echo "  nzsecure-milter lint /etc/nzsecure-milter/policy.toml"
echo "reload it (systemctl reload nzsecure-milter, or kill -HUP), and attach Postfix"
echo "(README.md, \"Attaching it to Postfix\"; /usr/share/doc/nzsecure-milter/postfix/main.cf.snippet)."
