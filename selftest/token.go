// Package selftest is the gateway's self-test (R19-R21; SMARTS, the
// reference test server the spec names, no longer exists, issue 17 point
// 2): built-in scenarios sent through the live MTA, each marked with an
// X-NZ-Selftest header carrying an HMAC token. The milter verifies the
// token and, for such a message, answers with a 550 reply that reports the
// verdict it reached instead of acting on it, so no scenario message is
// ever delivered, held or answered; the client compares that verdict with
// the one the policy expects.
//
// The key is a file (selftest.key_file, mode 0600) created at first use by
// serve or the selftest command, whichever comes first; both read it.
package selftest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/internal/statefile"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// Header marks a scenario message.
const Header = "X-NZ-Selftest"

// MaxSkew bounds how old (or how far ahead) a token may be: a copy
// replayed later is refused like any unverified one.
const MaxSkew = 15 * time.Minute

// ErrToken is wrapped by every token that does not verify.
var ErrToken = errors.New("selftest token not valid")

// keyBytes is the key's length (HMAC-SHA256, RFC 2104 section 3: at
// least the hash output).
const keyBytes = 32

// LoadOrCreateKey reads the key at path, creating it (mode 0600, written
// to a temporary file and linked into place, so two first users cannot
// each make their own) when it does not exist.
func LoadOrCreateKey(path string) ([]byte, error) {
	if key, err := readKey(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	raw := make([]byte, keyBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".selftest-key-*")
	if err != nil {
		return nil, fmt.Errorf("selftest key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(raw) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = statefile.OwnLikeDir(tmp, filepath.Dir(path))
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("selftest key: %w", err)
	}
	return readKey(path) // ours, or the one another process linked first
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("selftest key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < keyBytes {
		return nil, fmt.Errorf("selftest key %s: not %d hex-encoded bytes", path, keyBytes)
	}
	return key, nil
}

func mac(key []byte, scenario string, t int64, nonce string) string {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "nzsecure-milter selftest\x00%s\x00%d\x00%s", scenario, t, nonce)
	return hex.EncodeToString(h.Sum(nil))
}

// Token is the X-NZ-Selftest value for one scenario message.
func Token(key []byte, scenario string, now time.Time) string {
	n := make([]byte, 8)
	_, _ = rand.Read(n)
	nonce := hex.EncodeToString(n)
	t := now.Unix()
	return fmt.Sprintf("scenario=%s; t=%d; n=%s; mac=%s", scenario, t, nonce, mac(key, scenario, t, nonce))
}

// Verify checks a token and returns its scenario name. Errors wrap
// ErrToken.
func Verify(key []byte, value string, now time.Time) (string, error) {
	if len(key) == 0 {
		return "", fmt.Errorf("%w: this gateway has no selftest key", ErrToken)
	}
	f := map[string]string{}
	for _, part := range strings.Split(value, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", fmt.Errorf("%w: malformed", ErrToken)
		}
		f[k] = v
	}
	sc, ts, nonce, got := f["scenario"], f["t"], f["n"], f["mac"]
	t, err := strconv.ParseInt(ts, 10, 64)
	if sc == "" || err != nil || nonce == "" || got == "" || len(sc) > 64 || strings.ContainsAny(sc, " \t\r\n") {
		return "", fmt.Errorf("%w: malformed", ErrToken)
	}
	if !hmac.Equal([]byte(got), []byte(mac(key, sc, t, nonce))) {
		return "", fmt.Errorf("%w: wrong MAC (another key?)", ErrToken)
	}
	if d := now.Sub(time.Unix(t, 0)); d > MaxSkew || d < -MaxSkew {
		return "", fmt.Errorf("%w: issued %s ago, more than %v", ErrToken, d.Round(time.Second), MaxSkew)
	}
	return sc, nil
}

// ReplyText is the text of the milter's 550 5.7.0 reply to a verified
// scenario message: the verdict the gateway reached, for the client to
// compare.
//
//	selftest spoof: action=accept classification="UNCLASSIFIED" warning=005 notices=- reply=-
func ReplyText(scenario string, v policy.Verdict) string {
	var kinds []string
	for _, n := range v.Notices {
		kinds = append(kinds, string(n.Kind))
	}
	notices, warning, reply := "-", "-", "-"
	if len(kinds) > 0 {
		notices = strings.Join(kinds, ",")
	}
	if v.WarningCode != "" {
		warning = v.WarningCode
	}
	if v.Reply != nil {
		reply = fmt.Sprintf("%d/%s", v.Reply.Code, v.Reply.Status)
	}
	return fmt.Sprintf("selftest %s: action=%s classification=%q warning=%s notices=%s reply=%s",
		scenario, v.Action, v.Classification, warning, notices, reply)
}

// Outcome is a verdict as a ReplyText reports it.
type Outcome struct {
	Scenario, Action, Classification, Warning, Notices, Reply string
}

// ParseReply reads a ReplyText (the reply's text after the enhanced
// status code); ok is false when text is not one.
func ParseReply(text string) (Outcome, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(text), "selftest ")
	if !ok {
		return Outcome{}, false
	}
	sc, rest, ok := strings.Cut(rest, ": ")
	if !ok {
		return Outcome{}, false
	}
	o := Outcome{Scenario: sc}
	for rest != "" {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			return Outcome{}, false
		}
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				return Outcome{}, false
			}
			v, rest = v[1:end+1], strings.TrimPrefix(v[end+2:], " ")
		} else {
			v, rest, _ = strings.Cut(v, " ")
		}
		switch k {
		case "action":
			o.Action = v
		case "classification":
			o.Classification = v
		case "warning":
			o.Warning = v
		case "notices":
			o.Notices = v
		case "reply":
			o.Reply = v
		}
	}
	return o, o.Action != ""
}
