package notify

// This file holds every normative text of the 2005 requirements
// (spec/001_acfa9b4a4c35e941.txt) that the gateway shows to people: Table 2
// (generic warning texts), Table 3 (warning codes), Table 4 (delivery
// messages), the sentences R73 and R74 make mandatory, and the rows of
// Table 1 (certificate processing behaviour) with the Table 3 codes that go
// with them. The wording is copied character for character (the dash in
// "UNVERIFIED MESSAGE – ..." is U+2013 EN DASH, as in the spec); only the
// HTML list markup of the converted document (<ul ...>, <p>, <u>) is left
// out, and Table 3's lettered lists are kept as separate strings.
// texts_test.go checks each entry against testdata/notify/spec-excerpt.txt,
// a verbatim copy of the spec lines named in the comments.
//
// Nothing else in the package spells these texts out: render.go builds every
// warning, notice and receipt from the values here.

import "sort"

// Table2Row names a row of Table 2, "Secure Email Warning Messages" (spec
// line 314). R42 and R78 require these texts in every warning and
// notification.
type Table2Row int

const (
	// SecureDeliveryFailure is Table 2 row 1 (spec line 317), "Sending".
	SecureDeliveryFailure Table2Row = iota + 1
	// SecureDeliveryDelayed is Table 2 row 2 (spec line 318), "Sending".
	SecureDeliveryDelayed
	// UnverifiedMessage is Table 2 row 3 (spec line 319), "Receiving".
	UnverifiedMessage
	// SystemFailureMessage is Table 2 row 4 (spec line 320), "Receiving".
	SystemFailureMessage
	// SystemWarningMessage is Table 2 row 5 (spec line 321), "Receiving".
	// It has no [Code: ...] and no Table 3 code.
	SystemWarningMessage
)

// Table2Text is one row of Table 2.
type Table2Text struct {
	Row Table2Row
	// Direction is the first column: "Sending" or "Receiving".
	Direction string
	// Heading is the upper-case name that opens the text, e.g.
	// "UNVERIFIED MESSAGE"; it is also the short text of the
	// X-NZ-Secure-Warning header.
	Heading string
	// Text is the whole cell, verbatim, including the "[Code: 999, ...]"
	// placeholder that rendering fills in (CodePlaceholder).
	Text string
	// Line is the line of spec/001_acfa9b4a4c35e941.txt the row is on.
	Line int
}

// Table2Intro is the sentence above Table 2 (spec line 316).
const Table2Intro = "The following text must be displayed as part of any Secure Email warning message."

// CodePlaceholder is the part of a Table 2 text that stands for the warning
// code and any appended information (R78): "999" is replaced by the Table 3
// code and "..." by the additional information, if any.
const CodePlaceholder = "[Code: 999, ...]"

// RetryPlaceholder is the part of Table 2 row 2 that stands for the retry
// interval.
const RetryPlaceholder = "X hours"

// Table2 is "TABLE 2: Secure Email Warning Messages" (spec lines 314-321), in
// the spec's order.
var Table2 = []Table2Text{
	// Table 2 row 1, spec line 317.
	{SecureDeliveryFailure, "Sending", "SECURE DELIVERY FAILURE",
		"SECURE DELIVERY FAILURE – Your message could not be delivered securely, therefore, it was not sent. [Code: 999, ...]", 317},
	// Table 2 row 2, spec line 318.
	{SecureDeliveryDelayed, "Sending", "SECURE DELIVERY DELAYED",
		"SECURE DELIVERY DELAYED – Your message could not be delivered securely. The system will try again in X hours. [Code: 999, ...]", 318},
	// Table 2 row 3, spec line 319.
	{UnverifiedMessage, "Receiving", "UNVERIFIED MESSAGE",
		"UNVERIFIED MESSAGE – The confidentiality, integrity and/or authenticity of this message could not be verified. [Code: 999, ...]", 319},
	// Table 2 row 4, spec line 320.
	{SystemFailureMessage, "Receiving", "SYSTEM FAILURE MESSAGE",
		"SYSTEM FAILURE MESSAGE – A message has passed through the Secure Email rule set without being processed. [Code: 999, ...]", 320},
	// Table 2 row 5, spec line 321.
	{SystemWarningMessage, "Receiving", "SYSTEM WARNING MESSAGE",
		"SYSTEM WARNING MESSAGE – A verified message has been received with no X-HEADER field.", 321},
}

// Table2Entry returns the Table 2 row r.
func Table2Entry(r Table2Row) (Table2Text, bool) {
	for _, t := range Table2 {
		if t.Row == r {
			return t, true
		}
	}
	return Table2Text{}, false
}

// Table 3 sections: the rows after these sub-headings are certificate
// warnings (they are the codes Table 1's outcomes are reported with).
const (
	// Table3Incoming is the sub-heading on spec line 571.
	Table3Incoming = "INCOMING - Certificate Warning Messages"
	// Table3Outgoing is the sub-heading on spec line 582.
	Table3Outgoing = "OUTGOING - Certificate Warning Messages"
)

// WarningCode is one row of "TABLE 3: Secure Email Warning Codes" (spec
// lines 558-587).
type WarningCode struct {
	// Code is the three-digit code, e.g. "002".
	Code string
	// Row is the Table 2 text the code is shown with: the one whose heading
	// opens the Table 3 description ("UNVERIFIED MESSAGE: ..." ->
	// UnverifiedMessage).
	Row Table2Row
	// Text is that Table 2 text, verbatim (with its placeholder).
	Text string
	// Meaning is the Table 3 description, verbatim, up to its list of
	// causes; for the retired codes 006 and 007 it is "No longer used.".
	Meaning string
	// Causes is the lettered list that follows "Possible causes of this
	// warning include:" in the description, one item per string, verbatim.
	Causes []string
	// Section is "" for the general codes, Table3Incoming or Table3Outgoing
	// for the certificate codes.
	Section string
	// Retired marks 006 and 007 ("No longer used."): Warning does not
	// return them.
	Retired bool
	// Line is the line of spec/001_acfa9b4a4c35e941.txt the row is on.
	Line int
}

// Table3 is Table 3 in the spec's order.
var Table3 = []WarningCode{
	// Table 3 row 001, spec line 561.
	{Code: "001", Row: SecureDeliveryFailure, Line: 561,
		Meaning: "SECURE DELIVERY FAILURE: The sender is trying to send a secure message (indicated by a trigger word) to an agency that does not have the appropriate Secure Email capability."},
	// Table 3 row 002, spec line 562.
	{Code: "002", Row: UnverifiedMessage, Line: 562,
		Meaning: "UNVERIFIED MESSAGE: This message did not come directly from the apparent sender's agency. The From: field shows a Participating agency address, i.e. nothing to indicate an external sender. Possible causes of this warning include:",
		Causes: []string{
			"a. The mail may have been forwarded by a distribution (List serve) service",
			"b. The sender is working away from their agency, and using an ISP mail account",
			"c. Someone other than the sender may have sent the message and falsified the email address",
		}},
	// Table 3 row 003, spec line 563.
	{Code: "003", Row: UnverifiedMessage, Line: 563,
		Meaning: "UNVERIFIED MESSAGE: This message was altered en-route. Possible causes of this warning include:",
		Causes: []string{
			"a. The message was garbled in-transit due to communications problems",
			"b. The message was intercepted and altered while in transit",
		}},
	// Table 3 row 004, spec line 564.
	{Code: "004", Row: UnverifiedMessage, Line: 564,
		Meaning: "UNVERIFIED MESSAGE: A message containing a trigger word has arrived from a non-Participating Agency. The confidentiality, integrity or authenticity of the message cannot be guaranteed."},
	// Table 3 row 005, spec line 565 ("sender's" is underlined in the spec).
	{Code: "005", Row: UnverifiedMessage, Line: 565,
		Meaning: "UNVERIFIED MESSAGE: A message has arrived which appears to be from the sender's agency. Possible causes of this warning include:",
		Causes: []string{
			"a. The mail may have been forwarded by a distribution (List serve) service",
			"b. The sender is working away from our agency, and using an ISP mail account",
			"c. Someone other than the sender may have sent the message and falsified the email address",
		}},
	// Table 3 row 006, spec line 566.
	{Code: "006", Meaning: "No longer used.", Retired: true, Line: 566},
	// Table 3 row 007, spec line 567.
	{Code: "007", Meaning: "No longer used.", Retired: true, Line: 567},
	// Table 3 row 008, spec line 569.
	{Code: "008", Row: UnverifiedMessage, Line: 569,
		Meaning: "UNVERIFIED MESSAGE: The message was sent from a Participating Agency but only signed, not encrypted."},
	// Table 3 row 009, spec line 570.
	{Code: "009", Row: SystemFailureMessage, Line: 570,
		Meaning: "SYSTEM FAILURE MESSAGE: A message has got through the rule set."},

	// Table 3, "INCOMING - Certificate Warning Messages" (spec line 571).
	// Table 3 row 101, spec line 572.
	{Code: "101", Row: UnverifiedMessage, Section: Table3Incoming, Line: 572,
		Meaning: "UNVERIFIED MESSAGE: The sender's certificate has been revoked / suspended for some reason."},
	// Table 3 row 102, spec line 573.
	{Code: "102", Row: UnverifiedMessage, Section: Table3Incoming, Line: 573,
		Meaning: "UNVERIFIED MESSAGE: The sender's certificate is untrusted / unknown for some reason."},
	// Table 3 row 103, spec line 574.
	{Code: "103", Row: UnverifiedMessage, Section: Table3Incoming, Line: 574,
		Meaning: "UNVERIFIED MESSAGE: The sender's certificate has expired. The Secure Email system could not retrieve a new one."},
	// Table 3 row 104, spec line 575.
	{Code: "104", Row: UnverifiedMessage, Section: Table3Incoming, Line: 575,
		Meaning: "UNVERIFIED MESSAGE: The sender's certificate status could not be verified against the Certificate Revocation List."},
	// Table 3 row 105, spec line 576.
	{Code: "105", Row: UnverifiedMessage, Section: Table3Incoming, Line: 576,
		Meaning: "UNVERIFIED MESSAGE: The sender's certificate is not yet valid."},
	// Table 3 row 111, spec line 577.
	{Code: "111", Row: UnverifiedMessage, Section: Table3Incoming, Line: 577,
		Meaning: "UNVERIFIED MESSAGE: The recipient's certificate has been revoked / suspended for some reason."},
	// Table 3 row 112, spec line 578.
	{Code: "112", Row: UnverifiedMessage, Section: Table3Incoming, Line: 578,
		Meaning: "UNVERIFIED MESSAGE: The recipient's certificate is associated with an untrusted / unknown CA."},
	// Table 3 row 113, spec line 579.
	{Code: "113", Row: UnverifiedMessage, Section: Table3Incoming, Line: 579,
		Meaning: "UNVERIFIED MESSAGE: The recipient's certificate has expired. The Secure Email system could not retrieve a new one."},
	// Table 3 row 114, spec line 580.
	{Code: "114", Row: UnverifiedMessage, Section: Table3Incoming, Line: 580,
		Meaning: "UNVERIFIED MESSAGE: The recipient's certificate status could not be verified against the Certificate Revocation List."},
	// Table 3 row 115, spec line 581.
	{Code: "115", Row: UnverifiedMessage, Section: Table3Incoming, Line: 581,
		Meaning: "UNVERIFIED MESSAGE: The recipient's certificate is not yet valid."},

	// Table 3, "OUTGOING - Certificate Warning Messages" (spec line 582).
	// Table 3 row 201, spec line 583.
	{Code: "201", Row: SecureDeliveryDelayed, Section: Table3Outgoing, Line: 583,
		Meaning: "SECURE DELIVERY DELAYED: The sender's Secure Email system does not have a valid certificate for the recipient agency, and cannot auto-discover a valid certificate. The message has been held for future delivery."},
	// Table 3 row 202, spec line 585.
	{Code: "202", Row: SecureDeliveryDelayed, Section: Table3Outgoing, Line: 585,
		Meaning: "SECURE DELIVERY DELAYED: The sender's Secure Email system has (or has auto-discovered) a valid certificate for the recipient agency, but cannot determine its status (no CRL, etc) The message has been held for future delivery."},
	// Table 3 row 211, spec line 586.
	{Code: "211", Row: SecureDeliveryDelayed, Section: Table3Outgoing, Line: 586,
		Meaning: "SECURE DELIVERY DELAYED: The sender's Secure Email system does not have a valid certificate for itself and cannot auto-discover a valid certificate. The message has been held for future delivery."},
	// Table 3 row 212, spec line 587.
	{Code: "212", Row: SecureDeliveryDelayed, Section: Table3Outgoing, Line: 587,
		Meaning: "SECURE DELIVERY DELAYED: The sender's Secure Email system has (or has auto-discovered) a valid certificate for itself, but cannot determine its status (no CRL, etc). The message has been held for future delivery."},
}

var table3ByCode = func() map[string]int {
	m := make(map[string]int, len(Table3))
	for i := range Table3 {
		if t, ok := Table2Entry(Table3[i].Row); ok {
			Table3[i].Text = t.Text
		}
		m[Table3[i].Code] = i
	}
	return m
}()

// Warning returns the Table 3 row for code. Retired codes (006, 007) and
// codes not in Table 3 are not found.
func Warning(code string) (WarningCode, bool) {
	i, ok := table3ByCode[code]
	if !ok || Table3[i].Retired {
		return WarningCode{}, false
	}
	w := Table3[i]
	w.Causes = append([]string(nil), w.Causes...)
	return w, true
}

// Codes returns the codes in use (Table 3 without the retired ones), sorted.
func Codes() []string {
	var out []string
	for _, w := range Table3 {
		if !w.Retired {
			out = append(out, w.Code)
		}
	}
	sort.Strings(out)
	return out
}

// Table 4: "Secure Email Delivery Messages" (spec lines 589-593), sent back to
// the sender by the receiving gateway (R73, R74).
const (
	// Table4Intro is the sentence above Table 4 (spec line 591): the text
	// must be the first line of the delivery message.
	Table4Intro = "The following text must be displayed as part of any Secure Email Delivery message. And as the first line."
	// DeliveryReceiptText is Table 4 row 1, spec line 592 ("Receiving (back
	// to sender)").
	DeliveryReceiptText = "DELIVERY RECEIPT – Your message has been successfully delivered to the organisation responsible for handling the addressee's messages. This is not a read receipt."
	// NonDeliveryReportText is Table 4 row 2, spec line 593 ("Receiving
	// (back to sender)").
	NonDeliveryReportText = "NON DELIVERY REPORT – Your message was NOT delivered to the organisation responsible for handling the addressee's messages."
)

// The sentences R73 and R74 say the receipts MUST include.
const (
	// R73Wording is R73's "The delivery receipt wording MUST include" (spec
	// line 391). DeliveryReceiptText contains it.
	R73Wording = "Your message has been successfully delivered to the organisation responsible for handling the addressee's messages. This is not a read receipt."
	// R74Wording is R74's "The failed delivery receipt wording MUST include"
	// (spec line 392), with its trailing ellipsis: the spec lets the gateway
	// append the reason for the failure. It differs from Table 4 row 2 ("has
	// NOT been" against "was NOT"), so a NON DELIVERY REPORT carries both.
	R74Wording = "Your message has NOT been delivered to the organisation responsible for handling the addressee's messages..."
	// R74Sentence is R74Wording without the ellipsis, as rendered before
	// the reason.
	R74Sentence = "Your message has NOT been delivered to the organisation responsible for handling the addressee's messages"
)

// CertStatus names a row of "TABLE 1: Certificate Processing Behaviour"
// (spec lines 300-309): what the other agency's certificate is.
type CertStatus string

const (
	// CertValid is Table 1 row "Valid" (spec line 303).
	CertValid CertStatus = "Valid"
	// CertRevoked is Table 1 row "Revoked / Suspended" (spec line 304).
	CertRevoked CertStatus = "Revoked / Suspended"
	// CertUntrusted is Table 1 row "Untrusted / Unknown CA" (spec lines
	// 305-307).
	CertUntrusted CertStatus = "Untrusted / Unknown CA"
	// CertExpired is Table 1 row "Expired" (spec line 308).
	CertExpired CertStatus = "Expired"
	// CertUnknownStatus is Table 1 row "Unknown Status (CRL unavailable)"
	// (spec line 309).
	CertUnknownStatus CertStatus = "Unknown Status (CRL unavailable)"
	// CertNotYetValid is not a Table 1 row: R36 lists "the certificate has
	// not yet been issued" among the failures and Table 3 has codes for it
	// (105, 115). It is handled like the other failures of its column.
	CertNotYetValid CertStatus = "not yet valid"
)

// Table1Row is one row of Table 1, the cells verbatim without list markup.
type Table1Row struct {
	Status    CertStatus
	Sending   string // "Sending a message (encrypting)"
	Receiving string // "Receiving a message (verifying)"
	Line      int    // first spec line of the row
}

// Table1 is "TABLE 1: Certificate Processing Behaviour" (spec lines 300-309).
var Table1 = []Table1Row{
	// Table 1 row "Valid", spec line 303.
	{CertValid, "Deliver message.", "Deliver message.", 303},
	// Table 1 row "Revoked / Suspended", spec line 304.
	{CertRevoked,
		"Auto-discover valid public key certificate (LDAP). Success: Send message. Fail: Hold message. Notify Sender, Sender's Postmaster – SECURE DELIVERY DELAYED.",
		"Generate warning to Recipient: UNVERIFIED MESSAGE. Deliver message. Notify Recipient's Postmaster.", 304},
	// Table 1 row "Untrusted / Unknown CA", spec lines 305-307 (the sending
	// cell is split by a page break after "Notify").
	{CertUntrusted,
		"Auto-discover valid public key certificate (LDAP). Success: Send message. Notify Recipient's Postmaster. Fail: Hold message. Notify Sender, Sender's Postmaster – SECURE DELIVERY DELAYED.",
		"Generate warning to Recipient: UNVERIFIED MESSAGE. Deliver message. Notify Recipient's Postmaster.", 305},
	// Table 1 row "Expired", spec line 308.
	{CertExpired,
		"Auto-discover valid public key certificate (LDAP). Success: Send message. Fail: Hold message. Notify Sender, Sender's Postmaster – SECURE DELIVERY DELAYED.",
		"Generate warning to Recipient: UNVERIFIED MESSAGE. Deliver message. Notify Recipient's Postmaster.", 308},
	// Table 1 row "Unknown Status (CRL unavailable)", spec line 309.
	{CertUnknownStatus,
		"Wait and try to retrieve certificate status later. Success: Send message. Fail: Hold message. Notify Sender, Sender's Postmaster – SECURE DELIVERY DELAYED.",
		"Generate warning to Recipient: UNVERIFIED MESSAGE. Deliver message. Notify Recipient's Postmaster.", 309},
}

// Table 1 does not print codes; the codes come from Table 3's certificate
// sections, whose descriptions name the same failures. The pairing below is
// read off those descriptions (spec lines 572-587):
//
//	receiving, sender's certificate:    101 revoked, 102 untrusted, 103 expired, 104 CRL, 105 not yet valid
//	receiving, recipient's certificate: 111 revoked, 112 untrusted CA, 113 expired, 114 CRL, 115 not yet valid
//	sending, recipient agency's:        201 no valid certificate (revoked, untrusted, expired, not yet valid)
//	                                    202 valid but status unknown (no CRL)
//	sending, our own:                   211 no valid certificate, 212 status unknown
var (
	certReceivingSender = map[CertStatus]string{
		CertRevoked: "101", CertUntrusted: "102", CertExpired: "103", CertUnknownStatus: "104", CertNotYetValid: "105",
	}
	certReceivingRecipient = map[CertStatus]string{
		CertRevoked: "111", CertUntrusted: "112", CertExpired: "113", CertUnknownStatus: "114", CertNotYetValid: "115",
	}
)

// CertOwner says whose certificate failed.
type CertOwner int

const (
	// Peer is the other agency's certificate: the sender's when receiving,
	// the recipient agency's when sending.
	Peer CertOwner = iota
	// Own is this gateway's certificate: the recipient's when receiving,
	// the sender's ("for itself") when sending.
	Own
)

// CertificateCode returns the Table 3 code for a Table 1 outcome: status of
// the certificate, whose it is, and whether the gateway was sending
// (encrypting) or receiving (verifying). A valid certificate has no code.
func CertificateCode(status CertStatus, owner CertOwner, sending bool) (string, bool) {
	if status == CertValid || status == "" {
		return "", false
	}
	if sending {
		unknown := status == CertUnknownStatus
		switch {
		case owner == Peer && unknown:
			return "202", true
		case owner == Peer:
			if _, ok := certReceivingSender[status]; ok {
				return "201", true
			}
		case unknown:
			return "212", true
		default:
			if _, ok := certReceivingSender[status]; ok {
				return "211", true
			}
		}
		return "", false
	}
	m := certReceivingSender
	if owner == Own {
		m = certReceivingRecipient
	}
	c, ok := m[status]
	return c, ok
}

// The rules that change a warning's grade (list.go implements them).
const (
	// R199Wording is R199 (spec line 738) without its list of headers,
	// which is ListHeaders.
	R199Wording = `The Gateway SHOULD support a "LISTSERVE" rule, and use this as the basis to downgrade Warning 2 (unverified external sender) or Warning 5 (unverified internal sender) from a HARD warning, to a SOFT warning. The test to detect a message from a Listserve is the presence of one or more of the following headers in the message {B Req}:`
	// R108Wording is R108 (spec line 453).
	R108Wording = "The Participating Agency SHOULD support a “WORKSPACE” ruleset, and use this as the basis to downgrade UNVERIFIED messages to NO warning. The “WORKSPACE” rule set will apply to all domains obtained on a regular basis from the LDAP workspace list. {B Req}"
)

// R199ListHeaders is R199's list of listserve headers (spec line 738),
// verbatim, in the spec's order. IsListMail reads them as header tests
// (see listTests in list.go for how "mailing list:" and "x-mailman:" are
// matched).
var R199ListHeaders = []string{
	"errors-to:",
	"list-archive:",
	"list-help:",
	"list-id:",
	"list-name:",
	"list-post:",
	"list-subscribe:",
	"list-unsubscribe:",
	"mailing list:",
	"precedence: bulk",
	"x-beenthere:",
	"x-mailman:",
}
