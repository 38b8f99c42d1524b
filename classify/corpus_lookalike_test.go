package classify

// Markings spelt with Greek or Cyrillic capitals that look Latin, as a
// reader sees them (normalise.go latinLookalike), and text in those
// scripts that must stay unmarked.
func init() {
	fixtures = append(fixtures,
		fixture{name: "lookalike-cyrillic-es", want: "SECRET", msg: head("lookalike-cyrillic-es") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nThis is [SE\u0421RET] for the team.\n"},
		fixture{name: "lookalike-greek-top", want: "TOP SECRET", msg: head("lookalike-greek-top") +
			"Subject: [\u03a4\u039f\u03a1 SECRET] budget\nMIME-Version: 1.0\nContent-Type: text/plain\n\nhi\n"},
		fixture{name: "lookalike-cyrillic-koi8", want: "RESTRICTED", msg: head("lookalike-cyrillic-koi8") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n\n[R\xe5STRI\xf3T\xe5D]\n", lf: false},
		fixture{name: "lookalike-russian-text", want: "UNCLASSIFIED", msg: head("lookalike-russian-text") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n[\u0421\u0415\u041a\u0420\u0415\u0422\u041d\u041e] \u0438 [\u0422\u041e\u0420]\n"},
		// Brackets a reader takes for square ones.
		fixture{name: "lookalike-brackets", want: "TOP SECRET", msg: head("lookalike-brackets") +
			"Subject: \u3014SECRET\u3015 plan\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nSee \u27e6TOP SECRET\u27e7 and \u3010RESTRICTED\u3011 and \u2045IN-CONFIDENCE\u2046.\n"},
		// Latin small capitals, read as capitals.
		fixture{name: "lookalike-small-capitals", want: "SECRET", msg: head("lookalike-small-capitals") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nSee [\ua731\u1d07\u1d04\u0280\u1d07\u1d1b] and [\u1d04\u1d0f\u0274\ua730\u026a\u1d05\u1d07\u0274\u1d1b\u026a\u1d00\u029f].\n"},
		fixture{name: "lookalike-greek-text", want: "UNCLASSIFIED", msg: head("lookalike-greek-text") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n[\u0391\u03a1\u03a7\u0395\u0399\u039f] [\u039c\u0397 \u0391\u03a0\u039f\u03a1\u03a1\u0397\u03a4\u039f]\n"},
	)
}

// A marking in an attachment's file name is seen by the reader whatever
// R34 says of the content (mime.go bodyStage); RFC 2231 and RFC 2047 names
// too.
func init() {
	fixtures = append(fixtures,
		fixture{name: "attname-pdf", want: "SECRET", wantAttach: "SECRET", msg: head("attname-pdf") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b1\n\n--b1\nContent-Type: text/plain\n\nsee attached\n" +
			"--b1\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"[SECRET] plan.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b1--\n"},
		fixture{name: "attname-rfc2231", want: "TOP SECRET", msg: head("attname-rfc2231") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b1\n\n--b1\nContent-Type: text/plain\n\nsee attached\n" +
			"--b1\nContent-Type: application/octet-stream\nContent-Disposition: attachment;\n filename*0*=utf-8''%5BTOP%20SEC;\n filename*1*=RET%5D%20notes.bin\n\nAAAA\n--b1--\n"},
		fixture{name: "attname-rfc2047", want: "CONFIDENTIAL", msg: head("attname-rfc2047") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b1\n\n--b1\nContent-Type: text/plain\n\nsee attached\n" +
			"--b1\nContent-Type: image/png; name=\"=?utf-8?q?=5BCONFIDENTIAL=5D_chart.png?=\"\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b1--\n"},
		fixture{name: "attname-unmarked", want: "UNCLASSIFIED", msg: head("attname-unmarked") +
			"Subject: plan\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b1\n\n--b1\nContent-Type: text/plain\n\nsee attached\n" +
			"--b1\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"[draft] secret plan.pdf\"\n\nJVBERi0xLjQK\n--b1--\n"},
	)
}
