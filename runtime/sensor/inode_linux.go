package sensor

import "golang.org/x/sys/unix"

// inode returns a file's inode number: a cgroup v2 directory's inode is
// the cgroup id bpf_get_current_cgroup_id() reports.
func inode(path string) (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, false
	}
	return st.Ino, true
}
