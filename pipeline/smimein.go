package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/message"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
	"github.com/nzsecure-milter/nzsecure-milter/smime"
)

// Inbound domain S/MIME (issue 14 point 4, R38, R47-R50, R80-R89): at end of
// message an inbound message whose top-level Content-Type is
// application/(x-)pkcs7-mime or multipart/signed with an
// application/(x-)pkcs7-signature is decrypted with our identities,
// its signature verified, its signer validated now, learned into the peer
// store, and its inner entity classified again. The engine decides on the
// plain facts (policy.SMIMEInbound); UnwrapStep delivers the inner entity.

// DSACommonName is the common name of a domain signing certificate (RFC
// 3183 section 3.1.1; R88 strips them like DCA certificates, R89).
const DSACommonName = "domain-signing-authority"

// maxSMIMELayers bounds the S/MIME layers unwrapped (sign, encrypt, sign:
// RFC 3183's triple wrapping is the deepest form).
const maxSMIMELayers = 3

// maxSMIMEBody bounds the body read for S/MIME: MaxDER of DER as base64 in
// 76-column CRLF lines, plus room for the MIME around it.
const maxSMIMEBody = smime.MaxDER/3*4 + smime.MaxDER/57*2 + 64<<10

// errSMIMEForm: the MIME form of an S/MIME layer is broken (no boundary,
// no signature part, a transfer encoding that does not decode).
var errSMIMEForm = errors.New("S/MIME MIME structure malformed")

// errDecryptText is the one reason given for enveloped data addressed to
// our certificate that does not decrypt.
const errDecryptText = "the content does not decrypt with our key"

// smimeIn is what InboundSMIME found: the facts for the engine and the
// inner entity the unwrap step delivers.
type smimeIn struct {
	facts policy.SMIMEInbound
	inner []policy.Header // the inner entity's headers, values as written
	body  []byte          // its body, CRLF line ends
}

// isSMIME reports whether a top-level Content-Type is an S/MIME form the
// gateway opens (RFC 8551 sections 3.2-3.5).
func isSMIME(ct message.MediaType) bool {
	switch ct.Type {
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		return true
	case "multipart/signed":
		pr := strings.ToLower(strings.TrimSpace(ct.Params["protocol"]))
		return pr == "application/pkcs7-signature" || pr == "application/x-pkcs7-signature"
	}
	return false
}

// contentType is the media type of the last Content-Type header of hs (the
// one a reader uses), "" type when there is none.
func contentType(hs []policy.Header) message.MediaType {
	vs := policy.HeaderValues(hs, "Content-Type")
	if len(vs) == 0 {
		return message.MediaType{}
	}
	return message.ParseMediaType(strings.TrimSpace(message.Unfold(vs[len(vs)-1])))
}

// InboundSMIME opens the S/MIME layers of a message whose headers are hs
// (values as received) and whose body is body, nil when the message is not
// S/MIME. Nothing it reads can crash it: every library call is under
// recover (package smime) and every input bounded; what cannot be read is a
// Malformed fact (UNVERIFIED, never compliant).
func InboundSMIME(ctx context.Context, env *SMIMEEnv, hs []policy.Header, body io.Reader) (out *smimeIn) {
	ct := contentType(hs)
	if env == nil || !isSMIME(ct) {
		return nil
	}
	out = &smimeIn{}
	f := &out.facts
	defer func() {
		// Belt and braces: package smime recovers the library's panics;
		// anything else here that panics on hostile input is a malformed
		// message, not a crashed session.
		if v := recover(); v != nil {
			*out = smimeIn{facts: policy.SMIMEInbound{Layers: f.Layers, Malformed: true, Problem: fmt.Sprintf("internal error reading S/MIME: %v", v)}}
		}
	}()
	if a, ok := message.Authors(policy.HeaderValues(hs, "From")).Author(); ok {
		f.FromDomain = strings.ToLower(a.Domain)
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxSMIMEBody+1))
	if err != nil {
		f.Malformed, f.Problem = true, "reading the body: "+err.Error()
		return out
	}
	if len(raw) > maxSMIMEBody {
		f.Malformed, f.Problem = true, fmt.Sprintf("S/MIME body larger than %d bytes, not read", maxSMIMEBody)
		return out
	}
	curHs, curBody := contentHeaders(hs), toCRLF(raw)
	// inner: curHs/curBody are an entity from inside a removed layer.
	decrypted, signed, inner := false, false, false
	for layer := 0; layer < maxSMIMELayers; layer++ {
		ct := contentType(curHs)
		if !isSMIME(ct) {
			break
		}
		var content []byte
		if ct.Type == "multipart/signed" {
			if signed {
				f.Notes = append(f.Notes, "a second signature layer is left in place")
				break
			}
			f.Layers = append(f.Layers, "signed-detached")
			part, sig, err := splitSigned(curBody, ct.Params["boundary"])
			if err != nil {
				f.Malformed, f.Problem = true, err.Error()
				return finish(out, curHs, curBody, inner)
			}
			var keep bool
			if content, keep = verifyLayer(ctx, env, f, sig, part, layer == 0 && !decrypted); !keep {
				return finish(out, curHs, curBody, inner)
			}
			if content == nil {
				break // a user-level signature: left for the recipient
			}
			signed = true
		} else {
			der, err := decodeBody(curHs, curBody)
			if err != nil {
				f.Malformed, f.Problem = true, err.Error()
				return finish(out, curHs, curBody, inner)
			}
			switch cmsType(der) {
			case "enveloped":
				if decrypted {
					f.Notes = append(f.Notes, "a second encryption layer is left in place")
					return finish(out, curHs, curBody, inner)
				}
				f.Layers = append(f.Layers, "enveloped")
				f.Encrypted = true
				if content = decryptLayer(ctx, env, f, der); content == nil {
					return finish(out, curHs, curBody, inner)
				}
				decrypted = true
			case "signed":
				if signed {
					f.Notes = append(f.Notes, "a second signature layer is left in place")
					return finish(out, curHs, curBody, inner)
				}
				f.Layers = append(f.Layers, "signed-opaque")
				var keep bool
				if content, keep = verifyLayer(ctx, env, f, der, nil, layer == 0 && !decrypted); !keep {
					return finish(out, curHs, curBody, inner)
				}
				if content == nil {
					return finish(out, curHs, curBody, inner)
				}
				signed = true
			default:
				f.Layers = append(f.Layers, "pkcs7")
				f.Malformed, f.Problem = true, "application/pkcs7-mime content is not CMS enveloped or signed data"
				return finish(out, curHs, curBody, inner)
			}
		}
		ihs, ibody, err := splitEntity(content)
		if err != nil {
			f.Malformed, f.Problem = true, "the S/MIME inner entity: "+err.Error()
			return finish(out, curHs, curBody, inner)
		}
		curHs, curBody, inner = ihs, ibody, true
	}
	return finish(out, curHs, curBody, inner)
}

// finish records the inner entity when a layer was removed.
func finish(out *smimeIn, hs []policy.Header, body []byte, unwrapped bool) *smimeIn {
	if unwrapped {
		out.inner, out.body, out.facts.Unwrapped = hs, body, true
	}
	if out.facts.Layers == nil {
		return nil // an outer user-level signature only: not domain S/MIME
	}
	return out
}

// decryptLayer opens enveloped data with our identities (R38: every one;
// the valid ones are tried first, then the others, so that mail to our
// expired or revoked certificate is still read and delivered with its
// 111-115 warning, R86). nil when it does not open (R80).
func decryptLayer(ctx context.Context, env *SMIMEEnv, f *policy.SMIMEInbound, der []byte) []byte {
	var valid, other []*smime.Identity
	states := map[*smime.Identity]smime.Verdict{}
	for _, id := range env.Identities {
		vd := env.Validator.Validate(ctx, id.Cert, id.Domain, id.Chain)
		states[id] = vd
		if vd.State == smime.StateValid {
			valid = append(valid, id)
		} else {
			other = append(other, id)
		}
	}
	d, err := smime.Decrypt(der, append(valid, other...))
	if err != nil {
		switch {
		case errors.Is(err, smime.ErrNotForUs):
			f.NotForUs = true
			f.DecryptError = "encrypted to none of our certificates"
		case errors.Is(err, smime.ErrMalformed), errors.Is(err, smime.ErrTooLarge), errors.Is(err, smime.ErrInternal):
			f.Malformed, f.Problem = true, err.Error()
		default:
			// One text whatever failed inside (the key transport or the
			// content's padding): DecryptError reaches the delivered
			// message (Authentication-Results, the warning), and different
			// texts would make the recipient's mailbox a decryption oracle
			// (RFC 3218 section 2.3). The detail goes to the decision log.
			f.DecryptError = errDecryptText
			f.Notes = append(f.Notes, "decryption failed: "+err.Error())
		}
		return nil
	}
	vd := states[d.By]
	f.Decrypted = true
	f.OwnFingerprint, f.OwnDomain, f.OwnState, f.OwnReason = smime.Fingerprint(d.By.Cert), d.By.Domain, vd.State, vd.Reason
	return d.Content
}

// verifyLayer checks signed data (der; detached: the signed content of a
// multipart/signed, nil for opaque) and judges its signer (R36, R47, R81,
// R82), then learns it (R50, R83-R84). It returns the signed content and
// keep = true to go on; content nil with keep = true when the signer is
// not a domain certificate (a user's own S/MIME, left for the recipient);
// keep = false when the message is settled (malformed).
func verifyLayer(ctx context.Context, env *SMIMEEnv, f *policy.SMIMEInbound, der, detached []byte, outermost bool) (content []byte, keep bool) {
	var extra []*x509.Certificate
	if env.Store != nil && f.FromDomain != "" {
		// R82: a message without its signer's certificate is verified with
		// the peer store's.
		extra, _ = env.Store.Certificates(f.FromDomain)
	}
	s, err := smime.Verify(der, detached, extra)
	if err != nil {
		if errors.Is(err, smime.ErrMalformed) || errors.Is(err, smime.ErrTooLarge) || errors.Is(err, smime.ErrNoSigner) {
			f.Malformed, f.Problem = true, err.Error()
			return nil, false
		}
		// The signature does not verify: its signer is unknown, so it is
		// taken as a domain signature that failed (003), never as no
		// signature at all.
		f.Signed, f.SignatureError = true, err.Error()
		if strings.Contains(err.Error(), "neither in the message nor in the peer store") {
			// No certificate to check it with (R82 found none): the
			// sender's certificate is unknown (102), not the content
			// altered.
			f.SignatureUnchecked = true
			f.SignerState, f.SignerReason = smime.StateUntrusted, "the signer's certificate is neither in the message nor in the peer store (R82)"
		}
		if detached != nil {
			return detached, true
		}
		return nil, false
	}
	cn := s.Signer.Subject.CommonName
	if cn != smime.DCACommonName && cn != DSACommonName {
		if outermost {
			f.Layers = nil // not domain S/MIME at all
		} else {
			f.Notes = append(f.Notes, fmt.Sprintf("inner signature by %q is not a domain signature; left in place", cn))
		}
		return nil, true
	}
	f.Signed, f.SignatureOK = true, !s.DatesUnchecked
	if s.DatesUnchecked {
		f.SignatureUnchecked = true
		f.SignatureError = "the signing time lies outside the signer certificate's validity"
	}
	f.SignerFingerprint, f.SignerSerial = smime.Fingerprint(s.Signer), s.Signer.SerialNumber.Text(16)
	f.SignerIssuer = s.Signer.Issuer.CommonName
	if es := smime.CertEmails(s.Signer); len(es) > 0 {
		f.SignerAddress = strings.ToLower(es[0])
	}
	f.SignerDomains = smime.CertDomains(s.Signer)
	f.SignerFromStore = true
	for _, c := range s.Certificates {
		if bytes.Equal(c.Raw, s.Signer.Raw) {
			f.SignerFromStore = false
		}
		if c.Subject.CommonName == smime.DCACommonName || c.Subject.CommonName == DSACommonName {
			f.StrippedCerts++
		}
	}
	// Validity judged now, not at the signing time (R37 note); naming
	// separately, against the From: domain (R47-R48).
	vd := env.Validator.Validate(ctx, s.Signer, "", s.Certificates)
	f.SignerState, f.SignerReason = vd.State, vd.Reason
	if f.FromDomain == "" {
		f.NamingReason = "the From: field names no single author"
	} else if err := smime.CheckNaming(s.Signer, f.FromDomain); err != nil {
		f.NamingReason = err.Error()
	} else {
		f.NamingOK = true
	}
	f.Capabilities = s.Capabilities.String()
	if vd.State == smime.StateValid && f.SignatureOK {
		learn(env, f, s)
	}
	if detached != nil {
		return detached, true
	}
	return s.Content, true
}

// learn adds a valid signer certificate to the peer store under each of
// its domains it is named for (R50, R83: new or changed) and caches its
// capabilities (R84).
func learn(env *SMIMEEnv, f *policy.SMIMEInbound, s *smime.Signed) {
	if env.Store == nil {
		f.Notes = append(f.Notes, "no peer store: the signer certificate is not learned ("+env.StoreNote+")")
		return
	}
	for _, d := range f.SignerDomains {
		if smime.CheckNaming(s.Signer, d) != nil {
			continue
		}
		if ownIdentityDomain(env, d) {
			// Our own certificate back from outside (a replay or a loop):
			// not a peer (mail to our domains never gets S/MIME).
			f.Notes = append(f.Notes, "the signer certificate is for our own domain "+d+": not learned as a peer")
			continue
		}
		before, _ := env.Store.Certificates(d)
		if env.ReadOnly {
			wouldLearn(f, d, before, s)
			continue
		}
		added, err := env.Store.Add(d, s.Signer)
		if err != nil {
			f.Notes = append(f.Notes, "learning the signer certificate: "+err.Error())
			continue
		}
		if added {
			f.Learned = true
			f.Changed = f.Changed || len(before) > 0
		}
		if len(s.Capabilities) > 0 {
			if err := env.Store.SetCapabilities(d, s.Capabilities); err != nil {
				f.Notes = append(f.Notes, "caching capabilities: "+err.Error())
			} else {
				f.CapabilitiesCached = true
			}
		}
	}
}

// wouldLearn notes what learn would write for domain d (env.ReadOnly):
// the signer certificate when the store does not hold it yet, the
// capabilities when the signature carries them.
func wouldLearn(f *policy.SMIMEInbound, d string, known []*x509.Certificate, s *smime.Signed) {
	if !slices.ContainsFunc(known, func(c *x509.Certificate) bool { return c.Equal(s.Signer) }) {
		f.Notes = append(f.Notes, fmt.Sprintf("read-only: would learn the signer certificate %s for %s (R50, R83)", smime.Fingerprint(s.Signer), d))
	}
	if len(s.Capabilities) > 0 {
		f.Notes = append(f.Notes, fmt.Sprintf("read-only: would cache the capabilities %s for %s (R84)", s.Capabilities, d))
	}
}

// ownIdentityDomain: one of our identities is for domain d.
func ownIdentityDomain(env *SMIMEEnv, d string) bool {
	for _, id := range env.Identities {
		if strings.EqualFold(id.Domain, d) {
			return true
		}
	}
	return false
}

// cmsType peeks at the content type of a CMS ContentInfo (DER or BER,
// definite or indefinite length): "enveloped", "signed" or "".
func cmsType(der []byte) string {
	if len(der) < 2 || der[0] != 0x30 {
		return ""
	}
	i := 1
	switch l := der[i]; {
	case l == 0x80:
		i++
	case l&0x80 != 0:
		i += 1 + int(l&0x7f)
	default:
		i++
	}
	if i+2 > len(der) || der[i] != 0x06 {
		return ""
	}
	n := int(der[i+1])
	if n > 16 || i+2+n > len(der) {
		return ""
	}
	oid := der[i+2 : i+2+n]
	switch {
	case bytes.Equal(oid, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03}):
		return "enveloped"
	case bytes.Equal(oid, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}):
		return "signed"
	}
	return ""
}

// contentHeaders are the Content-* headers of hs, the ones that describe
// the top-level entity.
func contentHeaders(hs []policy.Header) []policy.Header {
	var out []policy.Header
	for _, h := range hs {
		if isContentHeader(h.Name) {
			out = append(out, h)
		}
	}
	return out
}

// decodeBody undoes the entity's Content-Transfer-Encoding, bounded.
func decodeBody(hs []policy.Header, body []byte) ([]byte, error) {
	cte := ""
	if vs := policy.HeaderValues(hs, "Content-Transfer-Encoding"); len(vs) > 0 {
		cte, _ = message.TransferEncoding(vs[len(vs)-1])
	}
	var out []byte
	switch cte {
	case "base64":
		clean := make([]byte, 0, len(body))
		for _, c := range body {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
				clean = append(clean, c)
			}
		}
		out = make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, err := base64.RawStdEncoding.Decode(out, clean)
		if err != nil {
			return nil, fmt.Errorf("%w: base64: %v", errSMIMEForm, err)
		}
		out = out[:n]
	case "quoted-printable":
		b, err := io.ReadAll(io.LimitReader(quotedprintable.NewReader(bytes.NewReader(body)), smime.MaxDER+1))
		if err != nil {
			return nil, fmt.Errorf("%w: quoted-printable: %v", errSMIMEForm, err)
		}
		out = b
	case "", "7bit", "8bit", "binary":
		out = body
	default:
		return nil, fmt.Errorf("%w: unknown Content-Transfer-Encoding %q", errSMIMEForm, cte)
	}
	if len(out) > smime.MaxDER {
		return nil, fmt.Errorf("%w: %d bytes", smime.ErrTooLarge, len(out))
	}
	return out, nil
}

// splitSigned splits a multipart/signed body (RFC 8551 section 3.5.3, RFC
// 1847): the first part's bytes exactly as signed (between the CRLF after
// the first delimiter and the CRLF before the second) and the decoded
// signature of the second.
func splitSigned(body []byte, boundary string) (content, sig []byte, err error) {
	if boundary == "" || len(boundary) > 200 {
		return nil, nil, fmt.Errorf("%w: multipart/signed without a usable boundary", errSMIMEForm)
	}
	delim := []byte("--" + boundary)
	var starts []int // offsets of each delimiter line
	for off := 0; off < len(body); {
		end := bytes.IndexByte(body[off:], '\n')
		next := len(body)
		if end >= 0 {
			next = off + end + 1
		}
		line := bytes.TrimRight(body[off:next], "\r\n")
		if bytes.HasPrefix(line, delim) {
			rest := bytes.TrimRight(line[len(delim):], " \t")
			if len(rest) == 0 || bytes.Equal(rest, []byte("--")) {
				starts = append(starts, off)
				if len(rest) == 2 {
					break
				}
			}
		}
		off = next
		if len(starts) > 3 {
			break
		}
	}
	if len(starts) < 3 {
		return nil, nil, fmt.Errorf("%w: multipart/signed needs two parts", errSMIMEForm)
	}
	lineEnd := func(off int) int {
		if i := bytes.IndexByte(body[off:], '\n'); i >= 0 {
			return off + i + 1
		}
		return len(body)
	}
	partEnd := func(off int) int { // the CRLF before a delimiter belongs to it
		if off >= 2 && body[off-2] == '\r' && body[off-1] == '\n' {
			return off - 2
		}
		if off >= 1 && body[off-1] == '\n' {
			return off - 1
		}
		return off
	}
	c0, c1 := lineEnd(starts[0]), partEnd(starts[1])
	s0, s1 := lineEnd(starts[1]), partEnd(starts[2])
	if c1 < c0 || s1 < s0 {
		return nil, nil, fmt.Errorf("%w: empty part", errSMIMEForm)
	}
	content = body[c0:c1]
	shs, sbody, err := splitEntity(body[s0:s1])
	if err != nil {
		return nil, nil, err
	}
	if t := contentType(shs).Type; t != "application/pkcs7-signature" && t != "application/x-pkcs7-signature" {
		return nil, nil, fmt.Errorf("%w: second part is %q, not a pkcs7-signature", errSMIMEForm, t)
	}
	sig, err = decodeBody(shs, sbody)
	return content, sig, err
}

// splitEntity reads a MIME entity's header block and body (CRLF).
func splitEntity(b []byte) ([]policy.Header, []byte, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	hs, err := message.ReadHeaderBlock(r, 1<<20)
	if err != nil {
		return nil, nil, err
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	return hs, toCRLF(rest), nil
}

// toCRLF turns bare LF line ends into CRLF (the chain's bodies are CRLF;
// openssl and gpgsm write either).
func toCRLF(b []byte) []byte {
	bare := false
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			bare = true
			break
		}
	}
	if !bare {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// classifyInner classifies the unwrapped message again (issue 14 point 4:
// a [SECRET] inside encrypted mail is found): the outer headers that are
// not Content-* (Subject and all) and the inner entity, in a fresh scanner.
func classifyInner(opts classify.Options, outer []policy.Header, in *smimeIn) (classify.Result, error) {
	sc, err := classify.NewScanner(opts)
	if err != nil {
		return classify.Result{}, err
	}
	var b bytes.Buffer
	for _, h := range outer {
		if !isContentHeader(h.Name) && !strings.EqualFold(strings.TrimSpace(h.Name), "MIME-Version") {
			b.WriteString(message.HeaderField(h.Name, h.Value, "\r\n"))
		}
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	for _, h := range in.inner {
		b.WriteString(message.HeaderField(h.Name, h.Value, "\r\n"))
	}
	b.WriteString("\r\n")
	if _, err := sc.Write(b.Bytes()); err != nil {
		return classify.Result{}, err
	}
	if _, err := sc.Write(in.body); err != nil {
		return classify.Result{}, err
	}
	return sc.Close()
}

// UnwrapStep is the smime-unwrap transform (R88-R89): the delivered message
// carries the inner entity; its Content-* headers replace the outer ones,
// the signature and its certificates are gone with the layer.
type UnwrapStep struct {
	Inner []policy.Header
	Body  []byte
}

func (u UnwrapStep) Run(cur Current) (Change, error) {
	return Change{Edits: contentSwapEdits(cur.Headers, u.Inner), Body: bytes.NewReader(u.Body)}, nil
}

// contentSwapEdits deletes every Content-* header of hs (last first, by
// per-name index, as the milter addresses them, message.NthHeader) and adds
// the Content-* headers of entity, with MIME-Version when hs has none: the
// unwrap step puts the inner entity's in place, SMIMEStep the enveloped
// entity's.
func contentSwapEdits(hs, entity []policy.Header) []policy.HeaderEdit {
	idx := make([]int, len(hs))
	seen := map[string]int{}
	mime := false
	for i, h := range hs {
		k := strings.ToLower(h.Name)
		seen[k]++
		idx[i] = seen[k]
		mime = mime || strings.EqualFold(strings.TrimSpace(h.Name), "MIME-Version")
	}
	var edits []policy.HeaderEdit
	for i := len(hs) - 1; i >= 0; i-- {
		if isContentHeader(hs[i].Name) {
			edits = append(edits, policy.HeaderEdit{Op: policy.OpDelete, Name: hs[i].Name, Index: idx[i], Value: hs[i].Value})
		}
	}
	if !mime {
		edits = append(edits, policy.HeaderEdit{Op: policy.OpAdd, Name: "MIME-Version", Value: "1.0"})
	}
	for _, h := range entity {
		if isContentHeader(h.Name) {
			edits = append(edits, policy.HeaderEdit{Op: policy.OpAdd, Name: strings.TrimRight(h.Name, " \t"), Value: strings.TrimLeft(h.Value, " \t")})
		}
	}
	return edits
}

// inboundSMIME runs InboundSMIME on an inbound message when smime.mode is
// on, and with an inner entity classifies it again: its result replaces
// the outer scan's, which only saw encryption. An error is the scanner's
// own failure (tempfail), never a decision about the message.
func (t *Transaction) inboundSMIME(x *policy.Transaction) error {
	if t.st.SMIME == nil || t.pol.Direction(t.conn, t.env) != policy.Inbound {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), CheckTimeout)
	defer cancel()
	in := InboundSMIME(ctx, t.st.SMIME, t.raw, t.body.Reader())
	if in == nil {
		return nil
	}
	t.smimeIn = in
	facts := in.facts
	x.SMIMEIn = &facts
	if !in.facts.Unwrapped {
		return nil
	}
	res, err := classifyInner(t.st.classifyOptions(), t.raw, in)
	if err != nil {
		return err
	}
	x.Classification, x.RSVPDR, x.Unreadable = res.Classification, res.RSVPDR, res.Unreadable
	return nil
}

// SMIMEIn is what the inbound S/MIME path found at end of message (a
// copy), nil when the message was not S/MIME or was not opened. The
// milter records it for a peer's ping answer (selftest --peers, R19, R98).
func (t *Transaction) SMIMEIn() *policy.SMIMEInbound {
	if t.smimeIn == nil {
		return nil
	}
	f := t.smimeIn.facts
	return &f
}
