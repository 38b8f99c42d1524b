package classify

import (
	"encoding/asn1"
	"fmt"

	"github.com/smallstep/pkcs7"

	"github.com/nzsecure-milter/nzsecure-milter/message"
)

// MaxSignedData is the largest S/MIME (CMS, RFC 5652) object buffered for
// parsing, after transfer decoding. A larger one is not read and the part
// is unreadable (issue 11 point 2).
const MaxSignedData = 32 << 20

// CMS content types (RFC 5652 section 4-8, RFC 5083, RFC 3274).
var (
	oidSignedData      = pkcs7.OIDSignedData
	oidEnvelopedData   = pkcs7.OIDEnvelopedData
	oidEncryptedData   = pkcs7.OIDEncryptedData
	oidAuthEnveloped   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 23}
	oidCompressedData  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 9}
	oidAuthenticatedDt = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 2}
)

// pkcs7Stage reads an application/pkcs7-mime body (RFC 8551 section
// 3.2): a CMS object, buffered (bounded) and parsed at the end. The
// content of signed-data (opaque signing, section 3.5.3) is a MIME
// entity, scanned like any other; encrypted content cannot be read. The
// content type is taken from the CMS object itself, not from the
// smime-type parameter, which clients often leave out.
type pkcs7Stage struct {
	ctx   *scanCtx
	where string
	inner *entity // the encapsulated entity
	buf   []byte
	over  bool
}

func newPKCS7Stage(ctx *scanCtx, where string, inner *entity) *pkcs7Stage {
	return &pkcs7Stage{ctx: ctx, where: where, inner: inner}
}

func (s *pkcs7Stage) write(p []byte) {
	if s.over {
		return
	}
	if len(s.buf)+len(p) > MaxSignedData {
		s.over, s.buf = true, nil
		s.ctx.col.unreadable("%s: S/MIME content larger than %d bytes, not read", s.where, MaxSignedData)
		return
	}
	s.buf = append(s.buf, p...)
}

func (s *pkcs7Stage) close() {
	buf := s.buf
	s.buf = nil
	if s.over {
		return
	}
	col := s.ctx.col
	if s.ctx.expired() {
		col.unreadable("%s: time budget spent, S/MIME content not read", s.where)
		return
	}
	oid, ok := cmsContentType(buf)
	switch {
	case !ok:
		col.unreadable("%s: S/MIME content is not a CMS object, not readable", s.where)
	case oid.Equal(oidEnvelopedData), oid.Equal(oidAuthEnveloped), oid.Equal(oidEncryptedData):
		col.unreadable("%s: S/MIME encrypted (%s), content not readable", s.where, cmsName(oid))
	case oid.Equal(oidSignedData):
		if err := berBounded(buf); err != nil {
			col.unreadable("%s: S/MIME signed-data not read: %v", s.where, err)
			return
		}
		content, certsOnly, err := parseSignedData(buf)
		switch {
		case err != nil:
			col.unreadable("%s: S/MIME signed-data not parsable: %s", s.where, message.Clip(err.Error(), 80))
		case len(content) == 0 && certsOnly:
			// smime-type=certs-only (RFC 8551 section 3.6): nothing to read.
			col.problem("%s: S/MIME certificates only", s.where)
		case len(content) == 0:
			col.unreadable("%s: S/MIME signed-data without content, not readable", s.where)
		default:
			s.inner.write(content)
			s.inner.close()
		}
	default:
		col.unreadable("%s: S/MIME %s, content not readable", s.where, cmsName(oid))
	}
}

func cmsName(oid asn1.ObjectIdentifier) string {
	switch {
	case oid.Equal(oidEnvelopedData):
		return "enveloped-data"
	case oid.Equal(oidAuthEnveloped):
		return "authEnveloped-data"
	case oid.Equal(oidEncryptedData):
		return "encrypted-data"
	case oid.Equal(oidCompressedData):
		return "compressed-data"
	case oid.Equal(oidAuthenticatedDt):
		return "authenticated-data"
	}
	return "content of type " + message.Clip(oid.String(), 60)
}

// parseSignedData returns the encapsulated content of a CMS signed-data
// object. The library is third-party code run on hostile input, so a
// panic in it is an unparsable object, not a crash (the session always
// gets a verdict). certsOnly reports an object with certificates and no
// signer (RFC 8551 section 3.6).
func parseSignedData(der []byte) (content []byte, certsOnly bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			content, certsOnly, err = nil, false, fmt.Errorf("parser panic: %v", v)
		}
	}()
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, false, err
	}
	return p7.Content, len(p7.Signers) == 0 && len(p7.Certificates) > 0, nil
}

// Bounds on the shape of a BER object handed to the library: its BER to
// DER conversion recurses once per nesting level (a deep enough object
// would overflow the goroutine stack, which recover cannot catch) and
// allocates per element. Real S/MIME nests about 15 levels deep and has a
// few thousand elements (a 32 MiB content in 1000-byte chunks has 33000).
const (
	maxBERDepth    = 100
	maxBERElements = 200000
)

// berBounded walks the TLVs of b without recursion and fails when the
// nesting or the element count is past the bounds. Malformed encoding is
// left for the parser to report (it stops at the same place).
func berBounded(b []byte) error {
	var ends []int // end offset of each open element; -1 when indefinite
	count := 0
	for i := 0; i < len(b); {
		for len(ends) > 0 && ends[len(ends)-1] >= 0 && i >= ends[len(ends)-1] {
			ends = ends[:len(ends)-1]
		}
		if len(ends) > 0 && ends[len(ends)-1] < 0 && i+1 < len(b) && b[i] == 0 && b[i+1] == 0 {
			ends = ends[:len(ends)-1] // end-of-contents
			i += 2
			continue
		}
		if count++; count > maxBERElements {
			return fmt.Errorf("more than %d elements", maxBERElements)
		}
		tag := b[i]
		i++
		if tag&0x1F == 0x1F { // high tag number form
			for i < len(b) && b[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if i >= len(b) {
			return nil
		}
		l := b[i]
		i++
		constructed := tag&0x20 != 0
		n := int(l)
		switch {
		case l == 0x80:
			n = -1
		case l > 0x80:
			k := int(l & 0x7F)
			if k > 4 || i+k > len(b) {
				return nil
			}
			n = 0
			for ; k > 0; k-- {
				n = n<<8 | int(b[i])
				i++
			}
		}
		if !constructed {
			if n < 0 {
				return nil
			}
			i += n
			continue
		}
		end := -1
		if n >= 0 {
			end = i + n
		}
		if ends = append(ends, end); len(ends) > maxBERDepth {
			return fmt.Errorf("nested deeper than %d levels", maxBERDepth)
		}
	}
	return nil
}

// cmsContentType reads the contentType of a ContentInfo (RFC 5652
// section 3): SEQUENCE { OBJECT IDENTIFIER, [0] EXPLICIT ... }, in BER
// (definite or indefinite length), without parsing the rest.
func cmsContentType(b []byte) (asn1.ObjectIdentifier, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return nil, false
	}
	i := 2
	switch l := b[1]; {
	case l == 0x80: // indefinite
	case l > 0x80:
		i += int(l & 0x7F)
	}
	if i+2 > len(b) || b[i] != 0x06 || b[i+1] >= 0x80 {
		return nil, false
	}
	end := i + 2 + int(b[i+1])
	if end > len(b) {
		return nil, false
	}
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(b[i:end], &oid); err != nil || len(rest) != 0 {
		return nil, false
	}
	return oid, true
}
