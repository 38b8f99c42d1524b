package message

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
)

// Status says whether the From: header field(s) name exactly one author.
type Status string

// Statuses of Authors. Only StatusOK names an author a receiver can rely
// on; every other status is an unverifiable author (issue 12, R76): the
// callers decide on Candidates instead.
const (
	// StatusOK: exactly one From: field holding exactly one mailbox that
	// parses (with the leniency real mail needs, see Authors).
	StatusOK Status = "ok"
	// StatusAbsent: no From: field, only blank ones, or one that names
	// no mailbox at all (an empty group).
	StatusAbsent Status = "absent"
	// StatusRepeated: more than one From: field (RFC 5322 section 3.6
	// allows one).
	StatusRepeated Status = "repeated"
	// StatusMultiple: one From: field with several mailboxes (RFC 5322
	// section 3.6.2 allows it only with Sender:; RFC 7489 section 6.6.1).
	StatusMultiple Status = "multiple"
	// StatusUnparseable: one From: field whose author cannot be told for
	// sure (unclosed quote, comment or angle bracket, text with no address,
	// a bad domain, ...).
	StatusUnparseable Status = "unparseable"
)

// Mailbox is one parsed address.
type Mailbox struct {
	// Name is the decoded display name ("" when none).
	Name string
	// Local is the local part, quotes and quoting backslashes removed,
	// case kept (RFC 5321 section 2.4: only the host decides its case).
	Local string
	// Domain is normalised (NormalizeDomain): lower case, A-labels, no
	// trailing dot.
	Domain string
}

// Address is local@domain.
func (m Mailbox) Address() string { return m.Local + "@" + m.Domain }

// AuthorResult is what Authors finds in the From: field(s).
type AuthorResult struct {
	Status Status
	// Fields is the number of From: fields given.
	Fields int
	// Authors lists the mailboxes that parsed, in order, over every field.
	// With a Status other than StatusOK it may be partial: never take it
	// for the author.
	Authors []Mailbox
	// Names holds the decoded display names, group names and comments
	// (RFC 2047 words of any charset decoded, raw 8-bit read as UTF-8 or
	// else Latin-1).
	Names []string
	// Mentioned lists the distinct domains written in Names: after an "@"
	// or as a bare dotted name ("agency.govt.nz Payroll"). A domain here
	// that is not the author's is display-name impersonation (issue 12
	// point 2).
	Mentioned []string
	// Candidates lists every distinct domain that could be taken for the
	// author's: the Authors' domains, Mentioned, and every name after an
	// "@" anywhere in the values, parsed or not. When Status is not OK the
	// callers warn on these (fail safe: they never decide as if no domain
	// were named).
	Candidates []string
	// Problem says why Status is not OK ("" when it is).
	Problem string
}

// Author is the one author when Status is StatusOK.
func (r AuthorResult) Author() (Mailbox, bool) {
	if r.Status != StatusOK || len(r.Authors) != 1 {
		return Mailbox{}, false
	}
	return r.Authors[0], true
}

// Domain is the one author's domain when Status is StatusOK, else "".
func (r AuthorResult) Domain() string {
	m, _ := r.Author()
	return m.Domain
}

// Authors reads the From: header field values of a message (as the MTA
// hands them over: folded lines joined by "\n" or "\r\n") the way receivers
// and mail clients read them (RFC 5322 section 3.4 and 3.6.2, with the
// leniency of real mail):
//   - values are unfolded first (RFC 5322 section 2.2.3);
//   - raw 8-bit text is read as UTF-8, bytes that are not UTF-8 as Latin-1;
//   - RFC 2047 encoded words are decoded in any charset, an unknown one
//     read as UTF-8 or Latin-1, also inside quoted strings;
//   - an unquoted comma in a display name ("Smith, John <j@x>") joins the
//     text before it to the next mailbox, as clients display it;
//   - domains are normalised (NormalizeDomain: UTS #46 mapping, so
//     full-width letters and ideographic full stops are read as a client
//     shows them, lower case, trailing dot removed).
//
// Whatever the status, Candidates names every domain written after an "@".
//
// The result is shared: the same values give the same result from a small
// memo (one message's From: is read by Sender ID, DMARC, the engine and
// the warnings), so its slices must be read, not written; they are capped
// at their length, so an append by a caller copies them.
func Authors(values []string) AuthorResult {
	key, ok := memoKey(values)
	if ok {
		if r, hit := authorMemo.get(key); hit {
			return r
		}
	}
	r := parseAuthors(values)
	if ok {
		authorMemo.put(key, r)
	}
	return r
}

// authorMemo holds the last results of Authors; it is emptied when full
// (a miss only parses again).
var authorMemo = memo{m: map[string]AuthorResult{}}

// maxMemo bounds authorMemo's entries; maxMemoKey the length of a key
// kept (a longer value is parsed every time).
const (
	maxMemo    = 1024
	maxMemoKey = 4096
)

type memo struct {
	mu sync.Mutex
	m  map[string]AuthorResult
}

func (c *memo) get(k string) (AuthorResult, bool) {
	c.mu.Lock()
	r, ok := c.m[k]
	c.mu.Unlock()
	return r, ok
}

func (c *memo) put(k string, r AuthorResult) {
	r.Authors, r.Names = r.Authors[:len(r.Authors):len(r.Authors)], r.Names[:len(r.Names):len(r.Names)]
	r.Mentioned, r.Candidates = r.Mentioned[:len(r.Mentioned):len(r.Mentioned)], r.Candidates[:len(r.Candidates):len(r.Candidates)]
	c.mu.Lock()
	if len(c.m) >= maxMemo {
		clear(c.m)
	}
	c.m[k] = r
	c.mu.Unlock()
}

// memoKey: one value is its own key; several (or none) are NUL, then the
// values joined by NUL. Values holding a NUL (possible in a file `check`
// reads, never from the MTA) are not kept, so no two lists share a key;
// false too when the key would be long.
func memoKey(values []string) (string, bool) {
	n := len(values)
	for _, v := range values {
		if strings.IndexByte(v, 0) >= 0 {
			return "", false
		}
		n += len(v)
	}
	switch {
	case n > maxMemoKey:
		return "", false
	case len(values) == 1:
		return values[0], true
	}
	return "\x00" + strings.Join(values, "\x00"), true
}

func parseAuthors(values []string) AuthorResult {
	r := AuthorResult{Fields: len(values)}
	blank := 0
	for _, v := range values {
		f := parseField(v)
		if f.blank {
			blank++
		}
		r.Authors = append(r.Authors, f.mailboxes...)
		r.Names = append(r.Names, f.names...)
		if r.Problem == "" {
			r.Problem = f.problem
		}
		r.Candidates = append(r.Candidates, f.atDomains...)
	}
	switch {
	case len(values) == 0:
		r.Status, r.Problem = StatusAbsent, "no From: header field"
	case blank == len(values):
		r.Status, r.Problem = StatusAbsent, "blank From: header field"
	case len(values) > 1:
		r.Status, r.Problem = StatusRepeated, "several From: header fields"
	case r.Problem != "":
		r.Status = StatusUnparseable
	case len(r.Authors) == 0:
		// An empty group ("undisclosed-recipients:;") names no author.
		r.Status, r.Problem = StatusAbsent, "no address in the From: header field"
	case len(r.Authors) > 1:
		r.Status, r.Problem = StatusMultiple, "several addresses in the From: header field"
	default:
		r.Status = StatusOK
	}
	r.finish()
	return r
}

// Mailboxes reads one address-list or mailbox-list field (Sender:,
// Resent-From:, To:, an envelope address in angle brackets) with the same
// rules as Authors. Status is StatusAbsent for a blank value (or an empty
// group), StatusOK for one mailbox, StatusMultiple for several,
// StatusUnparseable otherwise; Problem speaks of "From:" whatever the field.
func Mailboxes(value string) AuthorResult { return Authors([]string{value}) }

// finish fills Mentioned and Candidates from Names and Authors, distinct,
// in order of appearance.
func (r *AuthorResult) finish() {
	seen := map[string]bool{}
	mention := func(d string) {
		if !seen[d] {
			seen[d] = true
			r.Mentioned = append(r.Mentioned, d)
		}
	}
	for _, n := range r.Names {
		for _, d := range namedDomains(n) {
			mention(d)
		}
	}
	// A local part that itself holds "@domain" ("ceo@agency.govt.nz"@evil,
	// or the invalid ceo@agency.govt.nz@evil that some clients show whole)
	// reads to a person as that domain's address: it impersonates as a
	// display name does (issue 12 point 2). So does a dotted name in it
	// (ceo%agency.govt.nz@evil, the old percent hack; a bang path
	// agency.govt.nz!ceo@evil; agency.govt.nz@evil).
	for _, m := range r.Authors {
		for _, d := range atDomains(m.Local) {
			mention(d)
		}
		for _, d := range namedDomains(m.Local) {
			// Dotted names under a real top-level domain only:
			// john.smith@ names no domain.
			if ps, icann := publicsuffix.PublicSuffix(d); icann && ps != d {
				mention(d)
			}
		}
	}
	var cands []string
	cseen := map[string]bool{}
	add := func(d string) {
		if d != "" && !cseen[d] {
			cseen[d] = true
			cands = append(cands, d)
		}
	}
	for _, m := range r.Authors {
		add(m.Domain)
	}
	for _, d := range r.Candidates {
		add(d)
	}
	for _, d := range r.Mentioned {
		add(d)
	}
	r.Candidates = cands
}

// Unfold removes the line breaks of a folded header value (RFC 5322
// section 2.2.3), keeping the white space after them.
func Unfold(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	return strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(v)
}

// field is what one From: value holds.
type field struct {
	blank     bool
	mailboxes []Mailbox
	names     []string
	atDomains []string // every domain after an "@" in the raw value
	problem   string
}

// segment is one comma-separated part of an address list.
type segment struct {
	phrase   []string // display-name words, decoded
	plain    strings.Builder
	words    int      // words outside comments and angle brackets
	angles   []string // contents of <...>
	comments []string // decoded
	hasAt    bool     // an "@" outside quotes, comments and angle brackets
}

func parseField(raw string) field {
	s := toUTF8(Unfold(raw))
	var f field
	f.atDomains = atDomains(s)
	if strings.TrimSpace(s) == "" {
		f.blank = true
		return f
	}
	fail := func(why string) {
		if f.problem == "" {
			f.problem = why
		}
	}
	var segs []*segment
	cur := &segment{}
	lastWasSpace := true
	flush := func() {
		segs = append(segs, cur)
		cur = &segment{}
		lastWasSpace = true
	}
	word := func(w string, quoted bool) {
		if lastWasSpace {
			cur.words++
			if cur.plain.Len() > 0 {
				cur.plain.WriteByte(' ')
			}
		}
		if quoted {
			cur.plain.WriteString(`"` + w + `"`)
		} else {
			cur.plain.WriteString(w)
		}
		cur.phrase = append(cur.phrase, w)
		lastWasSpace = false
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			lastWasSpace = true
			i++
		case c == '"':
			text, n, closed := quoted(s[i:])
			if !closed {
				fail("unclosed quoted string")
			}
			word(text, true)
			i += n
		case c == '(':
			text, n, closed := comment(s[i:])
			if !closed {
				fail("unclosed comment")
			}
			if t := strings.TrimSpace(DecodeWords(text)); t != "" {
				cur.comments = append(cur.comments, t)
			}
			lastWasSpace = true
			i += n
		case c == '<':
			end := strings.IndexByte(s[i+1:], '>')
			if end < 0 {
				fail("unclosed angle bracket")
				cur.angles = append(cur.angles, s[i+1:])
				i = len(s)
				break
			}
			cur.angles = append(cur.angles, s[i+1:i+1+end])
			lastWasSpace = true
			i += end + 2
		case c == '>':
			fail("unexpected '>'")
			i++
		case c == ',':
			flush()
			i++
		case c == ':' && len(cur.angles) == 0 && !cur.hasAt:
			// A group (RFC 5322 section 3.4): its name is display text.
			if name := strings.TrimSpace(DecodeWords(strings.Join(cur.phrase, " "))); name != "" {
				f.names = append(f.names, name)
			}
			f.names = append(f.names, cur.comments...)
			cur = &segment{}
			lastWasSpace = true
			i++
		case c == ';':
			flush()
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\"(<>,:;", rune(s[j])) {
				j++
			}
			if j == i { // a ':' after an address
				fail("unexpected ':'")
				j++
			}
			w := s[i:j]
			if strings.ContainsRune(w, '@') {
				cur.hasAt = true
			}
			word(w, false)
			i = j
		}
	}
	flush()

	var pending []string // display text before an unquoted comma
	for n, sg := range segs {
		display := strings.TrimSpace(DecodeWords(strings.Join(sg.phrase, " ")))
		f.names = append(f.names, sg.comments...)
		switch {
		case len(sg.angles) > 1:
			fail("several angle-bracket addresses in one mailbox")
			for _, a := range sg.angles {
				if m, ok := addrSpec(a); ok {
					f.mailboxes = append(f.mailboxes, m)
				}
			}
			pending = nil
		case len(sg.angles) == 1:
			if display != "" {
				pending = append(pending, display)
			}
			name := strings.Join(pending, ", ")
			pending = nil
			if name != "" {
				f.names = append(f.names, name)
			}
			m, ok := addrSpec(sg.angles[0])
			if !ok {
				fail("bad address <" + Clip(sg.angles[0], 60) + ">")
				continue
			}
			m.Name = name
			f.mailboxes = append(f.mailboxes, m)
		case sg.hasAt:
			if len(pending) > 0 {
				f.names = append(f.names, strings.Join(pending, ", "))
				fail("text without an address before " + Clip(sg.plain.String(), 60))
				pending = nil
			}
			if sg.words != 1 {
				// RFC 5322 section 4.4 (obs-local-part, obs-domain): white
				// space around "@" and "." is allowed and read away, so
				// "ceo @ agency . govt . nz" is ceo@agency.govt.nz.
				if m, ok := obsAddrSpec(sg.plain.String()); ok {
					m.Name = strings.Join(sg.comments, " ")
					f.mailboxes = append(f.mailboxes, m)
					continue
				}
				fail("display name without angle brackets: " + Clip(sg.plain.String(), 60))
				f.names = append(f.names, display)
				continue
			}
			m, ok := addrSpec(sg.plain.String())
			if !ok {
				fail("bad address " + Clip(sg.plain.String(), 60))
				continue
			}
			// "addr (Name)": the comment is the name clients show.
			m.Name = strings.Join(sg.comments, " ")
			f.mailboxes = append(f.mailboxes, m)
		case display != "":
			pending = append(pending, display)
			if n == len(segs)-1 {
				f.names = append(f.names, strings.Join(pending, ", "))
				fail("text without an address: " + Clip(display, 60))
			}
		}
	}
	return f
}

// quoted reads a quoted string at the start of s; n counts the bytes used.
// An unclosed one runs to the end.
func quoted(s string) (text string, n int, closed bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1, true
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), len(s), false
}

// comment reads a (possibly nested) comment at the start of s.
func comment(s string) (text string, n int, closed bool) {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '(':
			if depth > 0 {
				b.WriteByte(' ')
			}
			depth++
		case ')':
			depth--
			if depth == 0 {
				return b.String(), i + 1, true
			}
			b.WriteByte(' ')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), len(s), false
}

// addrSpec parses local@domain (RFC 5322 section 3.4.1), white space and
// comments dropped, an RFC 5321 source route ("@a,@b:user@c") removed.
func addrSpec(s string) (Mailbox, bool) {
	s = dropSpaceOutsideQuotes(stripComments(s))
	if strings.HasPrefix(s, "@") {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			s = s[i+1:]
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return Mailbox{}, false
	}
	local := s[:at]
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		local = strings.ReplaceAll(local[1:len(local)-1], `\`, "")
	}
	if local == "" || strings.ContainsAny(local, "<>\"") {
		return Mailbox{}, false
	}
	d, ok := NormalizeDomain(s[at+1:])
	if !ok {
		return Mailbox{}, false
	}
	return Mailbox{Local: local, Domain: d}, true
}

// dropSpaceOutsideQuotes removes the white space (CFWS) around the tokens
// of an addr-spec, keeping the spaces of a quoted local part.
func dropSpaceOutsideQuotes(s string) string {
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			b.WriteByte(c)
			i++
			c = s[i]
		case c == '"':
			inQuote = !inQuote
		case (c == ' ' || c == '\t') && !inQuote:
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '(' {
			_, n, _ := comment(s[i:])
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// toUTF8 keeps valid UTF-8 and reads every other byte as Latin-1 (raw
// 8-bit headers, RFC 6532 or not).
func toUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(rune(s[i]))
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// isAt: "@" and the look-alikes a display name can use to show one
// (FULLWIDTH and SMALL COMMERCIAL AT).
func isAt(r rune) bool { return r == '@' || r == '\uFF20' || r == '\uFE6B' }

// domainRune: a rune that can be part of a domain as a client shows it,
// before UTS #46 mapping (letters and digits of any script, "-", "_",
// every full stop UTS #46 maps to ".", and invisible format characters).
func domainRune(r rune) bool {
	switch r {
	case '.', '-', '_', '\u3002', '\uFF0E', '\uFF61':
		return true
	}
	if r < 0x80 {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	}
	// Format characters (zero-width space, soft hyphen, ...) are part of
	// the run: a client shows nothing for them, and UTS #46 maps them away.
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '\uFF0D' || unicode.Is(unicode.Cf, r)
}

// obsAddrSpec reads words separated by white space as one addr-spec when
// every break between them touches an "@" or a "." (RFC 5322 section 4.4);
// "John Smith john@x" is not one.
func obsAddrSpec(plain string) (Mailbox, bool) {
	words := strings.Fields(plain)
	if len(words) < 2 {
		return Mailbox{}, false
	}
	for i := 1; i < len(words); i++ {
		prev, next := words[i-1], words[i]
		if !strings.HasSuffix(prev, "@") && !strings.HasSuffix(prev, ".") && !strings.HasPrefix(next, "@") && !strings.HasPrefix(next, ".") {
			return Mailbox{}, false
		}
	}
	return addrSpec(strings.Join(words, ""))
}

// collapseAroundDots removes white space next to "@" and "." (and their
// full-width forms), so that candidate domains are found in obsolete or
// broken forms such as "ceo@ agency .govt.nz".
func collapseAroundDots(s string) string {
	if !strings.ContainsAny(s, " \t") {
		return s
	}
	var b strings.Builder
	rs := []rune(s)
	sep := func(r rune) bool { return isAt(r) || r == '.' || r == '\u3002' || r == '\uFF0E' || r == '\uFF61' }
	for i, r := range rs {
		if r == ' ' || r == '\t' {
			j := i
			for j < len(rs) && (rs[j] == ' ' || rs[j] == '\t') {
				j++
			}
			k := i
			for k > 0 && (rs[k-1] == ' ' || rs[k-1] == '\t') {
				k--
			}
			if (j < len(rs) && sep(rs[j])) || (k > 0 && sep(rs[k-1])) {
				continue
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// atDomains lists the domains written after an "@" anywhere in s, also
// with white space around the "@" and the dots read away.
func atDomains(s string) []string {
	out := atDomainsExact(s)
	if c := collapseAroundDots(s); c != s {
		for _, d := range atDomainsExact(c) {
			if strings.Contains(d, ".") { // "J. Smith @ Agency" names no domain
				out = append(out, d)
			}
		}
	}
	return out
}

func atDomainsExact(s string) []string {
	var out []string
	for i, r := range s {
		if !isAt(r) {
			continue
		}
		rest := s[i+utf8.RuneLen(r):]
		end := strings.IndexFunc(rest, func(r rune) bool { return !domainRune(r) })
		if end < 0 {
			end = len(rest)
		}
		if d, ok := candidateDomain(rest[:end]); ok {
			out = append(out, d)
		}
	}
	return out
}

// namedDomains lists the domains a display name or comment shows: after
// an "@" and bare dotted names.
func namedDomains(s string) []string {
	out := atDomains(s)
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return !domainRune(r) }) {
		if d, ok := candidateDomain(tok); ok && strings.Contains(d, ".") {
			out = append(out, d)
		}
	}
	return out
}

// candidateDomain normalises text that may be a domain; ok is false when
// it cannot be one.
func candidateDomain(s string) (string, bool) {
	s = strings.Trim(s, ".-_\u3002\uFF0E\uFF61")
	if s == "" {
		return "", false
	}
	return NormalizeDomain(s)
}
