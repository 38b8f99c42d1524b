package milter

import (
	"strconv"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/internal/jsonlog"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// The decision line's structured values (checks, dkim, dmarc, recipients,
// reasons) are written here as jsonlog.Raw instead of by encoding/json's
// reflection, which was about half of the line's cost (issue 13 point 7).
// The output is byte for byte what encoding/json writes for the same
// values: TestDecisionJSON compares the two on random values of every
// field, so a field added to one of these types and not here fails it.

// appendJSONKey appends ,"key": (no comma before the first key of an
// object, whose '{' is the last byte).
func appendJSONKey(b []byte, key string) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendJSONField(b []byte, key, value string) []byte {
	return jsonlog.AppendString(appendJSONKey(b, key), value)
}

// appendJSONOmitEmpty is appendJSONField for a field tagged omitempty.
func appendJSONOmitEmpty(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	return appendJSONField(b, key, value)
}

func appendJSONBool(b []byte, key string, v bool) []byte {
	return strconv.AppendBool(appendJSONKey(b, key), v)
}

// appendJSONStrings appends a []string: null when nil, as encoding/json.
func appendJSONStrings(b []byte, ss []string) []byte {
	return appendJSONList(b, ss, func(b []byte, s *string) []byte { return jsonlog.AppendString(b, *s) })
}

// appendJSONList appends a slice with each element's own appender.
func appendJSONList[T any](b []byte, xs []T, each func([]byte, *T) []byte) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(b, &xs[i])
	}
	return append(b, ']')
}

// appendAuthCheck follows policy.AuthCheck's json tags.
func appendAuthCheck(b []byte, c *policy.AuthCheck) []byte {
	b = append(b, '{')
	b = appendJSONField(b, "result", string(c.Result))
	b = appendJSONField(b, "scope", c.Scope)
	b = appendJSONField(b, "identity", c.Identity)
	b = appendJSONField(b, "domain", c.Domain)
	b = appendJSONOmitEmpty(b, "explanation", c.Explanation)
	b = appendJSONBool(b, "record_found", c.RecordFound)
	b = appendJSONOmitEmpty(b, "all_qualifier", c.AllQualifier)
	b = appendJSONOmitEmpty(b, "detail", c.Detail)
	b = appendJSONOmitEmpty(b, "field", c.Field)
	if c.OtherScopeRecord {
		b = appendJSONBool(b, "other_scope_record", true)
	}
	return append(b, '}')
}

// appendDKIMCheck follows policy.DKIMCheck's json tags.
func appendDKIMCheck(b []byte, c *policy.DKIMCheck) []byte {
	b = append(b, '{')
	b = appendJSONField(b, "result", string(c.Result))
	b = appendJSONField(b, "domain", c.Domain)
	b = appendJSONField(b, "selector", c.Selector)
	b = appendJSONField(b, "header_b", c.HeaderB)
	b = appendJSONField(b, "algorithm", c.Algorithm)
	if c.BodyLengthLimited {
		b = appendJSONBool(b, "body_length_limited", true)
	}
	b = appendJSONOmitEmpty(b, "detail", c.Detail)
	return append(b, '}')
}

// appendDMARCCheck follows policy.DMARCCheck's json tags; null for nil.
func appendDMARCCheck(b []byte, c *policy.DMARCCheck) []byte {
	if c == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	b = appendJSONField(b, "result", string(c.Result))
	b = appendJSONField(b, "disposition", c.Disposition)
	b = appendJSONField(b, "policy", c.Published)
	b = appendJSONField(b, "header_from", c.FromDomain)
	b = appendJSONBool(b, "spf_aligned", c.SPFAligned)
	b = appendJSONBool(b, "dkim_aligned", c.DKIMAligned)
	b = appendJSONOmitEmpty(b, "reason", c.Reason)
	return append(b, '}')
}

// appendRecipientDecision follows policy.RecipientDecision's json tags.
func appendRecipientDecision(b []byte, d *policy.RecipientDecision) []byte {
	b = append(b, '{')
	b = appendJSONField(b, "address", d.Address)
	b = appendJSONField(b, "decision", string(d.Routing))
	b = appendJSONBool(b, "allowed", d.Allowed)
	b = appendJSONBool(b, "internal", d.Internal)
	b = appendJSONField(b, "reason", d.Reason)
	return append(b, '}')
}

// appendMarking follows classify.Marking's json tags.
func appendMarking(b []byte, m *classify.Marking) []byte {
	b = append(b, '{')
	b = appendJSONField(b, "word", m.Word)
	b = appendJSONOmitEmpty(b, "endorsement", m.Endorsement)
	b = appendJSONField(b, "where", m.Where)
	return append(b, '}')
}
