package logbuf

import (
	"log/slog"
	"os"
	"testing"
)

// BenchmarkLogLine is one decision-sized JSON line per operation, from
// parallel goroutines, into a file: straight, and through a Writer (serve's
// set-up). The difference is the write(2) calls the Writer groups.
func BenchmarkLogLine(b *testing.B) {
	for _, c := range []struct {
		name     string
		buffered bool
	}{{"direct", false}, {"logbuf", true}} {
		b.Run(c.name, func(b *testing.B) {
			f, err := os.CreateTemp(b.TempDir(), "log")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var log *slog.Logger
			if c.buffered {
				w := New(f)
				defer w.Close()
				log = slog.New(slog.NewJSONHandler(w, nil))
			} else {
				log = slog.New(slog.NewJSONHandler(f, nil))
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.Info("decision", "queue_id", "4ABC123", "stage", "eom", "direction", "inbound", "client_ip", "203.0.113.9",
						"sender", "sender@example.com", "action", "accept", "classification", "UNCLASSIFIED", "size", 2400)
				}
			})
		})
	}
}
