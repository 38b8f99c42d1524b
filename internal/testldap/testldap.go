// Package testldap starts a private OpenLDAP slapd on a loopback port for
// tests (certificate discovery R43, CRLs at ldap:// distribution points):
// its own configuration, database and schema in a temporary directory, the
// entries of an LDIF loaded with slapadd. Only tests import it.
package testldap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is a running slapd.
type Server struct {
	Addr   string // host:port on 127.0.0.1
	Suffix string
	RootDN string
	RootPW string
	// Roots trusts the server's certificate, RootsFile is it as PEM
	// (StartLDAPS only; the certificate is its own CA).
	Roots     *x509.CertPool
	RootsFile string
	dir       string
}

// Start runs slapd for suffix (e.g. "c=NZ") with the entries of ldif. A
// missing slapd fails the test in CI (CI set: .ci/run installs it) and
// skips it elsewhere.
func Start(t *testing.T, suffix, ldif string) *Server {
	t.Helper()
	return start(t, suffix, ldif, false)
}

// StartLDAPS is Start with slapd listening for ldaps:// (TLS from the
// first byte) with a certificate for 127.0.0.1 made for the test, trusted
// by Server.Roots.
func StartLDAPS(t *testing.T, suffix, ldif string) *Server {
	t.Helper()
	return start(t, suffix, ldif, true)
}

func start(t *testing.T, suffix, ldif string, useTLS bool) *Server {
	t.Helper()
	slapd, err := exec.LookPath("slapd")
	if err != nil {
		slapd = "/usr/sbin/slapd"
		if _, err := os.Stat(slapd); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("slapd not installed (CI must install it: apt-get install slapd)")
			}
			t.Skip("slapd not installed")
		}
	}
	slapadd := filepath.Join(filepath.Dir(slapd), "slapadd")
	dir := t.TempDir()
	s := &Server{Suffix: suffix, RootDN: "cn=admin," + suffix, RootPW: "test-secret", dir: dir}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	cfg := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
suffix %q
rootdn %q
rootpw %s
directory %s/db
maxsize 10485760
`, dir, suffix, s.RootDN, s.RootPW, dir)
	scheme := "ldap"
	if useTLS {
		certFile, keyFile, pool := tlsFiles(t, dir)
		s.Roots, s.RootsFile, scheme = pool, certFile, "ldaps"
		cfg = fmt.Sprintf("TLSCertificateFile %s\nTLSCertificateKeyFile %s\n", certFile, keyFile) + cfg
	}
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ldifFile := filepath.Join(dir, "data.ldif")
	if err := os.WriteFile(ldifFile, []byte(ldif), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(slapadd, "-f", conf, "-l", ldifFile).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	// slapd needs an explicit port. One found free can be taken before
	// slapd binds it (by another test binary running in parallel): slapd
	// then exits, and a connect alone could even reach the other
	// listener. So slapd is ready only once it has written its pid file
	// (after binding) and still runs; otherwise another port is tried.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Addr = addr
		_ = os.Remove(filepath.Join(dir, "slapd.pid"))
		if lastErr = s.start(t, slapd, conf, scheme); lastErr == nil {
			return s
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
	t.Fatalf("slapd did not start: %v\n%s", lastErr, strings.TrimSpace(string(log)))
	return nil
}

// freePort returns a loopback address whose port nothing listens on,
// below the kernel's ephemeral range as tests/e2e/lib.sh pick_port does
// (a port in that range can be handed to any outgoing connection).
func freePort() (string, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &low)
	}
	span := max(low-10000, 1000)
	var buf [4]byte
	for i := 0; i < 100; i++ {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		port := 10000 + int(uint32(buf[0])<<24|uint32(buf[1])<<16|uint32(buf[2])<<8|uint32(buf[3]))%span
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free loopback port found")
}

// start runs slapd on s.Addr and waits until it is ready, or returns why
// not (it exited: most likely the port was taken meanwhile).
func (s *Server) start(t *testing.T, slapd, conf, scheme string) error {
	cmd := exec.Command(slapd, "-f", conf, "-h", scheme+"://"+s.Addr+"/", "-d", "0")
	logf, err := os.OpenFile(filepath.Join(s.dir, "slapd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("slapd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-exited:
			return fmt.Errorf("slapd exited at start on %s", s.Addr)
		default:
		}
		_, perr := os.Stat(filepath.Join(s.dir, "slapd.pid"))
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		if err == nil && perr == nil {
			// Still running once it listens and wrote its pid file:
			// the listener is slapd's.
			select {
			case <-exited:
				return fmt.Errorf("slapd exited at start on %s", s.Addr)
			case <-time.After(50 * time.Millisecond):
			}
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("slapd did not listen on %s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends slapd now (a directory that goes down).
func (s *Server) Stop(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(s.dir, "slapd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(strings.TrimSpace(string(data)), &pid)
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err != nil {
			return
		} else {
			c.Close()
		}
	}
	t.Fatalf("slapd on %s did not stop", s.Addr)
}

// tlsFiles writes a self-signed certificate for 127.0.0.1 and its key.
func tlsFiles(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{netip.MustParseAddr("127.0.0.1").AsSlice()},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = dir+"/tls.crt", dir+"/tls.key"
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}
