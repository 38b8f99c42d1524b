// Package message is the bottom layer of the gateway (DESIGN.md, Layout):
// what every other package needs to read and change a message the same
// way, one implementation of each (issue 13 point 1):
//
//   - the author (From:) and mailbox parser (Authors, Mailboxes), used by
//     DMARC, the Table 3 warnings 002/005, R76 verification, R66, the
//     notices and the Sender ID PRA, so that no two parts of the gateway
//     can disagree about who a message says it is from;
//   - header fields and edits (Header, HeaderEdit, ApplyEdits, NthHeader)
//     with the milter protocol's per-name indexes, the header-block reader
//     (ReadHeaderBlock) and writer (HeaderBlock, WriteHeaderBlock);
//   - the MIME primitives the scanner and the warning rewriter share: the
//     lenient parameter parser (ParseMediaType), the multipart delimiter
//     decision (MatchDelimiter) and the charset lookup (LookupCharset,
//     with UTF-7).
//
// It imports no other package of this module; every package above may use
// it.
package message
