// Package classify finds the New Zealand government classification
// markings (trigger words) in an email message, through every encoding a
// reader would see through, streaming.
//
// A trigger word is upper case and bounded by square brackets (R30, R31):
// [IN-CONFIDENCE], [SENSITIVE], [RESTRICTED], [CONFIDENTIAL], [SECRET],
// [TOP SECRET], [UNCLASSIFIED] (R109, R114, M-OUT), and the delivery
// receipt word [RSVPDR] (R35). A marking may carry an endorsement after a
// colon: [IN-CONFIDENCE:STAFF]. Nothing else matches: not [secret], not
// [Secret], not SECRET without brackets, not [SECRETARIAT], not [ SECRET ];
// [TOP SECRET] has exactly one space, except that a line fold in the
// Subject and a no-break space in HTML or RTF read as that space. The
// highest classification found decides (Options.Levels gives the words
// and ranks; DefaultLevels are the defaults); no marking is UNCLASSIFIED.
//
// What is scanned is what a person reads (R29, R32, R33): the Subject of
// the message and of embedded messages (unfolded, RFC 2047 encoded words
// in any charset including UTF-7), and the text of the body: every
// transfer encoding (RFC 2045: 7bit, 8bit, quoted-printable with its soft
// line breaks, base64), any declared charset (ISO-8859-x, Windows-125x,
// UTF-16 with or without a byte order mark, UTF-7 of RFC 2152, ...),
// format=flowed soft line breaks (RFC 3676), text/html as rendered text, RTF as rendered text, multipart nesting at
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
