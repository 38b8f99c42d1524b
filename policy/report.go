package policy

// Report is a verdict in the form `check` prints as JSON and tests compare.
type Report struct {
	Direction      Direction `json:"direction"`
	Stage          Stage     `json:"stage"`
	Action         Action    `json:"action"`
	Reply          string    `json:"reply"`
	WarningCode    string    `json:"warning_code"`
	WarningMode    string    `json:"warning_mode"`
	Classification string    `json:"classification"`
	Unreadable     []string  `json:"unreadable"`
	Reasons        []string  `json:"reasons"`
	HeadersAdded   []string  `json:"headers_added"`
	HeadersRemoved []string  `json:"headers_removed"`
	// Recipients: the outbound decision per recipient (empty inbound).
	Recipients        []RecipientDecision `json:"recipients"`
	RecipientsRemoved []string            `json:"recipients_removed"`
	Breaches          []string            `json:"breaches"`
	// Sender checks (M-RCV-SPF, M-RCV-SID): results, "" when not run.
	SPF            string      `json:"spf"`
	SPFHelo        string      `json:"spf_helo"`
	SenderID       string      `json:"senderid"`
	SPFExplanation string      `json:"spf_explanation,omitempty"`
	Checks         []AuthCheck `json:"checks"`
	DKIM           []DKIMCheck `json:"dkim"`
	DMARC          *DMARCCheck `json:"dmarc"`
	Notices        []Notice    `json:"notices"`
	// Transforms are the body transforms the gateway runs, in order.
	Transforms []Transform `json:"transforms"`
	// Copies are the other forms of the message (outbound S/MIME, issue
	// 14), each with its recipients.
	Copies []Copy `json:"copies"`
}

// Report renders the verdict for `check`. Lists are never null.
func (v Verdict) Report() Report {
	r := Report{
		Direction:         v.Direction,
		Stage:             v.Stage,
		Action:            v.Action,
		WarningCode:       v.WarningCode,
		WarningMode:       string(v.WarningMode),
		Notices:           append([]Notice{}, v.Notices...),
		Transforms:        append([]Transform{}, v.Transforms...),
		Copies:            append([]Copy{}, v.Copies...),
		Classification:    v.Classification,
		Unreadable:        append([]string{}, v.Unreadable...),
		Reasons:           append([]string{}, v.Reasons...),
		HeadersAdded:      []string{},
		HeadersRemoved:    []string{},
		Recipients:        append([]RecipientDecision{}, v.Recipients...),
		Breaches:          append([]string{}, v.Breaches...),
		RecipientsRemoved: []string{},
	}
	if v.Reply != nil {
		r.Reply = v.Reply.String()
	}
	r.Checks = append([]AuthCheck{}, v.Checks...)
	r.DKIM = append([]DKIMCheck{}, v.Message.DKIM...)
	r.DMARC = v.Message.DMARC
	for _, c := range v.Checks {
		switch c.Scope {
		case "mfrom":
			if r.SPF == "" {
				r.SPF, r.SPFExplanation = string(c.Result), c.Explanation
			}
		case "helo":
			r.SPFHelo = string(c.Result)
		case "pra":
			r.SenderID = string(c.Result)
		}
	}
	// Edits only take effect when the message is kept.
	if v.Action == Accept || v.Action == Quarantine {
		r.RecipientsRemoved = append(r.RecipientsRemoved, v.RemoveRcpts...)
		for _, e := range v.Edits {
			switch e.Op {
			case OpAdd:
				r.HeadersAdded = append(r.HeadersAdded, e.Name+": "+e.Value)
			case OpDelete:
				r.HeadersRemoved = append(r.HeadersRemoved, e.Name+": "+e.Value)
			}
		}
	}
	return r
}
