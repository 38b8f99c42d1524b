// Package classify finds the New Zealand government classification
// markings (trigger words) in an email message, through every encoding a
// reader would see through, streaming.
//
// A trigger word is upper case and bounded by square brackets (R30, R31):
// [IN-CONFIDENCE], [SENSITIVE], [RESTRICTED], [CONFIDENTIAL], [SECRET],
// [TOP SECRET], [UNCLASSIFIED] (R109, R114, M-OUT), and the delivery
// receipt word [RSVPDR] (R35). A marking may carry an endorsement after a
// colon: [IN-CONFIDENCE:STAFF]. Nothing else matches: not [secret], not
// [Secret], not SECRET without brackets, not [SECRETARIAT], not [SEC RET].
// The text is read as a reader sees it (issue 11): invisible
// (default-ignorable) characters are removed, compatibility forms folded
// (NFKC: full-width ［ＳＥＣＲＥＴ］ is [SECRET]; upper case is judged after
// folding), any Unicode space is a space, and inside a marking any run of
// white space, line breaks included, reads as the one space of [TOP SECRET];
// "[ SECRET ]" counts, a line break right inside a bracket does not. The
// highest classification found decides (Options.Levels gives the words
// and ranks; DefaultLevels are the defaults); no marking is UNCLASSIFIED.
//
// Where a format can hide or restyle text (CSS display:none, visibility,
// text-transform, Outlook's conditional comments, RTF \v and \caps, HTML
// encapsulated in RTF), a marking counts if it is in the text as rendered
// or in the text with every hidden run included.
//
// What is scanned is what a person reads (R29, R32, R33): the Subject of
// the message and of embedded messages (unfolded, RFC 2047 encoded words
// in any charset including UTF-7), and the text of the body: every
// transfer encoding (RFC 2045: 7bit, 8bit, quoted-printable with its soft
// line breaks, base64), any declared charset (ISO-8859-x, Windows-125x,
// UTF-16 with or without a byte order mark, UTF-7 of RFC 2152, ...),
// format=flowed soft line breaks and quoted replies (RFC 3676), iCalendar
// and vCard unfolded (RFC 5545, RFC 6350), text/html as rendered text
// (HTML5 tokenizer rules), RTF as rendered text, multipart nesting at
// any depth up to MaxDepth (RFC 2046), message/rfc822 parts, messages
// without MIME headers, and Outlook's TNEF (winmail.dat), whose
// compressed RTF ([MS-OXRTFCP]) is decompressed and scanned, and
// opaque-signed S/MIME (application/pkcs7-mime signed-data, RFC 8551),
// whose signed entity is scanned. A message/rfc822 part is scanned
// whatever its disposition (a forwarded message is the sender's content).
// Other attachments are skipped unless Options.ScanAttachments is set
// (R34); then text-like attachments (text, HTML, RTF, .eml files) are
// scanned too, and so are the text of Office Open XML and OpenDocument
// files, the text-like files in zip archives (archive.go, ooxml.go) and
// uuencode, yEnc and BinHex blocks inside text (inline.go), within limits
// (MaxArchiveSize, ...) past which the content is reported in
// Result.Unreadable.
//
// The message is fed to a Scanner in chunks as it arrives (it is an
// io.Writer); memory stays bounded whatever the size of the message: the
// MIME walk, the decoders, the HTML and RTF renderers and the matcher are
// push-based state machines that keep only small carries between chunks.
// Malformed input never fails a scan; what could not be decoded cleanly
// is listed in Result.Problems, and what could not be read in full
// (nesting past MaxDepth, an unusable boundary, a truncated or corrupt
// part, encrypted S/MIME or PGP content, a spent Options.MaxBytes or
// Options.Deadline budget) in Result.Unreadable, which a caller enforcing
// policy treats as if the worst marking were there (fail safe).
//
//	s, err := classify.NewScanner(classify.Options{})
//	...
//	s.Write(chunk) // as many times as needed
//	res, err := s.Close()
//	// res.Classification == "SECRET", res.RSVPDR, res.Markings ...
//
// or, for a whole message: classify.Classify(r, classify.Options{}).
package classify
