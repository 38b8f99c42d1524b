package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// Socket activation (sd_listen_fds(3)): systemd, or any holder of the
// listening socket such as systemd-socket-activate, passes it as fd 3 and
// sets LISTEN_PID to our pid and LISTEN_FDS to the number of sockets. The
// socket then outlives each milter process, so connections arriving during
// a restart or an upgrade wait in its backlog instead of being refused
// (issue 16: 7.7% of a soak's messages were tempfailed without it).

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// ErrActivation is wrapped by every socket-activation error.
var ErrActivation = errors.New("socket activation")

// activationCount reads LISTEN_PID and LISTEN_FDS as sd_listen_fds does:
// 0 when they are absent or meant for another process (LISTEN_PID names a
// different pid, e.g. the variables leaked into a child); an error when
// they are present for us but malformed, because guessing would mean
// listening on a socket the administrator did not configure.
func activationCount(getenv func(string) string, pid int) (int, error) {
	ps, fs := getenv("LISTEN_PID"), getenv("LISTEN_FDS")
	if ps == "" && fs == "" {
		return 0, nil
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p <= 0 {
		return 0, fmt.Errorf("%w: LISTEN_PID=%q is not a pid", ErrActivation, ps)
	}
	if p != pid {
		return 0, nil
	}
	n, err := strconv.Atoi(fs)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: LISTEN_FDS=%q is not a count", ErrActivation, fs)
	}
	if n > 64 {
		return 0, fmt.Errorf("%w: LISTEN_FDS=%d: too many descriptors", ErrActivation, n)
	}
	return n, nil
}

// activatedListener returns the listening socket passed by socket
// activation, or nil when there is none. Exactly one socket is expected;
// the variables are removed from the environment so that the commands the
// milter runs (sendmail for notices) do not see them.
func activatedListener() (net.Listener, error) {
	n, err := activationCount(os.Getenv, os.Getpid())
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if err != nil || n == 0 {
		return nil, err
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: %d sockets passed, want exactly 1 (one ListenStream= in the .socket unit)", ErrActivation, n)
	}
	// Not inherited by the commands we start.
	syscall.CloseOnExec(listenFDsStart)
	f := os.NewFile(listenFDsStart, "systemd-socket")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("%w: fd %d is not a listening stream socket: %w", ErrActivation, listenFDsStart, err)
	}
	return ln, nil
}

// listenOrActivated returns the socket-activated listener when there is
// one (and says so in its spec), else listens on spec itself.
func listenOrActivated(spec string) (net.Listener, string, error) {
	ln, err := activatedListener()
	if err != nil {
		return nil, spec, err
	}
	if ln != nil {
		return ln, "systemd:" + ln.Addr().Network() + ":" + ln.Addr().String(), nil
	}
	ln, err = listenSpec(spec)
	return ln, spec, err
}
