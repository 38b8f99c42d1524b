// Package statefile holds what the files serve keeps under its state
// directory (/var/lib/nzsecure-milter) share: a file an administrator's
// command creates there as root (`firstcontact approve`, `selftest`) must
// stay readable and replaceable by serve, which runs as the directory's
// owner (systemd StateDirectory=, the deb's postinst).
package statefile

import (
	"os"
	"syscall"
)

// OwnLikeDir gives f the owner and group of directory dir when this
// process is root; otherwise (or when dir cannot be read) it does
// nothing: the file is then the creator's, as it would be anyway.
func OwnLikeDir(f *os.File, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (st.Uid == 0 && st.Gid == 0) {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}
