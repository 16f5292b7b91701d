package rules

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	yaml "go.yaml.in/yaml/v3"
)

// The e2e event-generator suite (testdata/evtgen) declares, per stable
// rule, the processes, resources and syscalls of an action and the alert
// it must raise. evtgenEvents turns each declaration into the event the
// sensor sees for it, modelling what the event generator does: it spawns
// the declared process chain (each a copy of its own binary, writable, in
// a privileged container when one is asked for, running for longer than
// Falco's 5 s "new process" window), then runs the steps as that process.

var bareRef = regexp.MustCompile(`(?m)(:\s+)(%\{[^}]*\})\s*$`)

var itemRef = regexp.MustCompile(`%\{\s*item\.([A-Za-z0-9_]+)\s*\}`)

// subst replaces %{ item.X } references; a string that is only a
// reference takes the item's value whatever its type (e.g. container: {}).
func subst(v any, item map[string]any) any {
	switch x := v.(type) {
	case string:
		if m := itemRef.FindStringSubmatch(x); m != nil && m[0] == strings.TrimSpace(x) {
			return item[m[1]]
		}
		return itemRef.ReplaceAllStringFunc(x, func(s string) string {
			return fmt.Sprint(item[itemRef.FindStringSubmatch(s)[1]])
		})
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = subst(e, item)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = subst(e, item)
		}
		return out
	}
	return v
}

// expandCases returns the items of a test: the cartesian product of each
// matrix case, or the single item of each vector case.
func expandCases(cases []any) []map[string]any {
	if len(cases) == 0 {
		return []map[string]any{{}}
	}
	var out []map[string]any
	for _, c := range cases {
		cm := c.(map[string]any)
		vals, _ := cm["values"].(map[string]any)
		if cm["strategy"] == "vector" {
			out = append(out, vals)
			continue
		}
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		items := []map[string]any{{}}
		for _, k := range keys {
			list, ok := vals[k].([]any)
			if !ok {
				list = []any{vals[k]}
			}
			var next []map[string]any
			for _, it := range items {
				for _, v := range list {
					n := map[string]any{}
					for a, b := range it {
						n[a] = b
					}
					n[k] = v
					next = append(next, n)
				}
			}
			items = next
		}
		out = append(out, items...)
	}
	return out
}

var systemUIDs = map[string]uint32{
	"root": 0, "daemon": 1, "bin": 2, "sys": 3, "sync": 4, "games": 5, "man": 6, "lp": 7, "mail": 8,
	"news": 9, "uucp": 10, "proxy": 13, "www-data": 33, "backup": 34, "nobody": 65534, "sshd": 105,
}

type evtgenCase struct {
	name, rule string
	priority   string
	fields     map[string]string
	events     []*event.Event
}

func sv(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func evtgenCases(t *testing.T, file string) []evtgenCase {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []map[string]any `yaml:"tests"`
	}
	// The suite writes some whole-value references unquoted (runIf:
	// %{ item.runIf }), which is not YAML until quoted.
	data = bareRef.ReplaceAll(data, []byte(`$1"$2"`))
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []evtgenCase
	for _, raw := range doc.Tests {
		cases, _ := raw["cases"].([]any)
		for i, item := range expandCases(cases) {
			tc := subst(raw, item).(map[string]any)
			c := evtgenCase{name: fmt.Sprintf("%s/%d", raw["name"], i), rule: sv(tc["rule"]), fields: map[string]string{}}
			exp, _ := tc["expectedOutcome"].(map[string]any)
			c.priority = sv(exp["priority"])
			if of, ok := exp["outputFields"].(map[string]any); ok {
				for k, v := range of {
					c.fields[k] = sv(v)
				}
			}
			c.events = buildEvtgenEvents(t, tc)
			out = append(out, c)
		}
	}
	return out
}

func buildEvtgenEvents(t *testing.T, tc map[string]any) []*event.Event {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ctx, _ := tc["context"].(map[string]any)
	base := event.Event{Time: now, Dir: event.DirExit}
	if ctx != nil {
		if _, inCtr := ctx["container"].(map[string]any); inCtr {
			base.Container = &event.Container{ID: "3ad7b26ded6d", Name: "event-generator", Type: "podman",
				Image: "docker.io/falcosecurity/event-generator:latest", ImageRepository: "docker.io/falcosecurity/event-generator",
				ImageTag: "latest", Privileged: true}
		}
	}
	// The process chain: the last declared process is the actor.
	var procs []map[string]any
	if ctx != nil {
		if ps, ok := ctx["processes"].([]any); ok {
			for _, p := range ps {
				procs = append(procs, p.(map[string]any))
			}
		}
	}
	resources := map[string]map[string]any{}
	var resList []map[string]any
	if rs, ok := tc["resources"].([]any); ok {
		for _, r := range rs {
			rm := r.(map[string]any)
			resources[sv(rm["name"])] = rm
			resList = append(resList, rm)
		}
	}
	// A process resource is a process the generator starts itself.
	fileless := false
	for _, r := range resList {
		if r["type"] == "process" {
			procs = append(procs, map[string]any{"name": r["name"]})
			fileless = r["fileLess"] == true
		}
	}
	if len(procs) == 0 {
		procs = []map[string]any{{"name": "event-generator"}}
	}
	actor := procs[len(procs)-1]
	p := event.Process{PID: 1000 + int64(len(procs)), Name: sv(actor["name"]), Start: now.Add(-10 * time.Second),
		CapEffective: 1<<41 - 1, CapPermitted: 1<<41 - 1, Cwd: "/tmp"}
	p.Exe = p.Name
	if e := sv(actor["exe"]); e != "" {
		p.Exe = e
		p.ExePath = e
		p.IsExeWritable = true
		p.IsExeUpperLayer = base.Container != nil
	} else {
		p.ExePath = "/tmp/eg-bin/" + p.Name
	}
	if a := sv(actor["args"]); a != "" {
		p.Args = strings.Fields(a)
	}
	if fileless {
		p.IsExeFromMemfd, p.IsExeWritable = true, true
		p.ExePath = "memfd:" + p.Name
	}
	for i := len(procs) - 2; i >= 0; i-- {
		a := procs[i]
		anc := event.Ancestor{PID: 1000 + int64(i+1), Name: sv(a["name"]), Exe: sv(a["name"]), ExePath: "/tmp/eg-bin/" + sv(a["name"]), Start: now.Add(-20 * time.Second)}
		if e := sv(a["exe"]); e != "" {
			anc.Exe, anc.ExePath = e, e
		}
		if args := sv(a["args"]); args != "" {
			anc.Args = strings.Fields(args)
		}
		p.Ancestors = append(p.Ancestors, anc)
	}
	if len(p.Ancestors) > 0 {
		p.PPID = p.Ancestors[0].PID
	}
	base.Proc = p
	user := sv(actor["user"])
	if user == "" {
		user = "root"
	}
	uid, ok := systemUIDs[user]
	if !ok {
		t.Fatalf("unknown user %q in the suite", user)
	}
	base.User = event.User{UID: uid, Name: user, LoginUID: -1}
	base.Group = event.Group{GID: uid, Name: user}

	mk := func(typ string, res int64, args ...string) *event.Event {
		ev := base
		ev.Type, ev.Res = typ, res
		for i := 0; i+1 < len(args); i += 2 {
			ev.Args = append(ev.Args, event.Arg{Name: args[i], Value: args[i+1]})
		}
		return &ev
	}
	// clientServer resources: a connected IP socket, client side.
	sockets := map[string]*event.FD{}
	for _, r := range resList {
		if r["type"] != "clientServer" {
			continue
		}
		ap, err := netip.ParseAddrPort(sv(r["address"]))
		if err != nil {
			t.Fatalf("address %q: %v", r["address"], err)
		}
		fd := &event.FD{Num: 4, Type: event.FDIPv4, L4Proto: strings.TrimRight(sv(r["l4Proto"]), "46"),
			CIP: netip.MustParseAddr("127.0.0.1"), CPort: 40000, SIP: ap.Addr(), SPort: ap.Port(), Connected: true}
		if ap.Addr().Is6() {
			fd.Type, fd.CIP = event.FDIPv6, netip.MustParseAddr("::1")
		}
		sockets[sv(r["name"])] = fd
	}
	steps, _ := tc["steps"].([]any)
	var evs []*event.Event
	if len(steps) == 0 {
		if len(sockets) > 0 {
			for _, fd := range sockets {
				ev := mk("connect", 0, "fd", "4", "addr", netip.AddrPortFrom(fd.SIP, fd.SPort).String())
				ev.FD = fd
				evs = append(evs, ev)
			}
			return evs
		}
		var flags []string
		if p.IsExeWritable {
			flags = append(flags, "EXE_WRITABLE")
		}
		if p.IsExeUpperLayer {
			flags = append(flags, "EXE_UPPER_LAYER")
		}
		if p.IsExeFromMemfd {
			flags = append(flags, "EXE_FROM_MEMFD")
		}
		ev := mk("execve", 0, "exe", p.Exe, "args", strings.Join(p.Args, " "))
		if len(flags) > 0 {
			ev.Args = append(ev.Args, event.Arg{Name: "flags", Value: strings.Join(flags, "|")})
		}
		return []*event.Event{ev}
	}
	for _, s := range steps {
		sm := s.(map[string]any)
		args, _ := sm["args"].(map[string]any)
		sc := sv(sm["syscall"])
		switch sc {
		case "open", "openat", "openat2":
			path := sv(args["pathname"])
			flags := sv(args["flags"])
			mode := sv(args["mode"])
			if how, ok := args["how"].(map[string]any); ok {
				flags, mode = sv(how["flags"]), sv(how["mode"])
			}
			resolved := filepath.Clean(path)
			typ := event.FDFile
			for _, r := range resList {
				if r["type"] == "fd" && (sv(r["filePath"]) == resolved || sv(r["dirPath"]) == resolved) && r["subtype"] == "directory" {
					typ = event.FDDirectory
				}
			}
			ev := mk(sc, 3, "fd", "3", "name", path, "flags", flags, "mode", mode)
			ev.FD = &event.FD{Num: 3, Type: typ, Name: resolved, NameRaw: path}
			evs = append(evs, ev)
		case "socket":
			evs = append(evs, mk("socket", 3, "domain", sv(args["domain"]), "type", sv(args["type"]), "proto", sv(args["protocol"])))
		case "dup2", "dup3":
			ref := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(sv(args["oldFd"]), "${"), "}"))
			fd := sockets[strings.Split(ref, ".")[0]]
			if fd == nil {
				t.Fatalf("dup of unknown resource %q", ref)
			}
			newfd, _ := strconv.ParseInt(sv(args["newFd"]), 10, 64)
			ev := mk(sc, newfd, "res", sv(newfd), "oldfd", "4", "newfd", sv(newfd))
			ev.FD = fd
			evs = append(evs, ev)
		case "link", "linkat":
			evs = append(evs, mk(sc, 0, "oldpath", sv(args["oldPath"]), "newpath", sv(args["newPath"])))
		case "symlink", "symlinkat":
			evs = append(evs, mk(sc, 0, "target", sv(args["target"]), "linkpath", sv(args["linkPath"])))
		default:
			t.Fatalf("step syscall %q is not modelled", sc)
		}
	}
	return evs
}

// TestEventGeneratorSuite checks that every declared action raises the
// declared rule of the stable ruleset, with the declared priority and
// output fields.
func TestEventGeneratorSuite(t *testing.T) {
	rs, err := LoadFiles([]string{filepath.Join("testdata", "falco_rules.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	active := map[string]bool{}
	for _, r := range rs.Active() {
		active[r.Name] = true
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "evtgen", "*.yaml"))
	total := 0
	for _, f := range files {
		for _, c := range evtgenCases(t, f) {
			total++
			t.Run(filepath.Base(f)+"/"+c.name, func(t *testing.T) {
				if !active[c.rule] {
					t.Fatalf("rule %q is not active", c.rule)
				}
				m := rs.Matcher()
				fired := false
				for _, ev := range c.events {
					for _, r := range m.Match(ev) {
						if r.Name != c.rule {
							continue
						}
						fired = true
						if !strings.EqualFold(r.Priority.String(), c.priority) {
							t.Errorf("priority %s, want %s", r.Priority, c.priority)
						}
						a := m.Alert(r, ev)
						for k, want := range c.fields {
							if got := fmt.Sprint(a.OutputFields[k]); got != want {
								t.Errorf("output field %s = %q, want %q", k, got, want)
							}
						}
					}
				}
				if !fired {
					t.Errorf("rule %q did not fire for %s", c.rule, debugEvent(c.events[0]))
				}
			})
		}
	}
	if total < 300 {
		t.Fatalf("only %d event-generator cases", total)
	}
	t.Logf("%d event-generator cases over %d files", total, len(files))
}

func debugEvent(ev *event.Event) string {
	b, _ := event.Marshal(ev)
	return string(b)
}
