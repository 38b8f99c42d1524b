package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
	"github.com/nzsecure-milter/nzsecure-milter/milter"
)

func init() {
	register("classify", "print the classification of a message as JSON", runClassify)
}

// runClassify prints the classification of one message file (or - for
// standard input) as a JSON object: the trigger words found (R29-R35,
// R109, R114), where, and any decoding problems. Exit 0 with a result;
// 2 for usage errors; 1 when the file cannot be read.
//
// The words and their ranks, and whether attachments are scanned, come from
// the policy's [classification] section, as in the milter; --attachments
// turns attachment scanning on whatever the policy says.
func runClassify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("classify", "FILE|-", stderr)
	attachments := fs.Bool("attachments", false, "also scan text-like attachments (R34: text, HTML, RTF, attached messages)")
	var pf policyFlags
	pf.add(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "classify: need exactly one message FILE, or - for standard input")
		fs.Usage()
		return 2
	}
	in := io.Reader(os.Stdin)
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "classify: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	p, ok := pf.load(stderr)
	if !ok {
		return 1
	}
	opts := milter.ClassifyOptions(p)
	opts.ScanAttachments = opts.ScanAttachments || *attachments
	res, err := classify.Classify(in, opts)
	if err != nil {
		fmt.Fprintln(stderr, err) // "classify: reading message: read FILE: ..."
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintf(stderr, "classify: %v\n", err)
		return 1
	}
	return 0
}
