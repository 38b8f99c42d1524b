package pipeline

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

// NewState computes the classifier options once per load, and Begin uses
// them rather than recomputing them (issue 13 point 5).
func TestNewStateClassifyOptionsOnce(t *testing.T) {
	p, err := policy.Parse("t", nil, []string{"classification.scan_attachments=true"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(p, nopChecker{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Classify == nil || !reflect.DeepEqual(*st.Classify, ClassifyOptions(p)) || !st.Classify.ScanAttachments {
		t.Fatalf("classify options %+v, want %+v", st.Classify, ClassifyOptions(p))
	}
	// Begin takes the state's options: an invalid set shows they are used.
	st.Classify = &classify.Options{Levels: []classify.Level{}}
	tx, _, err := Begin(st, policy.Conn{}, policy.Envelope{}, time.Now())
	if !errors.Is(err, classify.ErrOptions) {
		if tx != nil {
			tx.Close()
		}
		t.Fatalf("Begin did not use the state's classifier options: %v", err)
	}
}
