package sensor

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// proc is one process (thread group) of the table.
type proc struct {
	pid, ppid int64
	name      string // comm
	exe       string // argv[0]
	exepath   string
	args      []string
	cwd       string // with a trailing "/", as libsinsp keeps it
	env       []string
	start     time.Time
	exited    time.Time
}

// procTable follows the node's processes: seeded from /proc, updated by
// exec and exit records, and filled lazily for processes that forked
// after the seed (they inherit their parent's image until they exec).
type procTable struct {
	dir   string
	env   bool // read /proc/PID/environ (a rule reads proc.env)
	procs map[int64]*proc
	boot  time.Time // wall-clock time of CLOCK_MONOTONIC zero
	// exited processes stay a while so that orphans still see ancestors.
	sweepAt time.Time
}

// maxProcs bounds the table; beyond it exited entries are dropped first.
const maxProcs = 1 << 16

func newProcTable(dir string, boot time.Time) *procTable {
	return &procTable{dir: dir, procs: map[int64]*proc{}, boot: boot}
}

// seed reads every process under /proc.
func (t *procTable) seed() {
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		if p := t.read(pid); p != nil {
			t.procs[pid] = p
		}
	}
}

// clkTck is USER_HZ, the unit of /proc/PID/stat's start time; 100 on
// every Linux architecture bulkhead runs on.
const clkTck = 100

// read builds a process entry from /proc/PID, nil when it is gone.
func (t *procTable) read(pid int64) *proc {
	base := filepath.Join(t.dir, strconv.FormatInt(pid, 10))
	stat, err := os.ReadFile(filepath.Join(base, "stat"))
	if err != nil {
		return nil
	}
	// pid (comm) state ppid ... field 22 starttime; comm may hold spaces
	// and parentheses, so split at the last ')'.
	i, j := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if i < 0 || j < i {
		return nil
	}
	p := &proc{pid: pid, name: string(stat[i+1 : j])}
	f := strings.Fields(string(stat[j+1:]))
	if len(f) > 19 {
		p.ppid, _ = strconv.ParseInt(f[1], 10, 64)
		ticks, _ := strconv.ParseInt(f[19], 10, 64)
		p.start = t.boot.Add(time.Duration(ticks) * time.Second / clkTck)
	}
	if cmd, err := os.ReadFile(filepath.Join(base, "cmdline")); err == nil && len(cmd) > 0 {
		argv := splitArgv(cmd)
		if len(argv) > 0 {
			p.exe, p.args = argv[0], argv[1:]
		}
	}
	if l, err := os.Readlink(filepath.Join(base, "exe")); err == nil {
		p.exepath = strings.TrimSuffix(l, " (deleted)")
	}
	if l, err := os.Readlink(filepath.Join(base, "cwd")); err == nil {
		p.cwd = dirSlash(l)
	}
	if t.env {
		if env, err := os.ReadFile(filepath.Join(base, "environ")); err == nil {
			p.env = splitArgv(env)
		}
	}
	return p
}

func dirSlash(d string) string {
	if d == "" || strings.HasSuffix(d, "/") {
		return d
	}
	return d + "/"
}

// splitArgv splits NUL-separated arguments (a trailing NUL is optional).
func splitArgv(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// get returns the entry of pid, creating it from /proc (when readProc) or
// from its parent.
func (t *procTable) get(pid, ppid int64, comm string, start time.Time, readProc bool) *proc {
	if p, ok := t.procs[pid]; ok && p.exited.IsZero() {
		if ppid > 0 && p.ppid != ppid {
			p.ppid = ppid // reparented
		}
		if comm != "" && p.name != comm {
			p.name = comm // prctl(PR_SET_NAME), or a thread's name
		}
		return p
	}
	var p *proc
	if readProc {
		p = t.read(pid)
	}
	if p == nil {
		// Gone already, or forked and not yet visible: a fork child runs
		// its parent's image.
		p = &proc{pid: pid, ppid: ppid, name: comm, start: start}
		if par, ok := t.procs[ppid]; ok {
			p.exe, p.exepath, p.args, p.cwd, p.env = par.exe, par.exepath, par.args, par.cwd, par.env
		}
	}
	if ppid > 0 {
		p.ppid = ppid
	}
	if comm != "" {
		p.name = comm
	}
	if !start.IsZero() {
		p.start = start
	}
	t.put(p)
	return p
}

func (t *procTable) put(p *proc) {
	if len(t.procs) >= maxProcs {
		t.sweep(time.Now(), true)
	}
	t.procs[p.pid] = p
}

// exit marks pid exited; sweep removes it later.
func (t *procTable) exit(pid int64, now time.Time) {
	if p, ok := t.procs[pid]; ok {
		p.exited = now
	}
	if now.After(t.sweepAt) {
		t.sweep(now, false)
		t.sweepAt = now.Add(5 * time.Second)
	}
}

// exitGrace is how long an exited process stays in the table for the
// ancestry of its orphans.
const exitGrace = 30 * time.Second

func (t *procTable) sweep(now time.Time, full bool) {
	for pid, p := range t.procs {
		if !p.exited.IsZero() && (full || now.Sub(p.exited) > exitGrace) {
			delete(t.procs, pid)
		}
	}
	if full && len(t.procs) >= maxProcs {
		// Still full of live processes: forget the oldest half.
		clear(t.procs)
	}
}

// maxAncestors is how far up the parent chain events carry; the stable
// rules look at proc.aname[7] at most.
const maxAncestors = 10

// ancestors fills anc with the parent chain of p, parent first.
func (t *procTable) ancestors(p *proc, anc []event.Ancestor) []event.Ancestor {
	anc = anc[:0]
	seen := p.pid
	ppid := p.ppid
	for len(anc) < maxAncestors && ppid > 0 && ppid != seen {
		par, ok := t.procs[ppid]
		if !ok {
			par = t.read(ppid)
			if par == nil {
				break
			}
			t.put(par)
		}
		anc = append(anc, event.Ancestor{PID: par.pid, Name: par.name, Exe: par.exe, ExePath: par.exepath, Args: par.args, Start: par.start})
		seen, ppid = par.pid, par.ppid
	}
	return anc
}

// passwd maps uids or gids to names, read from an /etc/passwd or
// /etc/group file.
type passwd struct {
	names map[uint32]userEnt
}

type userEnt struct {
	name, home, shell string
}

func readPasswd(path string) passwd {
	pw := passwd{names: map[uint32]userEnt{}}
	f, err := os.Open(path)
	if err != nil {
		return pw
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 0; sc.Scan() && n < 10000; n++ {
		// name:x:id:... (group: name:x:gid:members)
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 3 {
			continue
		}
		id, err := strconv.ParseUint(fs[2], 10, 32)
		if err != nil {
			continue
		}
		e := userEnt{name: fs[0]}
		if len(fs) >= 7 {
			e.home, e.shell = fs[5], fs[6]
		}
		if _, dup := pw.names[uint32(id)]; !dup {
			pw.names[uint32(id)] = e
		}
	}
	return pw
}
