package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/auth/dkim"
)

func init() {
	register("dkim-keygen", "make a DKIM signing key (RSA or Ed25519) and print its DNS TXT record", runDKIMKeygen)
}

// runDKIMKeygen: nzsecure-milter dkim-keygen --domain D --selector S
// [--algorithm rsa|ed25519] [--bits 2048] [--out FILE]. It writes the
// private key (PKCS#8 PEM, mode 0600, never over an existing file) and
// prints the zone-file line to publish (RFC 6376 section 3.6.1; RFC 8463
// section 4.2 for Ed25519).
func runDKIMKeygen(args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("dkim-keygen", "", stderr)
	domain := flags.String("domain", "", "signing `DOMAIN` (d=)")
	selector := flags.String("selector", "", "`SELECTOR` (s=)")
	algorithm := flags.String("algorithm", "rsa", "key `TYPE`: rsa or ed25519")
	bits := flags.Int("bits", dkim.MinRSABits, "RSA key size in `BITS` (at least 2048)")
	out := flags.String("out", "", "private key `FILE` (default ./SELECTOR.DOMAIN.key)")
	pos, err := parseFlags(flags, args)
	if err != nil {
		return 2
	}
	*domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(*domain), "."))
	*selector = strings.TrimSpace(*selector)
	if len(pos) != 0 || *domain == "" || *selector == "" {
		flags.Usage()
		return 2
	}
	alg := strings.ToLower(*algorithm)
	if alg != "rsa" && alg != "ed25519" {
		fmt.Fprintf(stderr, "dkim-keygen: --algorithm %q: want rsa or ed25519\n", *algorithm)
		return 2
	}
	if alg == "rsa" && *bits < dkim.MinRSABits {
		fmt.Fprintf(stderr, "dkim-keygen: --bits %d: RSA keys must have at least %d bits (RFC 8301 section 3.2)\n", *bits, dkim.MinRSABits)
		return 2
	}
	if err := dkim.CheckNames(*domain, *selector); err != nil {
		fmt.Fprintf(stderr, "dkim-keygen: %v\n", err)
		return 2
	}
	path := *out
	if path == "" {
		path = *selector + "." + *domain + ".key"
	}
	if _, err := os.Lstat(path); err == nil {
		fmt.Fprintf(stderr, "dkim-keygen: %s exists; not overwriting it\n", path)
		return 1
	}

	key, err := dkim.GenerateKey(alg, *bits)
	if err != nil {
		fmt.Fprintf(stderr, "dkim-keygen: %v\n", err)
		return 1
	}
	pemData, err := dkim.MarshalPrivateKey(key)
	if err != nil {
		fmt.Fprintf(stderr, "dkim-keygen: %v\n", err)
		return 1
	}
	record, err := dkim.KeyRecord(key.Public())
	if err != nil {
		fmt.Fprintf(stderr, "dkim-keygen: %v\n", err)
		return 1
	}
	// O_EXCL: never replace a key (or follow a symlink) created since the
	// check above.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			fmt.Fprintf(stderr, "dkim-keygen: %s exists; not overwriting it\n", path)
		} else {
			fmt.Fprintf(stderr, "dkim-keygen: %v\n", err)
		}
		return 1
	}
	if _, err := f.Write(pemData); err != nil {
		f.Close()
		os.Remove(path)
		fmt.Fprintf(stderr, "dkim-keygen: writing %s: %v\n", path, err)
		return 1
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		fmt.Fprintf(stderr, "dkim-keygen: writing %s: %v\n", path, err)
		return 1
	}
	desc := "Ed25519"
	if alg == "rsa" {
		desc = fmt.Sprintf("RSA %d-bit", *bits)
	}
	fmt.Fprintf(stderr, "dkim-keygen: wrote the %s private key to %s (mode 0600); publish this TXT record:\n", desc, path)
	fmt.Fprintln(stdout, dkim.ZoneLine(*selector, *domain, record))
	return 0
}
