// Package tlspolicy answers Postfix's smtp_tls_policy_maps over the
// socketmap protocol (socketmap_table(5)): secure-domain lists and MTA-STS
// (RFC 8461) enforce policies become "encrypt"/"secure" TLS policies, so that
// mail to those domains is never sent in clear (M-SEC-OUT, G-MTASTS). A
// milter cannot choose how Postfix delivers; this is how the product does it.
package tlspolicy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrNetstring is wrapped by every framing error.
var ErrNetstring = errors.New("malformed netstring")

// MaxRequest bounds a request; Postfix's keys are domain names or
// [host]:port, far below it.
const MaxRequest = 10000

// ReadNetstring reads one netstring ("len:data,") of at most max bytes.
func ReadNetstring(r *bufio.Reader, max int) ([]byte, error) {
	n := 0
	digits := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && digits > 0 {
				err = fmt.Errorf("%w: truncated length", ErrNetstring)
			}
			return nil, err
		}
		if c == ':' {
			break
		}
		if c < '0' || c > '9' || digits >= 9 || (digits == 1 && n == 0) {
			return nil, fmt.Errorf("%w: bad length byte %q", ErrNetstring, c)
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if digits == 0 {
		return nil, fmt.Errorf("%w: empty length", ErrNetstring)
	}
	if n > max {
		return nil, fmt.Errorf("%w: length %d is over the limit %d", ErrNetstring, n, max)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: truncated data: %v", ErrNetstring, err)
	}
	if buf[n] != ',' {
		return nil, fmt.Errorf("%w: missing trailing comma", ErrNetstring)
	}
	return buf[:n], nil
}

// AppendNetstring appends data as a netstring.
func AppendNetstring(dst, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	dst = append(dst, ':')
	dst = append(dst, data...)
	return append(dst, ',')
}
