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

// The buffer must hand back every byte in order, across small writes and
// reads larger than the buffer, and pass EOF through.
func TestBufferedReadsKeepTheStream(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	client, server := serveOne(t, Listener(raw))
	var want []byte
	for i := 0; i < 200; i++ {
		want = append(want, byte(i), byte(i>>8), 'x')
	}
	big := make([]byte, 3*bufSize+7)
	for i := range big {
		big[i] = byte(i * 7)
	}
	want = append(want, big...)
	go func() {
		for i := 0; i < 200; i++ {
			_, _ = client.Write(want[3*i : 3*i+3])
		}
		_, _ = client.Write(big)
		_ = client.(*net.TCPConn).CloseWrite()
	}()
	var got []byte
	buf := make([]byte, 5)
	for len(got) < 600 {
		n, err := server.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatal(err)
		}
	}
	rest, err := io.ReadAll(server)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rest...)
	if string(got) != string(want) {
		t.Fatalf("read %d bytes, want the %d written in order", len(got), len(want))
	}
}
