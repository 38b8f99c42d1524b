package main

import (
	"errors"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestActivationCount(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    int
		wantErr bool
	}{
		{"no variables: listen ourselves", map[string]string{}, 0, false},
		{"one socket for us", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "1"}, 1, false},
		{"two sockets for us", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "2"}, 2, false},
		{"meant for another process (leaked to a child)", map[string]string{"LISTEN_PID": "7", "LISTEN_FDS": "1"}, 0, false},
		{"LISTEN_FDS without LISTEN_PID", map[string]string{"LISTEN_FDS": "1"}, 0, true},
		{"LISTEN_PID not a number", map[string]string{"LISTEN_PID": "x", "LISTEN_FDS": "1"}, 0, true},
		{"LISTEN_FDS not a number", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "one"}, 0, true},
		{"LISTEN_FDS negative", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "-1"}, 0, true},
		{"LISTEN_FDS absurd", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "100000"}, 0, true},
		{"zero sockets for us", map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "0"}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := activationCount(envOf(c.env), 42)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil && !errors.Is(err, ErrActivation) {
				t.Errorf("error %v does not wrap ErrActivation", err)
			}
			if n != c.want {
				t.Errorf("n = %d, want %d", n, c.want)
			}
		})
	}
}

func FuzzActivationCount(f *testing.F) {
	f.Add("42", "1")
	f.Add("", "")
	f.Add("42", "-3")
	f.Fuzz(func(t *testing.T, pid, fds string) {
		n, err := activationCount(envOf(map[string]string{"LISTEN_PID": pid, "LISTEN_FDS": fds}), 42)
		if err != nil && n != 0 {
			t.Fatalf("error %v with n = %d", err, n)
		}
		if n < 0 || n > 64 {
			t.Fatalf("n = %d out of range", n)
		}
	})
}
