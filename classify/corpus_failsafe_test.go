package classify

// Golden corpus cases for issue 11 points 1, 2, 5 (MIME parameters) and
// 6: every place where the scanner cannot read all of a part it would
// scan reports Result.Unreadable, and what it can read is still read;
// ordinary mail stays readable.

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// nested returns n multiparts nested in each other around a text part.
func nested(n int, text string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		d := "n" + strings.Repeat("x", i)
		b.WriteString("Content-Type: multipart/mixed; boundary=\"" + d + "\"\n\n--" + d + "\n")
	}
	b.WriteString("Content-Type: text/plain\n\n" + text + "\n")
	for i := n - 1; i >= 0; i-- {
		b.WriteString("--n" + strings.Repeat("x", i) + "--\n")
	}
	return b.String()
}

// badCRC is tnefCompressed with the CRC of its compressed RTF changed.
func badCRC() []byte {
	b := bytes.Clone(tnefCompressed)
	i := bytes.Index(b, []byte("LZFu"))
	binary.LittleEndian.PutUint32(b[i+4:], binary.LittleEndian.Uint32(b[i+4:])^0x5A5A)
	return b
}

// badChecksum is tnefCompressed with one byte of its message class
// changed, so that the TNEF checksum of that attribute is wrong.
func badChecksum() []byte {
	b := bytes.Clone(tnefCompressed)
	i := bytes.Index(b, []byte("Mail.Note"))
	b[i+len("Mail.Not")] = 'X'
	return b
}

// smimeEntity is the MIME entity an Outlook-style client signs.
const smimeEntity = "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
	"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe budget is [SECRET] until Thursday.\r\n" +
	"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The budget is [SECRET] until Thursday.</p>\r\n--alt--\r\n"

const longBoundary = "----=_NextPart_" // repeated to make boundaries over 70 characters

func init() {
	fixtures = append(fixtures,
		// Nesting (MaxDepth).
		fixture{name: "failsafe-depth", want: "SECRET", unreadable: true, msg: head("failsafe-depth") +
			"Subject: deep\nMIME-Version: 1.0\n" + nested(MaxDepth+3, "[SECRET] at the bottom")},
		fixture{name: "failsafe-depth-ok", want: "SECRET", msg: head("failsafe-depth-ok") +
			"Subject: deep\nMIME-Version: 1.0\n" + nested(10, "[SECRET] at the bottom")},

		// Boundaries (RFC 2046 section 5.1.1, RFC 2231).
		fixture{name: "failsafe-boundary-long", want: "CONFIDENTIAL", msg: head("failsafe-boundary-long") +
			"Subject: long boundary\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=\"" + strings.Repeat(longBoundary, 12) + "\"\n\n" +
			"--" + strings.Repeat(longBoundary, 12) + "\nContent-Type: text/plain\n\nA 180-character boundary is read: [CONFIDENTIAL]\n" +
			"--" + strings.Repeat(longBoundary, 12) + "--\n"},
		fixture{name: "failsafe-boundary-too-long", want: "SECRET", unreadable: true, msg: head("failsafe-boundary-too-long") +
			"Subject: overlong boundary\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=" + strings.Repeat("b", MaxBoundary+1) + "\n\n" +
			"--" + strings.Repeat("b", MaxBoundary+1) + "\nContent-Type: text/plain\n\n[SECRET] read as plain text\n" +
			"--" + strings.Repeat("b", MaxBoundary+1) + "--\n"},
		fixture{name: "failsafe-boundary-dup", want: "TOP SECRET", unreadable: true, msg: head("failsafe-boundary-dup") +
			"Subject: two boundaries\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"one\"; boundary=\"two\"\n\n" +
			"--one\nContent-Type: text/plain\n\nRead with the first: [SECRET]\n--one--\n" +
			"--two\nContent-Type: text/plain\n\nA client taking the second sees [TOP SECRET] only there.\n--two--\n"},
		fixture{name: "failsafe-boundary-dup-same", want: "SECRET", msg: head("failsafe-boundary-dup-same") +
			"Subject: the same boundary twice\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"one\"; boundary=one\n\n" +
			"--one\nContent-Type: text/plain\n\n[SECRET]\n--one--\n"},
		fixture{name: "failsafe-boundary-rfc2231", want: "TOP SECRET", msg: head("failsafe-boundary-rfc2231") +
			"Subject: continuations\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary*0=\"part\";\n boundary*1*=%2D%41;\n boundary*2=\"B\"\n\n" +
			"--part-AB\nContent-Type: text/plain\n\n[TOP SECRET]\n--part-AB--\n"},
		fixture{name: "failsafe-boundary-charset", want: "RESTRICTED", msg: head("failsafe-boundary-charset") +
			"Subject: boundary in a charset Go does not decode\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary*=iso-8859-1'en'caf%E9-%A7\n\n" +
			"--caf\xe9-\xa7\nContent-Type: text/plain\n\n[RESTRICTED]\n--caf\xe9-\xa7--\n"},
		fixture{name: "failsafe-boundary-missing", want: "SENSITIVE", unreadable: true, msg: head("failsafe-boundary-missing") +
			"Subject: no boundary\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"\"\n\n--\n\n[SENSITIVE]\n"},
		fixture{name: "failsafe-boundary-unmatched", want: "SECRET", unreadable: true, msg: head("failsafe-boundary-unmatched") +
			"Subject: the boundary never occurs\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"xyz\"\n\n" +
			"--xyz \tjunk\nContent-Type: text/plain\n\n[SECRET] in what the scanner takes for the preamble\n"},
		fixture{name: "failsafe-unclosed", want: "SECRET", unreadable: true, msg: head("failsafe-unclosed") +
			"Subject: cut off\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"u\"\n\n" +
			"--u\nContent-Type: text/plain\n\n[SECRET] and then the message ends\n"},
		fixture{name: "failsafe-unclosed-inner", want: "CONFIDENTIAL", msg: head("failsafe-unclosed-inner") +
			"Subject: inner multipart ended by the outer one\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"o\"\n\n" +
			"--o\nContent-Type: multipart/alternative; boundary=\"i\"\n\n--i\nContent-Type: text/plain\n\n[CONFIDENTIAL]\n" +
			"--o\nContent-Type: text/plain\n\nsecond part\n--o--\n"},
		fixture{name: "failsafe-empty-multipart", want: "IN-CONFIDENCE", msg: head("failsafe-empty-multipart") +
			"Subject: [IN-CONFIDENCE] empty\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"e\"\n\n\n"},

		// MIME fields given twice.
		fixture{name: "failsafe-dup-content-type", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-dup-content-type") +
			"Subject: two types\nMIME-Version: 1.0\nContent-Type: text/plain\nContent-Type: multipart/mixed; boundary=\"x\"\n\n" +
			"--x\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + b64Lines([]byte("[SECRET]")) + "--x--\n"},
		fixture{name: "failsafe-dup-cte", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-dup-cte") +
			"Subject: two encodings\nMIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines([]byte("[SECRET]"))},
		fixture{name: "failsafe-dup-disposition", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-dup-disposition") +
			"Subject: two dispositions\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"x\"\n\n--x\nContent-Type: text/plain\n\nhello\n" +
			"--x\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\nContent-Disposition: inline\n\n[SECRET]\n--x--\n"},
		fixture{name: "failsafe-dup-same", want: "SECRET", msg: head("failsafe-dup-same") +
			"Subject: the same type twice\nMIME-Version: 1.0\nContent-Type: text/plain\nContent-Type: text/plain;\n charset=\"US-ASCII\"\n\n[SECRET]\n"},
		fixture{name: "failsafe-uuencode-cte", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-uuencode-cte") +
			"Subject: uuencoded part\nMIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\n" +
			"begin 644 note.txt\n(6U-%0U)%5%T`\n`\nend\n"},

		fixture{name: "failsafe-message-partial", want: "IN-CONFIDENCE", unreadable: true, msg: head("failsafe-message-partial") +
			"Subject: part 1 of 2\nMIME-Version: 1.0\nContent-Type: message/partial; id=\"abc@agency.govt.nz\"; number=1; total=2\n\n" +
			"Subject: [IN-CONFIDENCE] the whole\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nW1NFQ1JF\n"},

		// Decoding.
		fixture{name: "failsafe-qp-malformed", want: "SECRET", msg: head("failsafe-qp-malformed") +
			"Subject: qp\nMIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"100% =ZZ sure: [SECRET] = x\n"},
		fixture{name: "failsafe-unknown-cte", want: "SECRET", msg: head("failsafe-unknown-cte") +
			"Subject: cte\nMIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: x-custom\n\n[SECRET] shown raw\n"},
		fixture{name: "failsafe-tnef-crc", want: "SECRET", unreadable: true, msg: head("failsafe-tnef-crc") +
			"Subject: crc\nMIME-Version: 1.0\nContent-Type: application/ms-tnef\nContent-Transfer-Encoding: base64\n\n" + b64Lines(badCRC())},
		fixture{name: "failsafe-tnef-checksum", want: "SECRET", msg: head("failsafe-tnef-checksum") +
			"Subject: checksum\nMIME-Version: 1.0\nContent-Type: application/ms-tnef\nContent-Transfer-Encoding: base64\n\n" + b64Lines(badChecksum())},

		// Encrypted content (RFC 8551, RFC 3156, RFC 9580).
		fixture{name: "failsafe-smime-enveloped", want: "IN-CONFIDENCE", unreadable: true, msg: head("failsafe-smime-enveloped") +
			"Subject: [IN-CONFIDENCE] encrypted\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n" +
			"Content-Disposition: attachment; filename=smime.p7m\nContent-Transfer-Encoding: base64\n\n" + b64Lines(cmsObject(oidEnvelopedData))},
		fixture{name: "failsafe-smime-enveloped-oid", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-smime-enveloped-oid") +
			"Subject: encrypted, no smime-type\nMIME-Version: 1.0\nContent-Type: application/x-pkcs7-mime; name=smime.p7m\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64Lines(cmsObject(oidEnvelopedData))},
		fixture{name: "failsafe-smime-authenveloped", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-smime-authenveloped") +
			"Subject: AES-GCM\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=authEnveloped-data\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64Lines(cmsObject(oidAuthEnveloped))},
		fixture{name: "failsafe-smime-octet-enveloped", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-smime-octet-enveloped") +
			"Subject: octet-stream smime.p7m\nMIME-Version: 1.0\nContent-Type: application/octet-stream; name=smime.p7m\n" +
			"Content-Disposition: attachment; filename=smime.p7m\nContent-Transfer-Encoding: base64\n\n" + b64Lines(cmsObject(oidEnvelopedData))},
		fixture{name: "failsafe-pgp-mime", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-pgp-mime") +
			"Subject: PGP/MIME\nMIME-Version: 1.0\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"pgp\"\n\n" +
			"--pgp\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n" +
			"--pgp\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\n\n-----BEGIN PGP MESSAGE-----\n\nhQEMA3x...\n-----END PGP MESSAGE-----\n--pgp--\n"},
		fixture{name: "failsafe-pgp-inline", want: "IN-CONFIDENCE", unreadable: true, msg: head("failsafe-pgp-inline") +
			"Subject: inline PGP\nMIME-Version: 1.0\nContent-Type: text/plain\n\n[IN-CONFIDENCE] cover note\n\n" +
			"-----BEGIN PGP MESSAGE-----\n\nhQEMA3xKq2mP0xyzAQf/ZmFrZSBjaXBoZXJ0ZXh0\n=abcd\n-----END PGP MESSAGE-----\n"},
		fixture{name: "failsafe-pgp-clearsigned", want: "SECRET", msg: head("failsafe-pgp-clearsigned") +
			"Subject: clear-signed\nMIME-Version: 1.0\nContent-Type: text/plain\n\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" +
			"[SECRET] readable text\n-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n"},
		fixture{name: "failsafe-pgp-attachment", want: "UNCLASSIFIED", wantAttach: "UNCLASSIFIED", unreadableAttach: true, msg: head("failsafe-pgp-attachment") +
			"Subject: an encrypted file attached\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"a\"\n\n" +
			"--a\nContent-Type: text/plain\n\nSee attached.\n" +
			"--a\nContent-Type: application/pgp-encrypted; name=\"notes.txt.pgp\"\nContent-Disposition: attachment; filename=\"notes.txt.pgp\"\n\n\x85\x01\x0c\x03\n--a--\n"},

		// Opaque-signed S/MIME (point 2): the signed entity is scanned.
		fixture{name: "failsafe-smime-signed", want: "SECRET", msg: head("failsafe-smime-signed") +
			"Subject: opaque signed\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\n" +
			"Content-Disposition: attachment; filename=\"smime.p7m\"\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(berIndefinite(signedData([]byte(smimeEntity))))},
		fixture{name: "failsafe-smime-signed-no-type", want: "TOP SECRET", msg: head("failsafe-smime-signed-no-type") +
			"Subject: opaque signed, header protection\nMIME-Version: 1.0\nContent-Type: application/x-pkcs7-mime; name=smime.p7m\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(signedData([]byte("Content-Type: message/rfc822\r\n\r\nSubject: [TOP SECRET] inner subject\r\nContent-Type: text/plain\r\n\r\nInner body.\r\n")))},
		fixture{name: "failsafe-smime-signed-octet", want: "SECRET", msg: head("failsafe-smime-signed-octet") +
			"Subject: octet-stream smime.p7m\nMIME-Version: 1.0\nContent-Type: application/octet-stream; name=smime.p7m\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(signedData([]byte(smimeEntity)))},
		fixture{name: "failsafe-smime-signed-in-multipart", want: "SECRET", msg: head("failsafe-smime-signed-in-multipart") +
			"Subject: signed part\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"m\"\n\n" +
			"--m\nContent-Type: text/plain\n\nCover note.\n" +
			"--m\nContent-Type: application/pkcs7-mime; smime-type=signed-data\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(signedData([]byte(smimeEntity))) + "--m--\n"},
		fixture{name: "failsafe-smime-signed-twice", want: "CONFIDENTIAL", msg: head("failsafe-smime-signed-twice") +
			"Subject: signed inside signed\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=signed-data\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(signedData([]byte("Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
				b64Lines(signedData([]byte("Content-Type: text/plain\r\n\r\nInner [CONFIDENTIAL]\r\n"))))))},
		fixture{name: "failsafe-smime-signed-enveloped", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-smime-signed-enveloped") +
			"Subject: encrypted inside signed\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=signed-data\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(signedData([]byte("Content-Type: application/pkcs7-mime; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
				b64Lines(cmsObject(oidEnvelopedData)))))},
		fixture{name: "failsafe-smime-garbage", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-smime-garbage") +
			"Subject: broken S/MIME\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=signed-data\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(append([]byte{0x30, 0x82, 0x7F, 0xFF, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02, 0xA0}, "[SECRET] garbage"...))},
		fixture{name: "failsafe-smime-truncated", want: "UNCLASSIFIED", unreadable: true, msg: head("failsafe-smime-truncated") +
			"Subject: cut S/MIME\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=signed-data\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(signedData([]byte(smimeEntity))[:600])},
		fixture{name: "failsafe-smime-certs-only", want: "UNCLASSIFIED", msg: head("failsafe-smime-certs-only") +
			"Subject: my certificate\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=certs-only; name=smime.p7c\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(certsOnly())},
		fixture{name: "failsafe-smime-detached", want: "SECRET", msg: head("failsafe-smime-detached") +
			"Subject: detached signature\nMIME-Version: 1.0\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"s\"\n\n" +
			"This is a cryptographically signed message in MIME format.\n\n" +
			"--s\nContent-Type: text/plain; charset=utf-8\n\nThe budget is [SECRET].\n" +
			"--s\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\nContent-Disposition: attachment; filename=\"smime.p7s\"\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(detachedSignature([]byte("Content-Type: text/plain; charset=utf-8\r\n\r\nThe budget is [SECRET].\r\n"))) + "--s--\n"},
		fixture{name: "failsafe-p7m-document", want: "UNCLASSIFIED", wantAttach: "CONFIDENTIAL", msg: head("failsafe-p7m-document") +
			"Subject: signed document attached\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"d\"\n\n" +
			"--d\nContent-Type: text/plain\n\nSee the signed file.\n" +
			"--d\nContent-Type: application/octet-stream; name=\"minutes.txt.p7m\"\nContent-Disposition: attachment; filename=\"minutes.txt.p7m\"\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(signedData([]byte("Minutes [CONFIDENTIAL]\r\n"))) + "--d--\n"},

		// A forwarded message is the sender's content (point 6).
		fixture{name: "failsafe-rfc822-inline", want: "TOP SECRET", msg: head("failsafe-rfc822-inline") +
			"Subject: Fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"f\"\n\n--f\nContent-Type: text/plain\n\nSee below.\n" +
			"--f\nContent-Type: message/rfc822\nContent-Disposition: inline\n\nSubject: [TOP SECRET] plan\n\nbody\n--f--\n"},
		fixture{name: "failsafe-rfc822-unnamed-attachment", want: "SENSITIVE", msg: head("failsafe-rfc822-unnamed-attachment") +
			"Subject: Fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"f\"\n\n--f\nContent-Type: text/plain\n\nAttached.\n" +
			"--f\nContent-Type: message/rfc822\nContent-Disposition: attachment\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines([]byte("Subject: old\r\nContent-Type: text/plain\r\n\r\nThe [SENSITIVE] bit.\r\n")) + "--f--\n"},
		fixture{name: "failsafe-dsn-text", want: "RESTRICTED", msg: head("failsafe-dsn-text") +
			"Subject: report\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\n\n" +
			"--r\nContent-Type: text/plain\n\nDelivery failed.\n" +
			"--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.agency.govt.nz\nX-Note: [RESTRICTED]\n\n" +
			"Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.1.1\n--r--\n"},
		fixture{name: "failsafe-eml-file", want: "UNCLASSIFIED", wantAttach: "SECRET", msg: head("failsafe-eml-file") +
			"Subject: a saved message as a file\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"f\"\n\n--f\nContent-Type: text/plain\n\nAttached.\n" +
			"--f\nContent-Type: application/octet-stream; name=\"old.eml\"\nContent-Disposition: attachment; filename=\"old.eml\"\n\nSubject: [SECRET]\n\nx\n--f--\n"},
	)
}
