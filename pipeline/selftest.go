package pipeline

import (
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/selftest"
)

// Selftest says whether the message is a self-test scenario (R19-R21): it
// carries an X-NZ-Selftest header. scenario is the name a valid token
// names; err (wrapping selftest.ErrToken) says why a token does not
// verify. Either way the milter must not act on the message: a verified
// one is answered with the verdict, an unverified one refused (fail safe:
// a scenario message is never delivered, whatever the key).
func (t *Transaction) Selftest(now time.Time) (scenario string, present bool, err error) {
	vals := policy.HeaderValues(t.headers, selftest.Header)
	if len(vals) == 0 {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", true, selftestErr("more than one " + selftest.Header + " header")
	}
	sc, err := selftest.Verify(t.st.SelftestKey, vals[0], now)
	return sc, true, err
}

type selftestErr string

func (e selftestErr) Error() string { return string(e) }
func (e selftestErr) Unwrap() error { return selftest.ErrToken }
