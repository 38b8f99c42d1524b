package smime

import (
	"bytes"
	"encoding/base64"
)

// RFC 8551 section 3: the MIME forms of CMS objects.

// EnvelopedEntity is an application/pkcs7-mime enveloped-data entity (RFC
// 8551 section 3.2) holding der, base64 in 76-column CRLF lines.
func EnvelopedEntity(der []byte) []byte {
	return entity("enveloped-data", der)
}

// SignedEntity is an application/pkcs7-mime signed-data entity (opaque
// signing, RFC 8551 section 3.5.2).
func SignedEntity(der []byte) []byte {
	return entity("signed-data", der)
}

func entity(smimeType string, der []byte) []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: application/pkcs7-mime; smime-type=" + smimeType + "; name=\"smime.p7m\"\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n")
	writeBase64(&b, der)
	return b.Bytes()
}

// writeBase64 writes data in base64 lines of 76 characters, CRLF ended
// (RFC 2045 section 6.8).
func writeBase64(b *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	if enc != "" {
		b.WriteString(enc)
		b.WriteString("\r\n")
	}
}

// DetachedEntity is a multipart/signed entity (RFC 8551 section 3.5.3):
// content (a MIME entity in canonical CRLF form, signed byte for byte) and
// the detached signature sig, separated by boundary.
func DetachedEntity(content, sig []byte, boundary string) []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n boundary=\"" + boundary + "\"\r\n\r\n")
	b.WriteString("This is an S/MIME signed message\r\n\r\n--" + boundary + "\r\n")
	b.Write(content)
	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n")
	writeBase64(&b, sig)
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes()
}
