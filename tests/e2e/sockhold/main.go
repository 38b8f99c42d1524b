// Command sockhold plays systemd's part for socket activation where systemd
// is not running (a CI container): it holds one listening TCP socket and
// runs the service with it as fd 3 (LISTEN_FDS=1, LISTEN_PID set to the
// service's pid, as sd_listen_fds(3) wants), starting it again whenever it
// exits, as `systemctl restart` would. The current service's pid is kept in
// the -pidfile, so a test restarts the service by sending it SIGTERM.
// Connections arriving while no service runs wait in the socket's backlog.
//
//	sockhold -listen 127.0.0.1:PORT -pidfile FILE -- COMMAND [ARGS...]
//
// SIGTERM or SIGINT to sockhold stops the service and then sockhold.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "", "TCP `HOST:PORT` to listen on")
	pidfile := flag.String("pidfile", "", "`FILE` holding the running service's pid")
	restartDelay := flag.Duration("restart-sec", 200*time.Millisecond, "pause before a restart (the unit's RestartSec)")
	flag.Parse()
	if *listen == "" || *pidfile == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockhold:", err)
		os.Exit(1)
	}
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockhold:", err)
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	// The service's pid is known only once it runs: a shell exports its own
	// pid and execs the service, which keeps that pid.
	args := append([]string{"-c", `LISTEN_PID=$$; LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; exec "$@"`, "sh"}, flag.Args()...)
	for starts := 1; ; starts++ {
		cmd := exec.Command("/bin/sh", args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.ExtraFiles = []*os.File{lf} // fd 3
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "sockhold:", err)
			os.Exit(1)
		}
		os.WriteFile(*pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
		fmt.Fprintf(os.Stderr, "sockhold: start %d: pid %d\n", starts, cmd.Process.Pid)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			fmt.Fprintf(os.Stderr, "sockhold: pid %d exited (%v); restarting\n", cmd.Process.Pid, err)
			time.Sleep(*restartDelay)
		case <-sigs:
			cmd.Process.Signal(syscall.SIGTERM)
			<-done
			os.Remove(*pidfile)
			os.Exit(0)
		}
	}
}
