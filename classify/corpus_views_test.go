package classify

// Cases where the views of styled text (html.go, rtf.go) sit behind the
// inline PGP detector of every text part (pgp.go): each view must still
// reach a matcher (issue 11 points 1 and 4 together).
func init() {
	fixtures = append(fixtures,
		fixture{name: "views-rtf-fromhtml-hidden-split", want: "SECRET", msg: head("views-rtf-fromhtml-hidden-split") +
			"Subject: rtf\nMIME-Version: 1.0\nContent-Type: text/rtf\n\n" +
			`{\rtf1\ansi\fromhtml1 {\*\htmltag64 <p>}[SEC{\*\htmltag84 <span style="display:none">}x{\*\htmltag92 </span>}RET]{\*\htmltag72 </p>}}` + "\n"},
		fixture{name: "views-html-hidden-whole", want: "TOP SECRET", msg: head("views-html-hidden-whole") +
			"Subject: html\nMIME-Version: 1.0\nContent-Type: text/html\n\n" +
			`<p>Agenda</p><div style="display:none">[TOP SECRET]</div>` + "\n"},
		fixture{name: "views-html-hidden-split", want: "SECRET", msg: head("views-html-hidden-split") +
			"Subject: html\nMIME-Version: 1.0\nContent-Type: text/html\n\n" +
			`<p>[SEC<span style="display:none">zz</span>RET]</p>` + "\n"},
	)
}
