package classify

// Golden corpus cases for issue 11 points 3, 4 and 5 (text as a reader
// sees it, both views of styled text, parsers that agree with clients).

import (
	"golang.org/x/text/encoding/japanese"
)

// Bodies built once.
var (
	// A Shift_JIS body: "ー" is 0x81 0x5B, whose trail byte is '[' in
	// ASCII; after decoding it is no bracket. The real marking is ASCII.
	sjisTrail = func() string {
		b, _ := japanese.ShiftJIS.NewEncoder().String("\u30fcSECRET] \u30c6\u30b9\u30c8\n")
		return b
	}()
	sjisMarked = func() string {
		b, _ := japanese.ShiftJIS.NewEncoder().String("\u30c6\u30b9\u30c8 [CONFIDENTIAL] \u30fc\u30fc\n")
		return b
	}()
	// RTF that encapsulates HTML, in TNEF as Outlook sends HTML mail: the
	// RTF view reads [SECxRET], the HTML Outlook renders hides the x.
	tnefHTMLTag = winmail(lzfuCompress([]byte(`{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}}`+
		`{\*\htmltag19 <html>}{\*\htmltag34 <body>}{\*\htmltag64 <p>}\htmlrtf {\htmlrtf0 `+
		`Minutes: [SEC{\*\htmltag84 <span style="display:none">}\htmlrtf {\htmlrtf0 x\htmlrtf }\htmlrtf0 {\*\htmltag92 </span>}RET]`+
		`\htmlrtf\par}\htmlrtf0{\*\htmltag72 </p>}{\*\htmltag42 </body>}{\*\htmltag27 </html>}}`)), nil)
	// The same with the marking only in an HTML comment: no reader sees it.
	tnefHTMLComment = winmail(lzfuCompress([]byte(`{\rtf1\ansi\fromhtml1 {\*\htmltag64 <p>}Hello`+
		`{\*\htmltag0 <!-- [SECRET] -->}{\*\htmltag72 </p>}}`)), nil)
)

func init() {
	const textUTF8 = "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
	const htmlUTF8 = "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
	fixtures = append(fixtures,
		// Point 3: invisible characters, spaces, compatibility forms.
		fixture{name: "text-zwsp-soft-hyphen", want: "SECRET", msg: head("text-zwsp-soft-hyphen") +
			"Subject: [IN-\u200bCONFIDENCE] minutes\n" + textUTF8 +
			"Zero width space [SEC\u200bRET], soft hyphen [CONFI\u00adDENTIAL], joiners [RESTRI\u200d\u200cCTED],\n" +
			"word joiner [SENS\u2060ITIVE], grapheme joiner [S\u034fECRET], BOM [\ufeffSECRET], variation selector [SECRET\ufe0f].\n"},
		fixture{name: "text-zwsp-not-a-space", want: "UNCLASSIFIED", msg: head("text-zwsp-not-a-space") +
			"Subject: notes\n" + textUTF8 +
			"An invisible character is no space: [TOP\u200bSECRET] [TOP\u00adSECRET]; nor does it make lower case upper: [sec\u200bret]\n"},
		fixture{name: "text-bidi", want: "TOP SECRET", msg: head("text-bidi") +
			"Subject: bidi\n" + textUTF8 +
			"Displayed right to left: [\u202eTERCES POT\u202c] \u202e[LAITNEDIFNOC]\u202c; controls removed: [\u2066SENSITIVE\u2069] [SEC\u200fRET] [RESTR\u061cICTED]\n"},
		fixture{name: "text-bidi-lower", want: "UNCLASSIFIED", msg: head("text-bidi-lower") +
			"Subject: bidi\n" + textUTF8 + "[\u2066secret\u2069] [\u202aTop Secret\u202c]; displayed as [TERCES]: [\u202eSECRET\u202c]\n"},
		fixture{name: "text-spaces", want: "TOP SECRET", msg: head("text-spaces") +
			"Subject: [TOP\u00a0SECRET] in the subject\n" + textUTF8 +
			"No-break space [TOP\u00a0SECRET], ideographic space [TOP\u3000SECRET], em space [TOP\u2003SECRET],\n" +
			"double space [TOP  SECRET], tab [TOP\tSECRET], line break [TOP\n SECRET], padded [ SENSITIVE ].\n"},
		fixture{name: "text-spaces-not-a-marking", want: "UNCLASSIFIED", msg: head("text-spaces-not-a-marking") +
			"Subject: spaces\n" + textUTF8 +
			"A space inside a word splits it: [SEC RET] [SEC\u00a0RET]; a line break before the bracket: [SECRET\n] [\nSECRET]\n"},
		fixture{name: "text-fullwidth", want: "TOP SECRET", msg: head("text-fullwidth") +
			"Subject: =?utf-8?b?77y777yz77yl77yj77yy77yl77y077y9?=\n" + textUTF8 +
			"Full width: \uff3b\uff23\uff2f\uff2e\uff26\uff29\uff24\uff25\uff2e\uff34\uff29\uff21\uff2c\uff3d and \uff3bTOP\u3000SECRET\uff3d\n"},
		fixture{name: "text-fullwidth-lower", want: "UNCLASSIFIED", msg: head("text-fullwidth-lower") +
			"Subject: full width\n" + textUTF8 +
			"Folded, full-width lower case is still lower case (R30): \uff3b\uff53\uff45\uff43\uff52\uff45\uff54\uff3d \uff3bSecret\uff3d\n"},
		fixture{name: "text-shift-jis-trail", want: "UNCLASSIFIED", msg: head("text-shift-jis-trail") +
			"Subject: sjis\nMIME-Version: 1.0\nContent-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: 8bit\n\n" + sjisTrail},
		fixture{name: "text-shift-jis", want: "CONFIDENTIAL", msg: head("text-shift-jis") +
			"Subject: sjis\nMIME-Version: 1.0\nContent-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: 8bit\n\n" + sjisMarked},

		// Point 4: both views of styled text.
		fixture{name: "text-html-hidden-split", want: "SECRET", msg: head("text-html-hidden-split") +
			"Subject: html\n" + htmlUTF8 +
			"<p>Minutes [SEC<span style=\"display:none\">x</span>RET] and [CONFI<span style=\"visibility:hidden\">-</span>DENTIAL]</p>\n"},
		fixture{name: "text-html-hidden-whole", want: "TOP SECRET", msg: head("text-html-hidden-whole") +
			"Subject: html\n" + htmlUTF8 +
			"<p>Nothing to see.</p><div style=\"display: none !important; mso-hide: all\">[TOP SECRET]</div><span hidden>[SENSITIVE]</span>\n"},
		fixture{name: "text-html-hidden-lower", want: "UNCLASSIFIED", msg: head("text-html-hidden-lower") +
			"Subject: html\n" + htmlUTF8 +
			"<p>[sec<span style=\"display:none\">RET</span>] <span style=\"display:none\">[secret]</span></p>\n"},
		fixture{name: "text-html-class-hidden", want: "CONFIDENTIAL", msg: head("text-html-class-hidden") +
			"Subject: html\n" + htmlUTF8 +
			"<html><head><style>\n.MsoNormal { margin: 0 }\nspan.hide, .x-gone { display: none !important }\n</style></head>\n" +
			"<body><p class=MsoNormal>[CONFI<span class=hide>x</span>DENTIAL] <span class=\"a x-gone\">[secret]</span></p></body></html>\n"},
		fixture{name: "text-html-uppercase", want: "CONFIDENTIAL", msg: head("text-html-uppercase") +
			"Subject: html\n" + htmlUTF8 +
			"<p style=\"text-transform: uppercase\">status: [confidential]</p>\n"},
		fixture{name: "text-html-lowercase", want: "UNCLASSIFIED", msg: head("text-html-lowercase") +
			"Subject: html\n" + htmlUTF8 +
			"<p style=\"text-transform: lowercase\">status: [confidential]</p><p style=\"text-transform:capitalize\">[secret]</p>\n"},
		fixture{name: "text-html-mso", want: "RESTRICTED", msg: head("text-html-mso") +
			"Subject: outlook\n" + htmlUTF8 +
			"<html><body><!--[if mso]><table><tr><td>[RESTRICTED]</td></tr></table><![endif]--><p>Hello</p></body></html>\n"},
		fixture{name: "text-html-mso-revealed", want: "SECRET", msg: head("text-html-mso-revealed") +
			"Subject: outlook\n" + htmlUTF8 +
			"<p>Outlook shows [SEC<!--[if !mso]><!-->x<!--<![endif]-->RET]; other clients show the x.</p>\n"},
		fixture{name: "text-html-comment", want: "UNCLASSIFIED", msg: head("text-html-comment") +
			"Subject: comment\n" + htmlUTF8 +
			"<html><body><!-- [RESTRICTED] --><p>Hello</p><!-- [SECRET] -- > still a comment</body></html>\n"},
		fixture{name: "text-rtf-hidden", want: "SECRET", msg: head("text-rtf-hidden") +
			"Subject: rtf\nMIME-Version: 1.0\nContent-Type: text/rtf\n\n" +
			`{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}\pard Split: [SEC{\v x}RET]\par Whole: {\v [CONFIDENTIAL]}\par}` + "\n"},
		fixture{name: "text-rtf-caps", want: "SENSITIVE", msg: head("text-rtf-caps") +
			"Subject: rtf\nMIME-Version: 1.0\nContent-Type: text/rtf\n\n" +
			`{\rtf1\ansi\pard Shown in capitals: {\caps [sensitive]}\par}` + "\n"},
		fixture{name: "text-rtf-lower", want: "UNCLASSIFIED", msg: head("text-rtf-lower") +
			"Subject: rtf\nMIME-Version: 1.0\nContent-Type: text/rtf\n\n" +
			`{\rtf1\ansi\pard Not in capitals: [sensitive] {\caps\caps0 [secret]}\par}` + "\n"},
		fixture{name: "text-tnef-htmltag", want: "SECRET", msg: head("text-tnef-htmltag") +
			"Subject: Outlook HTML\nMIME-Version: 1.0\nContent-Type: application/ms-tnef\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(tnefHTMLTag)},
		fixture{name: "text-tnef-htmltag-comment", want: "UNCLASSIFIED", msg: head("text-tnef-htmltag-comment") +
			"Subject: Outlook HTML\nMIME-Version: 1.0\nContent-Type: application/ms-tnef\nContent-Transfer-Encoding: base64\n\n" +
			b64Lines(tnefHTMLComment)},

		// Point 5: parsers that agree with real clients.
		fixture{name: "text-html5-comment", want: "CONFIDENTIAL", msg: head("text-html5-comment") +
			"Subject: html\n" + htmlUTF8 +
			"<p>a<!-- note --!> [CONFIDENTIAL] -->b</p>\n"},
		fixture{name: "text-html-entities-nosemi", want: "TOP SECRET", msg: head("text-html-entities-nosemi") +
			"Subject: html\n" + htmlUTF8 +
			"<p>&#91SECRET&#93 and &lbrackTOP SECRET&rbrack</p>\n"},
		fixture{name: "text-html-entities-escaped", want: "UNCLASSIFIED", msg: head("text-html-entities-escaped") +
			"Subject: html\n" + htmlUTF8 +
			"<p>&amp;#91;SECRET&amp;#93; &amp;lbrack;SECRET&amp;rbrack;</p>\n"},
		fixture{name: "text-html-unquoted-attr", want: "SENSITIVE", msg: head("text-html-unquoted-attr") +
			"Subject: html\n" + htmlUTF8 +
			"<p><a title=it\"s href=x>[SENSITIVE]</a> and <img alt=x'y>[RESTRICTED]</p>\n"},
		fixture{name: "text-rfc2047-unpadded", want: "SECRET", msg: head("text-rfc2047-unpadded") +
			"Subject: =?utf-8?b?W1NFQ1JFVF0?=\n\nbody\n"},
		fixture{name: "text-rfc2047-lower", want: "UNCLASSIFIED", msg: head("text-rfc2047-lower") +
			"Subject: =?utf-8?b?W3NlY3JldF0?= =?utf-8?q?=5BSecret=5D?=\n\nbody\n"},
		fixture{name: "text-rfc2047-mixed", want: "TOP SECRET", msg: head("text-rfc2047-mixed") +
			"Subject: Re:=?iso-8859-1?q?_caf=E9_[TOP_?=\n =?utf-8?b?U0VDUkVUXQ?=\n\nbody\n"},
		fixture{name: "text-flowed-quoted", want: "TOP SECRET", msg: head("text-flowed-quoted") +
			"Subject: Re: plan\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8; format=flowed\nContent-Transfer-Encoding: 8bit\n\n" +
			"On Monday Alice wrote:\n> The plan, which Thunderbird wrapped, is [TOP \n> SECRET] and stays so.\n\nNoted.\n"},
		fixture{name: "text-flowed-quoted-negative", want: "UNCLASSIFIED", msg: head("text-flowed-quoted-negative") +
			"Subject: Re: plan\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8; format=flowed\nContent-Transfer-Encoding: 8bit\n\n" +
			"> The word is [TOP \n> SECRETARIAT] here.\n"},
		fixture{name: "text-quoted-reply", want: "TOP SECRET", msg: head("text-quoted-reply") +
			"Subject: Re: plan\n" + textUTF8 +
			"Noted.\n\n> > The plan is\n> > [TOP\n> > SECRET] says Outlook, wrapped in a fixed-line reply.\n> [SECRET\n> ] is not: a line break inside the bracket.\n"},
		fixture{name: "text-calendar", want: "TOP SECRET", msg: head("text-calendar") +
			"Subject: Invitation\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"cal\"\n\n" +
			"--cal\nContent-Type: text/plain; charset=utf-8\n\nYou are invited.\n" +
			"--cal\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\n\n" +
			"BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:Briefing [TOP SEC\n RET]\nDESCRIPTION:Agenda [RESTRICTED:STAFF\\, HR]\\nRoom 4\nEND:VEVENT\nEND:VCALENDAR\n" +
			"--cal--\n"},
		fixture{name: "text-calendar-fold", want: "UNCLASSIFIED", msg: head("text-calendar-fold") +
			"Subject: Invitation\nMIME-Version: 1.0\nContent-Type: text/calendar; charset=utf-8\n\n" +
			"BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:A fold inserts no space: [TOP\n SECRET]\nEND:VEVENT\nEND:VCALENDAR\n"},
		fixture{name: "text-vcard", want: "SENSITIVE", msg: head("text-vcard") +
			"Subject: card\nMIME-Version: 1.0\nContent-Type: text/vcard; charset=utf-8\n\n" +
			"BEGIN:VCARD\nVERSION:4.0\nFN:Carol\nNOTE:Handle as [SENSI\n\tTIVE]\nEND:VCARD\n"},
		fixture{name: "text-thread-topic", want: "UNCLASSIFIED", msg: head("text-thread-topic") +
			"Subject: weekly notes\nThread-Topic: [SECRET] weekly notes\nThread-Index: AQHZ\n\nNothing marked here.\n"},
	)
}
