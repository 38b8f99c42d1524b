#!/usr/bin/env python3
"""Writes testdata/notify/in/*.eml, the messages notify's warning-mode tests
and fuzz seeds use. Run from this directory; the files are committed, so this
is needed only to change them."""
import base64
import os

os.makedirs("in", exist_ok=True)


def w(name, text, eol="\r\n"):
    data = text.replace("\r\n", "\n").replace("\n", eol)
    with open(os.path.join("in", name), "wb") as f:
        f.write(data.encode("utf-8"))


hdr = """From: Alice Example <alice@example.org>
To: Bob <bob@agency.govt.nz>
Cc: carol@agency.govt.nz
Date: Mon, 01 Jan 2024 10:00:00 +1300
Subject: {subject}
Message-ID: <{mid}@example.org>
Reply-To: alice.replies@example.org
Received: from mx.example.org (mx.example.org [192.0.2.1])
\tby mx.agency.govt.nz (Postfix) with ESMTPS id 4T0ABC; Mon, 01 Jan 2024 10:00:01 +1300
"""

w("simple-ascii.eml", hdr.format(subject="Quarterly figures", mid="simple") +
"""Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hello Bob,

The figures are attached.
-- 
Alice
""")

w("no-mime.eml", hdr.format(subject="No MIME at all", mid="nomime") +
"""
Plain RFC 5322 message without any MIME header.
""")

w("latin1-qp.eml", hdr.format(subject="=?iso-8859-1?q?Caf=E9?=", mid="latin1") +
"""MIME-Version: 1.0
Content-Type: text/plain; charset="ISO-8859-1"; format=flowed
Content-Transfer-Encoding: quoted-printable

Bonjour, le caf=E9 est pr=EAt.=20
Une tr=E8s longue ligne qui d=E9passe la limite de soixante-seize caract=E8=
res par ligne.
""")

body1252 = "Kia ora \u2013 na\u00efve r\u00e9sum\u00e9\r\nSecond line\r\n".encode("cp1252")
b = base64.encodebytes(body1252).decode()
w("win1252-base64.eml", hdr.format(subject="Windows text", mid="win1252") +
"""MIME-Version: 1.0
Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: base64

""" + b)

body16 = "Kia ora koutou\r\n".encode("utf-16")
b16 = base64.encodebytes(body16).decode()
w("utf16-base64.eml", hdr.format(subject="UTF-16", mid="utf16") +
"""MIME-Version: 1.0
Content-Type: text/plain; charset=utf-16
Content-Transfer-Encoding: base64

""" + b16)

w("alternative.eml", hdr.format(subject="[IN-CONFIDENCE] Budget", mid="alt") +
"""MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-1"

This is a multi-part message in MIME format.
--alt-1
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 budget [IN-CONFIDENCE]
--alt-1
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<html><head><title>x</title></head>
<BODY bgcolor=3D"#ffffff" data-x=3D"a>b">
<p>Caf=E9 budget [IN-CONFIDENCE]</p>
</BODY></html>
--alt-1--
epilogue text
""")

pdf = base64.encodebytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n").decode()
w("mixed-attachments.eml", hdr.format(subject="Report and attachments", mid="mixed") +
"""MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mix-outer"

--mix-outer
Content-Type: multipart/alternative; boundary="mix-inner"

--mix-inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

T\u0113n\u0101 koe, the report is attached.
--mix-inner
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 8bit

<p>T\u0113n\u0101 koe, the report is attached.</p>
--mix-inner--

--mix-outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

""" + pdf + """--mix-outer
Content-Type: text/plain; charset=us-ascii; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

These notes are an attachment and must not get a banner.
--mix-outer
Content-Type: message/rfc822

From: someone@example.net
To: alice@example.org
Subject: forwarded
Content-Type: text/plain

A forwarded message: no banner inside it.
--mix-outer--
""")

w("html-only.eml", hdr.format(subject="HTML only", mid="html") +
"""MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>No body tag here. Kia ora =E2=80=93 ka kite.</p>
""")

w("signed.eml", hdr.format(subject="Signed", mid="signed") +
"""MIME-Version: 1.0
Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"

--sig
Content-Type: text/plain; charset=us-ascii

Signed text.
--sig
Content-Type: application/pkcs7-signature; name=smime.p7s
Content-Transfer-Encoding: base64

MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIID
--sig--
""")

w("lf-only.eml", hdr.format(subject="Unix line ends", mid="lf") +
"""MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Line one
Line two =E2=9C=93
""", eol="\n")

w("eightbit-body.eml", hdr.format(subject="8bit body", mid="8bit") +
"""MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

M\u0101ori macrons: \u0101 \u0113 \u012b \u014d \u016b
""")
