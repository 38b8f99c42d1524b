package pipeline

import (
	"sort"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// ClassifyOptions turns the policy's classification settings into the
// scanner's options (R29-R35, R109, R114).
func ClassifyOptions(p *policy.Policy) classify.Options {
	levels := make([]classify.Level, 0, len(p.Classification.Levels))
	for w, r := range p.Classification.Levels {
		levels = append(levels, classify.Level{Word: w, Rank: r})
	}
	sort.Slice(levels, func(i, j int) bool {
		if levels[i].Rank != levels[j].Rank {
			return levels[i].Rank < levels[j].Rank
		}
		return levels[i].Word < levels[j].Word
	})
	// MaxBytes: a message past limits.max_message_size is refused anyway;
	// should any path feed the scanner more, what it did not read makes
	// the result unreadable rather than silently partial (issue 11). The
	// slack covers the header block as the milter rebuilds it.
	var maxBytes int64
	if p.Limits.MaxMessageSize > 0 {
		maxBytes = p.Limits.MaxMessageSize + 1<<20
	}
	return classify.Options{Levels: levels, ScanAttachments: p.Classification.ScanAttachments, MaxBytes: maxBytes}
}
