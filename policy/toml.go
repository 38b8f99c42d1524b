package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// flattenTOML decodes data and flattens nested tables to dotted keys.
func flattenTOML(data []byte) (map[string]any, error) {
	var raw map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil {
		return nil, err
	}
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", raw)
	return out, nil
}

func syntaxProblem(name string, err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Problem{File: name, Line: pe.Position.Line, Msg: "syntax error: " + pe.Message}
	}
	return Problem{File: name, Msg: "syntax error: " + err.Error()}
}

// keyLines maps dotted keys to the line that sets them, for problem reports.
// It reads the simple form policy files take ([table] headers and key = value
// lines); a key it cannot place gets line 0.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	depth := 0 // bracket depth of a multi-line array being skipped
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if depth > 0 {
			depth += strings.Count(line, "[") - strings.Count(line, "]")
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			if end := strings.IndexByte(line, ']'); end > 0 {
				table = normKey(line[1:end]) + "."
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key := table + normKey(k)
		if _, seen := lines[key]; !seen {
			lines[key] = n
		}
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "[") {
			depth = strings.Count(v, "[") - strings.Count(v, "]")
		}
		if strings.HasPrefix(v, "{") {
			inlineKeys(v, key+".", n, lines)
		}
	}
	return lines
}

// inlineKeys places the keys of an inline table, a = { b = 1, c = { d = 2 } },
// on line n: flattenTOML makes them a.b and a.c.d, and without this a bad
// value inside one would be reported without a line. An inline table is on
// one line (TOML 1.0, "Inline Table"); v starts with its "{".
func inlineKeys(v, prefix string, n int, lines map[string]int) {
	stack := []string{prefix}
	for i := 1; i < len(v) && len(stack) > 0; {
		i = skipSpace(v, i)
		if i >= len(v) {
			return
		}
		if v[i] == '}' { // the end of the innermost table
			stack = stack[:len(stack)-1]
			if i = skipSpace(v, i+1); i < len(v) && v[i] == ',' {
				i++
			}
			continue
		}
		j := i
		for j < len(v) && v[j] != '=' {
			if v[j] == '"' || v[j] == '\'' {
				j = skipString(v, j)
				continue
			}
			j++
		}
		if j >= len(v) {
			return
		}
		key := stack[len(stack)-1] + normKey(v[i:j])
		if _, seen := lines[key]; !seen {
			lines[key] = n
		}
		if i = skipSpace(v, j+1); i < len(v) && v[i] == '{' {
			stack = append(stack, key+".")
			i++
			continue
		}
		// Skip the value: up to the "," or "}" outside strings and arrays.
		for depth := 0; i < len(v); {
			c := v[i]
			if c == '"' || c == '\'' {
				i = skipString(v, i)
				continue
			}
			if c == '[' {
				depth++
			} else if c == ']' {
				depth--
			} else if depth <= 0 && (c == ',' || c == '}') {
				break
			}
			i++
		}
		if i < len(v) && v[i] == ',' {
			i++
		}
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at s[i] (a basic
// "..." string with backslash escapes, or a literal '...' one).
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return i
}

func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// parseOverride parses one --set KEY=VALUE. VALUE is a TOML value; a bare
// word that is not valid TOML is taken as a string, so --set log.level=debug works.
func parseOverride(o string) (map[string]any, error) {
	k, v, ok := strings.Cut(o, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return nil, fmt.Errorf("want KEY=VALUE, got %q", o)
	}
	m, err := flattenTOML([]byte(k + " = " + v))
	if err != nil {
		m, err = flattenTOML([]byte(k + " = " + strconv.Quote(strings.TrimSpace(v))))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse %q: want KEY=VALUE with VALUE a TOML value, e.g. inbound.min_tls=\"1.3\"", o)
	}
	return m, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
