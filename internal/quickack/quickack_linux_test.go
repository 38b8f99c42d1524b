//go:build linux

package quickack

import (
	"io"
	"net"
	"path/filepath"
	"testing"
)

// serveOne accepts one connection on ln and hands it to the test.
func serveOne(t *testing.T, ln net.Listener) (client net.Conn, server net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func TestTCPReadsRearmQuickAck(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ln := Listener(raw)
	if _, ok := ln.(listener); !ok {
		t.Fatalf("Listener(tcp) = %T, want the quick-ACK wrapper", ln)
	}
	client, server := serveOne(t, ln)
	qc, ok := server.(*conn)
	if !ok {
		t.Fatalf("accepted %T, want *conn", server)
	}
	// An exchange in both directions puts the kernel in its interactive
	// (delayed-ACK) mode; each read must leave quick-ACK mode on.
	for i := 0; i < 3; i++ {
		if _, err := client.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(server, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != "ping" {
			t.Fatalf("read %q, want the bytes written", buf)
		}
		on, err := quickAckOn(qc.TCPConn)
		if err != nil {
			t.Fatal(err)
		}
		if !on {
			t.Fatalf("round %d: TCP_QUICKACK off after a read", i)
		}
		if _, err := server.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnixListenerUnchanged(t *testing.T) {
	raw, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if ln := Listener(raw); ln != raw {
		t.Fatalf("Listener(unix) = %T, want the listener unchanged", ln)
	}
}
