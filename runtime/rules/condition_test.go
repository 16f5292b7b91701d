package rules

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	yaml "go.yaml.in/yaml/v3"
)

func TestParseErrors(t *testing.T) {
	for cond, want := range map[string]string{
		"":                              "filter input string is empty",
		"evt.type=open and":             "expected blank or '(' after 'and'",
		"evt.type=open and ":            "expected a '(' token, a field check, or an identifier",
		"evt.type=execve execve":        "unexpected token after 'execve', expecting 'or', 'and'",
		"(evt.type=open":                "expected a ')' token",
		"proc.name":                     "expected a valid check operator",
		"proc.name in (a, b":            "expected a ')' token",
		"proc.aname[2 = x":              "expected a ']' token",
		`proc.name = "a\qb"`:            "unsupported string escape sequence",
		"tolower(proc.name = x":         "expected a ')' token closing the transformer",
		"evt.type=open andproc.name=x":  "expected blank or '(' after 'and'",
		strings.Repeat("(", 2000) + "a": "exceeded max depth limit",
	} {
		_, err := Parse(cond)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%.40q) = %v, want %q", cond, err, want)
		}
	}
}

func TestParseShapes(t *testing.T) {
	e, err := Parse(`not evt.type in (open, "openat") and (proc.aname[2] startswith 'sh' or tolower(proc.name) = bash) or my_macro and not(fd.name exists)`)
	if err != nil {
		t.Fatal(err)
	}
	or, ok := e.(*OrExpr)
	if !ok || len(or.Children) != 2 {
		t.Fatalf("top is %T", e)
	}
	and := or.Children[0].(*AndExpr)
	in := and.Children[0].(*NotExpr).Child.(*CheckExpr)
	if in.Op != "in" || strings.Join(in.Values, ",") != "open,openat" || !in.IsList {
		t.Errorf("in check %+v", in)
	}
	inner := and.Children[1].(*OrExpr)
	aname := inner.Children[0].(*CheckExpr)
	if aname.Field.Name != "proc.aname" || aname.Field.Arg != "2" || aname.Values[0] != "sh" {
		t.Errorf("aname check %+v", aname.Field)
	}
	low := inner.Children[1].(*CheckExpr)
	if len(low.Field.Transformers) != 1 || low.Field.Transformers[0] != "tolower" {
		t.Errorf("transformer %+v", low.Field)
	}
	if or.Children[1].(*AndExpr).Children[0].(*IdentExpr).Name != "my_macro" {
		t.Error("macro reference not parsed")
	}
}

// opEvent is the event the operator table is evaluated against.
func opEvent() *event.Event {
	return &event.Event{Num: 7, Time: time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC), Type: "connect", Res: -115,
		Args: event.Args{{Name: "fd", Value: "3"}, {Name: "addr", Value: "8.8.8.8:53"}},
		Proc: event.Process{PID: 10, Name: "Curl", Exe: "curl", ExePath: "/usr/bin/curl", Args: []string{"-s", "aGVsbG8="}, Cwd: "/home/u",
			Env:       []string{"HOME=/home/u", "PATH=/bin"},
			Ancestors: []event.Ancestor{{PID: 9, Name: "bash"}, {PID: 8, Name: "sshd"}, {PID: 1, Name: "systemd"}}},
		User: event.User{UID: 1000, Name: "u", LoginUID: 1000},
		FD: &event.FD{Num: 3, Type: event.FDIPv4, L4Proto: "udp", CIP: netip.MustParseAddr("10.1.2.3"), CPort: 40000,
			SIP: netip.MustParseAddr("8.8.8.8"), SPort: 53},
		Container: &event.Container{ID: "abc", ImageRepository: "docker.io/library/alpine"}}
}

func TestOperators(t *testing.T) {
	cases := map[string]bool{
		"proc.name = Curl":                                true,
		"proc.name == curl":                               false,
		"proc.name icontains CUR":                         true,
		"proc.name contains cur":                          false,
		"proc.cmdline = \"Curl -s aGVsbG8=\"":             true,
		"proc.args startswith -s":                         true,
		"proc.exepath endswith /curl":                     true,
		"proc.exepath glob '/usr/*/c?rl'":                 true,
		"proc.exepath glob '/usr/[a-b]in/curl'":           true,
		"proc.exepath glob '/usr/[!b]in/curl'":            false,
		"proc.name iglob 'c*L'":                           true,
		"proc.exepath pmatch (/usr/bin)":                  true,
		"proc.exepath pmatch (/usr/b)":                    false,
		"proc.exepath pmatch (/)":                         true,
		"proc.name in (a, Curl, b)":                       true,
		"proc.name intersects (Curl)":                     true,
		"proc.exepath bcontains 2f62696e":                 true,
		"proc.exepath bstartswith 2f757372":               true,
		"proc.exepath regex '/usr/bin/c.*'":               true,
		"proc.exepath regex 'bin/c.*'":                    false,
		"proc.pname = bash":                               true,
		"proc.aname = sshd":                               true,
		"proc.aname[0] = Curl":                            true,
		"proc.aname[3] = systemd":                         true,
		"proc.aname[4] exists":                            false,
		"proc.aname in (systemd)":                         true,
		"proc.apid[1] = 9":                                true,
		"proc.env[HOME] = /home/u":                        true,
		"proc.cwd = /home/u":                              true,
		"tolower(proc.name) = curl":                       true,
		"toupper(proc.name) = CURL":                       true,
		"b64(proc.args) exists":                           false,
		"len(proc.name) = 4":                              true,
		"len(proc.name) > 3":                              true,
		"basename(proc.exepath) = curl":                   true,
		"proc.exe = val(proc.exe)":                        true,
		"tolower(proc.name) = val(proc.exe)":              true,
		"proc.name = val(proc.exe)":                       false,
		"evt.res = EINPROGRESS":                           true,
		"evt.rawres < 0":                                  true,
		"evt.failed = true":                               true,
		"evt.num = 7":                                     true,
		"evt.arg.addr = 8.8.8.8:53":                       true,
		"evt.arg[1] = 8.8.8.8:53":                         true,
		"evt.rawarg.fd = 3":                               true,
		"evt.args contains 'addr=8.8.8.8'":                true,
		"evt.time.iso8601 startswith 2024-02-03":          true,
		"fd.name = 10.1.2.3:40000->8.8.8.8:53":            true,
		"fd.typechar = 4":                                 true,
		"fd.l4proto != tcp":                               true,
		"fd.sip = 8.8.8.8":                                true,
		"fd.rip = 8.8.8.8":                                true,
		"fd.lport = 40000":                                true,
		"fd.sport in (53, 80)":                            true,
		"fd.port = 53":                                    true,
		"fd.ip = 10.1.2.3":                                true,
		"fd.net = 10.0.0.0/8":                             true,
		"fd.snet in (\"10.0.0.0/8\", \"192.168.0.0/16\")": false,
		"fd.directory exists":                             false,
		"user.loginuid = 1000":                            true,
		"container.id != host":                            true,
		"container.image.repository endswith alpine":      true,
		"container.privileged = false":                    true,
		"thread.cap_effective exists":                     true,
		"not proc.name = x and proc.pid = 10":             true,
		"proc.pid = 1 or not (proc.pid = 2)":              true,
	}
	ev := opEvent()
	for cond, want := range cases {
		e, err := Parse(cond)
		if err != nil {
			t.Errorf("Parse(%q): %v", cond, err)
			continue
		}
		n, err := compileExpr(e)
		if err != nil {
			t.Errorf("compile(%q): %v", cond, err)
			continue
		}
		c := &evalCtx{}
		c.reset(ev)
		if got := n(c); got != want {
			t.Errorf("%s = %v, want %v", cond, got, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for cond, want := range map[string]string{
		"proc.nobody = x":           "nonexistent field proc.nobody",
		"proc.pid contains 3":       "not supported on numeric fields",
		"proc.pid = abc":            "not a valid number",
		"fd.sip = not-an-ip":        "not a valid IP address",
		"proc.exepath regex '('":    "invalid regex",
		"proc.aname[x] = a":         "invalid index",
		"proc.name[1] = a":          "does not take an argument",
		"len(proc.pid) = 1":         "not supported by 'len'",
		"proc.name = val(proc.pid)": "incompatible type",
		"evt.is_open_read = maybe":  "not a valid boolean",
		"proc.exepath bcontains zz": "not a valid hex string",
		"proc.sname = x":            "not supplied by bulkhead",
	} {
		e, err := Parse(cond)
		if err == nil {
			_, err = compileExpr(e)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", cond, err, want)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "/a/b", true}, {"/home/*/.ssh/*", "/home/a/b/.ssh/id", true},
		{"*../*../*", "/etc/../etc/../x", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"[abc]x", "bx", true}, {"[a-c]x", "dx", false}, {"[!a]x", "bx", true}, {`\*`, "*", true},
		{`\*`, "a", false}, {"[", "[", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false},
	} {
		if got := globMatch(c.p, c.s, false); got != c.want {
			t.Errorf("glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// TestEventTypeIndex: an event only meets rules that can match its type.
func TestEventTypeIndex(t *testing.T) {
	rs := loadStable(t)
	for _, typ := range []string{"execve", "openat", "connect", "procexit", "clone"} {
		for _, r := range rs.candidates(typ) {
			if !r.types.has(typ) {
				t.Errorf("%s offered to rule %q (types %v)", typ, r.Name, r.EventTypes())
			}
		}
	}
	if n := len(rs.candidates("procexit")); n != 0 {
		t.Errorf("%d stable rules for procexit, want 0", n)
	}
	if n := len(rs.candidates("execve")); n < 10 {
		t.Errorf("only %d stable rules for execve", n)
	}
	for _, c := range []struct {
		cond string
		want string
	}{
		{"evt.type in (open, openat) and proc.name = x", "open,openat"},
		{"evt.type = open or evt.type = execve", "execve,open"},
		{"not evt.type = open", "*-open"},
		{"proc.name = x", "*"},
		{"evt.type != open and evt.type != close", "*-close,open"},
		{"not (evt.type = open or proc.name = x)", "*-open"},
		{"evt.type in (open, execve) and not evt.type = open", "execve"},
	} {
		e, _ := Parse(c.cond)
		s := eventTypes(e, false)
		got := strings.Join(s.sorted(), ",")
		if s.neg {
			got = "*" + map[bool]string{true: "-" + got, false: ""}[got != ""]
		}
		if got != c.want {
			t.Errorf("%s: types %s, want %s", c.cond, got, c.want)
		}
	}
}

func TestListsMacrosExceptions(t *testing.T) {
	y := `
- list: shells
  items: [bash, sh]
- list: more_shells
  items: [shells, zsh, "my shell"]
- macro: spawned
  condition: evt.type = execve
- macro: spawned
  condition: and proc.name in (more_shells)
  override:
    condition: append
- rule: shell
  desc: d
  condition: spawned
  output: shell %proc.name
  priority: warning
  exceptions:
    - name: by_parent
      fields: [proc.pname, proc.cmdline]
      comps: [=, startswith]
      values:
        - [cron, "zsh -c"]
- rule: shell
  exceptions:
    - name: by_parent
      values:
        - [make, sh]
  override:
    exceptions: append
- list: shells
  items: [dash]
  override:
    items: append
`
	l := NewLoader()
	if err := l.Load("inline.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
	rs, err := l.Ruleset()
	if err != nil {
		t.Fatal(err)
	}
	m := rs.Matcher()
	run := func(name, parent string, args ...string) bool {
		ev := &event.Event{Num: 1, Type: "execve", Proc: event.Process{Name: name, Args: args, Ancestors: []event.Ancestor{{Name: parent}}}}
		return len(m.Match(ev)) == 1
	}
	for _, c := range []struct {
		name, parent string
		args         []string
		want         bool
	}{
		{"bash", "sshd", nil, true},
		{"zsh", "sshd", nil, true},
		{"my shell", "sshd", nil, true},
		{"dash", "sshd", nil, true}, // lists expand with the items they have at compile time, as in Falco
		{"zsh", "cron", []string{"-c", "true"}, false},
		{"zsh", "cron", []string{"-i"}, true},
		{"sh", "make", []string{"x"}, false},
		{"python", "sshd", nil, false},
	} {
		if got := run(c.name, c.parent, c.args...); got != c.want {
			t.Errorf("%s under %s %v: fired %v, want %v", c.name, c.parent, c.args, got, c.want)
		}
	}
	r := rs.Rules()[0]
	if !strings.Contains(r.Condition, "and not (( proc.pname = cron and  proc.cmdline startswith \"zsh -c\") or ( proc.pname = make and  proc.cmdline startswith sh))") {
		t.Errorf("exception condition %q", r.Condition)
	}
}

func TestLoadErrors(t *testing.T) {
	for y, want := range map[string]string{
		"- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: LOUD\n":                                                                    "Invalid priority",
		"- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o %proc.nope\n  priority: INFO\n":                                                         "invalid formatting token proc.nope",
		"- rule: r\n  desc: d\n  condition: evt.type=nosuchcall\n  output: o\n  priority: INFO\n":                                                              "unknown event type nosuchcall",
		"- macro: m\n  condition: a\n  override:\n    condition: merge\n":                                                                                      "Invalid override operation",
		"- list: l\n  items: [a]\n  override:\n    items: append\n  append: true\n":                                                                            "cannot be used together",
		"- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: INFO\n- rule: r\n  priority: DEBUG\n  override:\n    condition: replace\n": "was specified but 'condition' is not defined",
		"- required_engine_version: 1.0.0\n":                                                                                                                   "Rules require engine version 1.0.0",
		"- required_plugin_versions: x\n":                                                                                                                      "must be a sequence",
		"key: value\n":                                                                                                                                         "Rules content is not yaml array of objects",
		"- [a]\n":                                                                                                                                              "Each element should be a yaml associative array",
		"- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: INFO\n  exceptions:\n    - name: e\n      fields: [proc.name]\n      comps: [~~]\n": "is not a supported comparison operator",
	} {
		l := NewLoader()
		err := l.Load("x.yaml", []byte(y))
		if err == nil {
			_, err = l.Ruleset()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", y, err, want)
		}
		if le, ok := err.(*LoadError); ok && le.File != "x.yaml" {
			t.Errorf("error not located: %+v", le)
		}
	}
}

// TestSkipUnsupported: a rule needing a field bulkhead cannot supply is
// skipped with a warning naming it; other sources are skipped too.
func TestSkipUnsupported(t *testing.T) {
	y := `
- required_plugin_versions:
    - name: k8saudit
      version: 0.1.0
- rule: needs_vmrss
  desc: d
  condition: evt.type=connect and proc.vmrss > 0
  output: o %k8s.pod.name
  priority: INFO
- rule: audit
  desc: d
  condition: ka.verb = create
  output: o
  priority: INFO
  source: k8s_audit
- rule: fine
  desc: d
  condition: evt.type=connect
  output: o %k8s.pod.name %container.mounts
  priority: INFO
`
	l := NewLoader()
	if err := l.Load("x.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
	rs, err := l.Ruleset()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Active()) != 1 || len(rs.Skipped) != 2 || !strings.Contains(rs.Skipped[0].Reason, "proc.vmrss") || rs.Skipped[1].Source != "k8s_audit" {
		t.Fatalf("active %d, skipped %+v", len(rs.Active()), rs.Skipped)
	}
	codes := map[string]bool{}
	for _, w := range rs.Warnings {
		codes[w.Code] = true
	}
	for _, c := range []string{WarnMissingPlugin, WarnUnknownSource, WarnUnknownField} {
		if !codes[c] {
			t.Errorf("no %s warning in %v", c, rs.Warnings)
		}
	}
	m := rs.Matcher()
	ev := opEvent()
	got := m.Match(ev)
	if len(got) != 1 {
		t.Fatalf("matched %d", len(got))
	}
	if a := m.Alert(got[0], ev); !strings.HasSuffix(a.Output, "o <NA> <NA>") {
		t.Errorf("output %q", a.Output)
	}
}

// TestNoAllocs: evaluating the whole stable ruleset allocates nothing per
// event once the matcher has warmed up.
func TestNoAllocs(t *testing.T) {
	rs := loadStable(t)
	m := rs.Matcher()
	evs := benchEvents()
	for i := range evs {
		m.Match(&evs[i])
	}
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		m.Match(&evs[i%len(evs)])
		i++
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per event, want 0", allocs)
	}
}

// benchEvents is a mix of exec, open and connect events, benign and not.
func benchEvents() []event.Event {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	base := event.Process{PID: 100, Name: "python3", Exe: "python3", ExePath: "/usr/bin/python3.11",
		Args: []string{"/srv/app.py", "--port", "8080"}, Cwd: "/srv", Start: now.Add(-time.Hour),
		Ancestors: []event.Ancestor{{PID: 50, Name: "gunicorn", Args: []string{"app:main"}}, {PID: 1, Name: "systemd"}}}
	user := event.User{UID: 1000, Name: "app", LoginUID: -1}
	ctr := &event.Container{ID: "0f3b6a1c2d4e", Name: "web", ImageRepository: "docker.io/library/python", ImageTag: "3.12"}
	var evs []event.Event
	for i, p := range []string{"ls", "bash", "grep", "cat", "nc", "curl"} {
		pr := base
		pr.Name, pr.Exe, pr.ExePath, pr.Args = p, p, "/usr/bin/"+p, []string{"-la", "/tmp"}
		evs = append(evs, event.Event{Num: uint64(i + 1), Time: now, Type: "execve", Proc: pr, User: user, Container: ctr,
			Args: event.Args{{Name: "exe", Value: p}, {Name: "flags", Value: "0"}}})
	}
	for i, f := range []string{"/etc/hosts", "/etc/shadow", "/srv/data/x.db", "/var/log/app.log", "/usr/lib/x.so", "/proc/self/status"} {
		flags := "O_RDONLY|O_CLOEXEC"
		if i%2 == 1 {
			flags = "O_WRONLY|O_CREAT|O_TRUNC"
		}
		evs = append(evs, event.Event{Num: uint64(i + 10), Time: now, Type: "openat", Res: 3, Proc: base, User: user, Container: ctr,
			Args: event.Args{{Name: "fd", Value: "3"}, {Name: "name", Value: f}, {Name: "flags", Value: flags}},
			FD:   &event.FD{Num: 3, Type: event.FDFile, Name: f}})
	}
	for i, dst := range []string{"10.0.0.8:5432", "203.0.113.10:443", "127.0.0.1:6379", "198.51.100.7:22"} {
		ap := netip.MustParseAddrPort(dst)
		evs = append(evs, event.Event{Num: uint64(i + 20), Time: now, Type: "connect", Proc: base, User: user, Container: ctr,
			FD: &event.FD{Num: 4, Type: event.FDIPv4, L4Proto: "tcp", CIP: netip.MustParseAddr("10.0.0.5"), CPort: 40000, SIP: ap.Addr(), SPort: ap.Port()}})
	}
	return evs
}

// BenchmarkStableRuleset measures events per second through the whole
// stable ruleset on an exec/open/connect mix, on one goroutine.
func BenchmarkStableRuleset(b *testing.B) {
	rs := loadStable(b)
	m := rs.Matcher()
	evs := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		m.Match(&evs[i%len(evs)])
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	// On a shared machine wall time overstates the cost; CPU time is what
	// one core spends per event.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

func BenchmarkLoadStable(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "falco_rules.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		l := NewLoader()
		if err := l.Load("falco_rules.yaml", data); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Ruleset(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	cond := `spawned_process and container and shell_procs and proc.tty != 0 and (proc.pname in (runc, "runc:[1:CHILD]") or not proc.pname exists) and not tolower(proc.cmdline) contains "healthcheck"`
	for i := 0; i < b.N; i++ {
		if _, err := Parse(cond); err != nil {
			b.Fatal(err)
		}
	}
}

// conditionSeeds collects every condition of the stable ruleset.
func conditionSeeds(t testing.TB) []string {
	data, err := os.ReadFile(filepath.Join("testdata", "falco_rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := yaml.Unmarshal(data, &items); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		if c, ok := it["condition"].(string); ok {
			out = append(out, c)
		}
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, c := range conditionSeeds(f) {
		f.Add(c)
	}
	f.Add(`proc.name in ("a\"b", 'c') and b64(proc.args) = x or val(proc.exe) = y`)
	f.Fuzz(func(t *testing.T, cond string) {
		e, err := Parse(cond)
		if err != nil {
			return
		}
		// Whatever parses must compile or fail cleanly, and evaluate.
		if n, err := compileExpr(e); err == nil {
			c := &evalCtx{}
			c.reset(opEvent())
			n(c)
		}
		eventTypes(e, false)
	})
}

func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "falco-0.33.1", "rules", "*.yaml"))
	files = append(files, filepath.Join("testdata", "falco_rules.yaml"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) < 8<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := NewLoader()
		if err := l.Load("fuzz.yaml", data); err != nil {
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		rs, err := l.Ruleset()
		if err != nil {
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		m := rs.Matcher()
		ev := opEvent()
		for _, r := range m.Match(ev) {
			_ = m.Alert(r, ev)
		}
		_ = fmt.Sprint(len(rs.Active()))
	})
}
