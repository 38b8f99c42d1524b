package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nzsecure-milter/nzsecure-milter/heldmail"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
	"github.com/nzsecure-milter/nzsecure-milter/pipeline"
	"github.com/nzsecure-milter/nzsecure-milter/policy"
)

func init() {
	register("held", "list mail held for a certificate problem or for the administrator (smime.held_dir); held show|retry|release|delete ID, held retry --all", runHeld)
}

// heldRow is one held message in the listing.
type heldRow struct {
	ID         string   `json:"id"`
	Received   string   `json:"received"`
	Sender     string   `json:"sender"`
	Recipients []string `json:"recipients"`
	Domain     string   `json:"domain"`
	Code       string   `json:"code"`
	Reason     string   `json:"reason"`
	Tries      int      `json:"tries"`
	LastTry    string   `json:"last_try,omitempty"`
	LastReason string   `json:"last_reason,omitempty"`
	QueueID    string   `json:"queue_id,omitempty"`
	Size       int64    `json:"size"`
	Failed     string   `json:"failed,omitempty"`
	Note       string   `json:"note,omitempty"`
	// AdminHold: held for the administrator (policy.HoldKind), released
	// only by `held release`.
	AdminHold string   `json:"admin_hold,omitempty"`
	Released  []string `json:"released,omitempty"`
}

func rowOf(e heldmail.Entry) heldRow {
	r := heldRow{ID: e.ID, Received: e.Received.UTC().Format(time.RFC3339), Sender: e.Envelope.From, Recipients: e.Envelope.Rcpts,
		Domain: e.Domain, Code: e.Code, Reason: e.Reason, Tries: e.Tries, LastReason: e.LastReason, QueueID: e.Envelope.QueueID,
		Size: e.Size, Note: e.Note, AdminHold: e.AdminHold, Released: e.Released}
	if r.Recipients == nil {
		r.Recipients = []string{}
	}
	if !e.LastTry.IsZero() {
		r.LastTry = e.LastTry.UTC().Format(time.RFC3339)
	}
	if !e.Failed.IsZero() {
		r.Failed = e.Failed.UTC().Format(time.RFC3339)
	}
	return r
}

// runHeld: `held` lists, `held show ID`, `held retry ID|--all` runs the
// retry the daemon runs (the same function, the same notices, the same
// decision log on stderr), `held release ID` sends a message held for the
// administrator (R62, R110; ID is the held-mail ID or the MTA queue ID
// the held-mail notice names), `held delete ID` moves to failed/ with a
// note.
// Exit 0 on success, 1 when an entry cannot be read or a retry failed, 2
// for usage errors.
func runHeld(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("held", "[show ID | retry ID|--all | release ID | delete ID]", stderr)
	var pf policyFlags
	pf.add(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	failed := fs.Bool("failed", false, "list or show the messages in failed/ (given up or deleted)")
	all := fs.Bool("all", false, "with retry: every held message")
	raw := fs.Bool("raw", false, "with show: print the stored message exactly as received")
	note := fs.String("note", "", "with delete: the administrator's `NOTE` kept with the message")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	verb := ""
	if len(pos) > 0 {
		verb, pos = pos[0], pos[1:]
	}
	switch {
	case verb == "" && len(pos) == 0:
		return heldList(p, *failed, *asJSON, stdout, stderr)
	case verb == "show" && len(pos) == 1:
		return heldShow(p, pos[0], *failed, *raw, *asJSON, stdout, stderr)
	case verb == "retry" && (len(pos) == 1) != *all:
		return heldRetryCmd(p, pos, *asJSON, stdout, stderr)
	case verb == "release" && len(pos) == 1:
		return heldReleaseCmd(p, pos[0], *asJSON, stdout, stderr)
	case verb == "delete" && len(pos) == 1:
		return heldDelete(p, pos[0], *note, stdout, stderr)
	}
	fs.Usage()
	return 2
}

// openHeldExisting opens the store for reading without creating it.
func openHeldExisting(p *policy.Policy, stderr io.Writer) (*heldmail.Store, bool) {
	s, err := heldmail.OpenExisting(p.SMIME.HeldDir, heldmail.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "held: %v\n", err)
		return nil, false
	}
	return s, true
}

func heldList(p *policy.Policy, failed, asJSON bool, stdout, stderr io.Writer) int {
	var entries []heldmail.Entry
	var probs []heldmail.Problem
	if _, err := os.Stat(p.SMIME.HeldDir); !errors.Is(err, os.ErrNotExist) {
		s, ok := openHeldExisting(p, stderr)
		if !ok {
			return 1
		}
		list := s.List
		if failed {
			list = s.ListFailed
		}
		if entries, probs, err = list(); err != nil {
			fmt.Fprintf(stderr, "held: %v\n", err)
			return 1
		}
	}
	rows := make([]heldRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, rowOf(e))
	}
	if probs == nil {
		probs = []heldmail.Problem{}
	}
	if asJSON {
		return printJSON(stdout, stderr, struct {
			Dir      string             `json:"held_dir"`
			Held     []heldRow          `json:"held"`
			Problems []heldmail.Problem `json:"problems"`
		}{p.SMIME.HeldDir, rows, probs})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tSENDER\tRECIPIENTS\tDOMAIN\tCODE\tTRIES\tREASON")
	for _, r := range rows {
		reason := r.Reason
		if r.LastReason != "" {
			reason = r.LastReason
		}
		code := r.Code
		if r.AdminHold != "" {
			// Held for the administrator: the kind, and the command.
			code = "admin"
			reason = r.AdminHold + ": " + reason + " (release with: nzsecure-milter held release " + r.ID + ")"
		}
		if failed && r.Note != "" {
			reason = r.Note
		}
		sender := r.Sender
		if sender == "" {
			sender = "<>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Received, sender, strings.Join(r.Recipients, ","), r.Domain, code, r.Tries, oneLineText(reason))
	}
	tw.Flush()
	for _, pr := range probs {
		fmt.Fprintf(stdout, "problem: %s: %s\n", pr.File, pr.Err)
	}
	if len(probs) > 0 {
		return 1
	}
	return 0
}

func oneLineText(s string) string { return strings.Join(strings.Fields(s), " ") }

func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "held: %v\n", err)
		return 1
	}
	return 0
}

func heldShow(p *policy.Policy, id string, failed, raw, asJSON bool, stdout, stderr io.Writer) int {
	s, ok := openHeldExisting(p, stderr)
	if !ok {
		return 1
	}
	get, dir := s.Entry, s.Dir()
	if failed {
		get, dir = s.FailedEntry, s.Dir()+"/"+heldmail.FailedDir
	}
	e, err := get(id)
	if err != nil {
		fmt.Fprintf(stderr, "held: %v\n", err)
		return 1
	}
	if raw {
		// The ID is valid (the entry was read), so the path stays inside
		// the store.
		f, err := os.Open(dir + "/" + e.ID + ".eml")
		if err != nil {
			fmt.Fprintf(stderr, "held: %v\n", err)
			return 1
		}
		defer f.Close()
		if _, err := io.Copy(stdout, f); err != nil {
			fmt.Fprintf(stderr, "held: %v\n", err)
			return 1
		}
		return 0
	}
	if asJSON {
		return printJSON(stdout, stderr, e)
	}
	r := rowOf(e)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"id", r.ID}, {"queue id", r.QueueID}, {"received", r.Received}, {"sender", r.Sender},
		{"recipients", strings.Join(r.Recipients, ", ")}, {"auth", e.Envelope.AuthUser},
		{"client", e.Conn.ClientIP.String() + " " + e.Conn.ClientName}, {"domain", r.Domain}, {"code", r.Code},
		{"held for the administrator", r.AdminHold}, {"released from", strings.Join(r.Released, ", ")},
		{"reason", r.Reason}, {"tries", fmt.Sprint(r.Tries)}, {"last try", r.LastTry}, {"last reason", r.LastReason},
		{"size", fmt.Sprint(r.Size)}, {"failed", r.Failed}, {"note", r.Note},
	} {
		if kv[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], oneLineText(kv[1]))
		}
	}
	tw.Flush()
	return 0
}

func heldRetryCmd(p *policy.Policy, ids []string, asJSON bool, stdout, stderr io.Writer) int {
	s, err := openHeldStore(p)
	if err != nil {
		fmt.Fprintf(stderr, "held: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	defer cliNotices(p, log, stderr)()
	r := newHeldRetrier(p, func() *policy.Policy { return p }, s, log)
	if len(ids) == 0 {
		entries, _, err := s.List()
		if err != nil {
			fmt.Fprintf(stderr, "held: %v\n", err)
			return 1
		}
		for _, e := range entries {
			if e.AdminHold == "" { // held for the administrator: `held release`
				ids = append(ids, e.ID)
			}
		}
	}
	type result struct {
		ID     string `json:"id"`
		Action string `json:"action"`
		Error  string `json:"error,omitempty"`
	}
	results := []result{}
	rc := 0
	for _, id := range ids {
		a, err := r.RetryOne(context.Background(), id)
		res := result{ID: id, Action: string(a)}
		if err != nil {
			res.Error = err.Error()
			rc = 1
		}
		results = append(results, res)
	}
	if asJSON {
		if printJSON(stdout, stderr, results) != 0 {
			return 1
		}
		return rc
	}
	for _, res := range results {
		if res.Error != "" {
			fmt.Fprintf(stdout, "%s: %s: %s\n", res.ID, res.Action, res.Error)
		} else {
			fmt.Fprintf(stdout, "%s: %s\n", res.ID, res.Action)
		}
	}
	return rc
}

func heldDelete(p *policy.Policy, id, note string, stdout, stderr io.Writer) int {
	s, ok := openHeldExisting(p, stderr)
	if !ok {
		return 1
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	r := newHeldRetrier(p, func() *policy.Policy { return p }, s, log)
	if err := r.Delete(id, note); err != nil {
		fmt.Fprintf(stderr, "held: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: moved to %s/%s\n", id, s.Dir(), heldmail.FailedDir)
	return 0
}

// heldReleaseCmd: `held release ID` (R62, R110): the administrator
// releases a message the gateway holds for it. ID is the held-mail ID or
// the MTA queue ID the held-mail notice names (the entry held for the
// administrator with that queue ID; several are refused: name the
// held-mail ID). The message is re-run with the hold released and every
// form carried out (heldRelease): the peers in S/MIME scope get it signed
// and encrypted, recipients held again for a certificate problem go to the
// ordinary retry. Exit 0 when released, 1 otherwise.
func heldReleaseCmd(p *policy.Policy, arg string, asJSON bool, stdout, stderr io.Writer) int {
	s, err := openHeldStore(p)
	if err != nil {
		fmt.Fprintf(stderr, "held: %v\n", err)
		return 1
	}
	id, err := heldAdminID(s, arg)
	if err != nil {
		fmt.Fprintf(stderr, "held: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	defer cliNotices(p, log, stderr)()
	r := newHeldRetrier(p, func() *policy.Policy { return p }, s, log)
	a, err := r.Release(context.Background(), id)
	res := struct {
		ID     string `json:"id"`
		Action string `json:"action"`
		Error  string `json:"error,omitempty"`
	}{ID: id, Action: string(a)}
	if err != nil {
		res.Error = err.Error()
	}
	if asJSON {
		if printJSON(stdout, stderr, res) != 0 {
			return 1
		}
	} else if res.Error != "" {
		fmt.Fprintf(stdout, "%s: %s: %s\n", res.ID, res.Action, res.Error)
	} else {
		fmt.Fprintf(stdout, "%s: %s\n", res.ID, res.Action)
	}
	if err != nil {
		return 1
	}
	return 0
}

// heldAdminID resolves `held release`'s argument: a held-mail ID as is,
// else the one entry held for the administrator with that MTA queue ID.
func heldAdminID(s *heldmail.Store, arg string) (string, error) {
	if heldmail.ValidID(arg) {
		if _, err := s.Entry(arg); err == nil || !errors.Is(err, heldmail.ErrNotFound) {
			return arg, err
		}
	}
	entries, _, err := s.List()
	if err != nil {
		return "", err
	}
	var ids []string
	for _, e := range entries {
		if e.AdminHold != "" && e.Envelope.QueueID != "" && e.Envelope.QueueID == arg {
			ids = append(ids, e.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("%w: no message held for the administrator with ID or queue ID %q", heldmail.ErrNotFound, arg)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("several messages held for the administrator have queue ID %q (%s): name the held-mail ID", arg, strings.Join(ids, ", "))
}

// cliNotices, for `held retry` and `held release` outside serve, sends the
// notices a re-run hands to heldCertRequests (a new hold for the
// administrator, certificate requests, a release's SECURE DELIVERY
// DELAYED) through a notifier of this process; the returned function
// drains it before the command exits.
func cliNotices(p *policy.Policy, log *slog.Logger, stderr io.Writer) func() {
	if heldCertRequests != nil {
		return func() {}
	}
	n, err := milter.NewNotifier(p, log, productName, version)
	if err != nil {
		fmt.Fprintf(stderr, "held: notices: %v\n", err)
		return func() {}
	}
	if p.SMIME.Mode == policy.SMIMEOn {
		if env, err := pipeline.NewSMIMEEnv(p, false); err == nil {
			n.SMIME = env // R62: notices to a peer signed and encrypted
		}
	}
	heldCertRequests = func(p *policy.Policy, v policy.Verdict, env policy.Envelope, hs []policy.Header) {
		n.Send(p, v, env, hs)
	}
	return func() {
		heldCertRequests = nil
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			fmt.Fprintf(stderr, "held: notices: %v\n", err)
		}
	}
}
