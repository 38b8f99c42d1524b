package classify

// MaxBoundary is the longest multipart boundary read. RFC 2046 section
// 5.1.1 allows 70 characters, but Python's email package and mime4j read
// longer ones, and so do mail clients, so the scanner does too up to the
// line length limit of RFC 5322 section 2.1.1; a longer boundary cannot
// be used and its multipart is unreadable (issue 11).
const MaxBoundary = 998

// The lenient MIME parameter parser (RFC 2045 section 5.1, RFC 2231;
// issue 11 point 5) is message.ParseMediaType, shared with the warning
// rewriter (issue 13 point 1).
