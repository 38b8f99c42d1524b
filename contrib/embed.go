// Package contrib holds the files an installation ships beside the binary:
// the example policy (also the binary's built-in default), Postfix and
// systemd snippets, packaging.
package contrib

import _ "embed"

// DefaultPolicy is contrib/nzsecure-milter.toml: the policy `serve`, `check`
// and `lint` use when no --policy is given.
//
//go:embed nzsecure-milter.toml
var DefaultPolicy []byte
