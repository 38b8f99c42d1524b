package heldmail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

const testMsg = "From: alice@agency.govt.nz\r\nTo: bob@peer.govt.nz\r\nSubject: budget\r\nDate: Tue, 01 Dec 2026 10:00:00 +1300\r\n\r\nbody line\r\n"

func held(received time.Time) pipeline.HeldMessage {
	return pipeline.HeldMessage{
		Envelope: policy.Envelope{QueueID: "ABC123", From: "alice@agency.govt.nz", Rcpts: []string{"bob@peer.govt.nz"}, AuthUser: "alice"},
		Domain:   "peer.govt.nz", Code: "201", Reason: "peer certificate revoked", Received: received,
	}
}

func openStore(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "held"), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPutDurable: after Put the two files exist, the metadata parses with
// what was given, the message is the bytes given, and no temporary file
// is left.
func TestPutDurable(t *testing.T) {
	s := openStore(t, Options{})
	rec := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	id, err := s.Put(context.Background(), held(rec), strings.NewReader(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(id) {
		t.Fatalf("id %q not valid", id)
	}
	raw, err := os.ReadFile(filepath.Join(s.Dir(), id+".eml"))
	if err != nil || string(raw) != testMsg {
		t.Fatalf("eml = %q, %v", raw, err)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(), id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	if e.ID != id || e.Code != "201" || e.Domain != "peer.govt.nz" || !e.Received.Equal(rec) ||
		e.Envelope.From != "alice@agency.govt.nz" || len(e.Envelope.Rcpts) != 1 || e.Size != int64(len(testMsg)) || len(e.SHA256) != 64 {
		t.Fatalf("entry = %+v", e)
	}
	des, _ := os.ReadDir(s.Dir())
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			t.Fatalf("temporary file left: %s", de.Name())
		}
	}
	list, probs, err := s.List()
	if err != nil || len(list) != 1 || len(probs) != 0 || list[0].ID != id {
		t.Fatalf("List = %v %v %v", list, probs, err)
	}
	h, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	got, err := io.ReadAll(h)
	if err != nil || string(got) != testMsg {
		t.Fatalf("Get read %q, %v", got, err)
	}
}

// TestIDsUnguessable: distinct, filename-safe, and ValidID refuses paths.
func TestIDsUnguessable(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id, err := newID()
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] || !ValidID(id) {
			t.Fatalf("id %q repeated or invalid", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "../../etc/passwd", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "aaaaaaaaaaaaaaaaaaaaaaaaa/", "aaaaaaaaaaaaaaaaaaaaaaaaa1"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
	s := openStore(t, Options{})
	if _, err := s.Get("../../etc/passwd"); !errors.Is(err, ErrBadID) {
		t.Fatalf("Get(path) = %v, want ErrBadID", err)
	}
	if err := s.Remove("../x"); !errors.Is(err, ErrBadID) {
		t.Fatalf("Remove(path) = %v, want ErrBadID", err)
	}
}

// TestBounds: past the count or the size Put refuses with ErrFull and
// stores nothing; removing an entry makes room again.
func TestBounds(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{MaxCount: 2})
	var ids []string
	for i := 0; i < 2; i++ {
		id, err := s.Put(ctx, held(time.Now()), strings.NewReader(testMsg))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	_, err := s.Put(ctx, held(time.Now()), strings.NewReader(testMsg))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "smime.held_max_count") {
		t.Fatalf("third Put = %v, want ErrFull naming smime.held_max_count", err)
	}
	if l, _, _ := s.List(); len(l) != 2 {
		t.Fatalf("%d entries after a refused Put", len(l))
	}
	assertNoTemp(t, s.Dir())
	if err := s.Remove(ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, held(time.Now()), strings.NewReader(testMsg)); err != nil {
		t.Fatalf("Put after Remove: %v", err)
	}

	s2 := openStore(t, Options{MaxBytes: int64(len(testMsg)) + 10})
	if _, err := s2.Put(ctx, held(time.Now()), strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	_, err = s2.Put(ctx, held(time.Now()), strings.NewReader(testMsg))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "smime.held_max_size") {
		t.Fatalf("Put past the size = %v, want ErrFull naming smime.held_max_size", err)
	}
	assertNoTemp(t, s2.Dir())
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			t.Fatalf("temporary file left: %s", de.Name())
		}
	}
}

// TestConcurrentPuts: many Puts at once against a bound: exactly the
// bound's number succeed, the rest get ErrFull, and every stored entry is
// whole.
func TestConcurrentPuts(t *testing.T) {
	s := openStore(t, Options{MaxCount: 20})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			msg := fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)
			_, err := s.Put(context.Background(), held(time.Now()), strings.NewReader(msg))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrFull):
				full++
			default:
				t.Errorf("Put: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if ok != 20 || full != 20 {
		t.Fatalf("ok %d full %d, want 20 and 20", ok, full)
	}
	list, probs, err := s.List()
	if err != nil || len(list) != 20 || len(probs) != 0 {
		t.Fatalf("List: %d entries, problems %v, %v", len(list), probs, err)
	}
	for _, e := range list {
		h, err := s.Get(e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(h); err != nil {
			t.Fatalf("%s: %v", e.ID, err)
		}
		h.Close()
	}
}

// TestCrashLeftovers: what a crash can leave (a temporary file, a message
// without metadata, metadata without its message, metadata that does not
// parse) is reported by List, not listed as an entry, and Repair cleans
// the temporary file and moves the rest to failed/ once older than the
// grace period, never deleting a message.
func TestCrashLeftovers(t *testing.T) {
	now := time.Now()
	clock := now
	s := openStore(t, Options{Now: func() time.Time { return clock }})
	good, err := s.Put(context.Background(), held(now), strings.NewReader(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	orphan, _ := newID()
	nometa, _ := newID()
	corrupt, _ := newID()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(tmpPrefix+orphan+"-123", "half a message")
	write(orphan+".eml", testMsg)
	write(nometa+".json", `{"id":"`+nometa+`","size":3,"sha256":"`+strings.Repeat("a", 64)+`"}`)
	write(corrupt+".eml", testMsg)
	write(corrupt+".json", `{"id":"`+corrupt+`", "size": 12`)

	list, probs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != good {
		t.Fatalf("entries %v, want only the good one", list)
	}
	if len(probs) != 4 {
		t.Fatalf("problems %+v, want 4", probs)
	}
	// Young: Repair leaves them (a write in progress elsewhere).
	if done, err := s.Repair(); err != nil || len(done) != 0 {
		t.Fatalf("young Repair = %v, %v", done, err)
	}
	clock = time.Now().Add(RepairGrace + time.Minute)
	done, err := s.Repair()
	if err != nil || len(done) != 4 {
		t.Fatalf("Repair = %v, %v", done, err)
	}
	list, probs, _ = s.List()
	if len(list) != 1 || len(probs) != 0 {
		t.Fatalf("after Repair: %v %v", list, probs)
	}
	if _, err := os.Stat(filepath.Join(dir, FailedDir, orphan+".eml")); err != nil {
		t.Fatalf("orphan message not kept in failed/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FailedDir, corrupt+".eml")); err != nil {
		t.Fatalf("message with corrupt metadata not kept in failed/: %v", err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, FailedDir, corrupt+".json.corrupt")); err != nil || !strings.Contains(string(raw), `"size": 12`) {
		t.Fatalf("corrupt metadata not kept: %q %v", raw, err)
	}
	failed, fprobs, err := s.ListFailed()
	if err != nil {
		t.Fatal(err)
	}
	notes := 0
	for _, e := range failed {
		if strings.HasPrefix(e.Note, "repaired: ") {
			notes++
		}
	}
	// The metadata whose message was missing is kept in failed/ too, and
	// reported there as what it is.
	if notes != 2 || len(fprobs) != 1 || fprobs[0].ID != nometa {
		t.Fatalf("failed entries %+v (problems %v), want 2 with a repair note and the message-less metadata", failed, fprobs)
	}
}

// TestGetCorrupt: a message changed on disk after Put (same size) reads
// as ErrCorrupt at its end, not as a clean EOF; a different size is a
// List problem.
func TestGetCorrupt(t *testing.T) {
	s := openStore(t, Options{})
	id, err := s.Put(context.Background(), held(time.Now()), strings.NewReader(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir(), id+".eml")
	if err := os.WriteFile(path, bytes.ToUpper([]byte(testMsg)), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(h); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a changed message = %v, want ErrCorrupt", err)
	}
	h.Close()
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, probs, _ := s.List()
	if len(list) != 0 || len(probs) != 1 || !strings.Contains(probs[0].Err, "5 bytes") {
		t.Fatalf("List = %v %v", list, probs)
	}
}

// TestLockUpdateRemoveFail: Get locks the entry (a second Get is
// ErrBusy); Update keeps the digest; Fail moves both files to failed/
// with the note; Remove deletes.
func TestLockUpdateRemoveFail(t *testing.T) {
	s := openStore(t, Options{})
	ctx := context.Background()
	a, _ := s.Put(ctx, held(time.Now()), strings.NewReader(testMsg))
	b, _ := s.Put(ctx, held(time.Now()), strings.NewReader(testMsg))
	h, err := s.Get(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(a); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Get = %v, want ErrBusy", err)
	}
	e := h.Entry
	e.Tries, e.LastReason, e.SHA256 = 3, "still revoked", "tampered"
	if err := s.Update(e); err != nil {
		t.Fatal(err)
	}
	h.Close()
	got, err := s.Entry(a)
	if err != nil || got.Tries != 3 || got.LastReason != "still revoked" || len(got.SHA256) != 64 || got.SHA256 == "tampered" {
		t.Fatalf("after Update: %+v %v", got, err)
	}
	if err := s.Fail(a, "gave up"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), a+".eml")); !os.IsNotExist(err) {
		t.Fatalf("message still in the store: %v", err)
	}
	fe, err := s.FailedEntry(a)
	if err != nil || fe.Note != "gave up" || fe.Failed.IsZero() || fe.Tries != 3 {
		t.Fatalf("failed entry %+v %v", fe, err)
	}
	if raw, err := os.ReadFile(filepath.Join(s.Dir(), FailedDir, a+".eml")); err != nil || string(raw) != testMsg {
		t.Fatalf("failed message %q %v", raw, err)
	}
	if err := s.Remove(b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Entry(b); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Entry after Remove = %v", err)
	}
	if l, p, _ := s.List(); len(l) != 0 || len(p) != 0 {
		t.Fatalf("List = %v %v", l, p)
	}
}

// TestInterruptedFail: a crash after the message moved to failed/ but
// before the old metadata went is completed by Repair.
func TestInterruptedFail(t *testing.T) {
	clock := time.Now()
	s := openStore(t, Options{Now: func() time.Time { return clock }})
	id, _ := s.Put(context.Background(), held(time.Now()), strings.NewReader(testMsg))
	e, _ := s.Entry(id)
	if err := replaceMeta(filepath.Join(s.Dir(), FailedDir), e); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(s.Dir(), id+".eml"), filepath.Join(s.Dir(), FailedDir, id+".eml")); err != nil {
		t.Fatal(err)
	}
	_, probs, _ := s.List()
	if len(probs) != 1 {
		t.Fatalf("problems %v", probs)
	}
	clock = clock.Add(RepairGrace + time.Minute)
	if done, err := s.Repair(); err != nil || len(done) != 1 {
		t.Fatalf("Repair = %v %v", done, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), id+".json")); !os.IsNotExist(err) {
		t.Fatalf("old metadata left: %v", err)
	}
	if raw, err := os.ReadFile(filepath.Join(s.Dir(), FailedDir, id+".eml")); err != nil || string(raw) != testMsg {
		t.Fatalf("message in failed/: %q %v", raw, err)
	}
}

// TestPutContextCancelled: a Put whose context ends stores nothing.
func TestPutContextCancelled(t *testing.T) {
	s := openStore(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, held(time.Now()), strings.NewReader(testMsg)); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if l, p, _ := s.List(); len(l) != 0 || len(p) != 0 {
		t.Fatalf("List = %v %v", l, p)
	}
}

func TestOpenRelative(t *testing.T) {
	if _, err := Open("held", Options{}); err == nil {
		t.Fatal("Open of a relative path succeeded")
	}
}
