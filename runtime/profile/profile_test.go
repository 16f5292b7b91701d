package profile

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/rules"
)

var img = "sha256:" + strings.Repeat("4c", 32)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// workload produces the events of one container of img.
type workload struct {
	ct *event.Container
}

func (w workload) exec(p string) *event.Event {
	return &event.Event{Type: "execve", Container: w.ct, Proc: event.Process{PID: 10, ExePath: p, Name: filepath.Base(p)}}
}

func (w workload) connect(addr string, port uint16) *event.Event {
	return &event.Event{Type: "connect", Container: w.ct, Proc: event.Process{PID: 11, Name: "app"},
		FD: &event.FD{Num: 3, Type: event.FDIPv4, L4Proto: "tcp", CIP: netip.MustParseAddr("10.88.0.2"), CPort: 40000,
			SIP: netip.MustParseAddr(addr), SPort: port, Connected: true}}
}

func (w workload) listen(port uint16) *event.Event {
	return &event.Event{Type: "listen", Container: w.ct, Proc: event.Process{PID: 12, Name: "app"},
		FD: &event.FD{Num: 4, Type: event.FDIPv4, L4Proto: "tcp", SIP: netip.MustParseAddr("0.0.0.0"), SPort: port, Server: true}}
}

func (w workload) write(p string) *event.Event {
	return &event.Event{Type: "openat", Res: 5, Container: w.ct, Proc: event.Process{PID: 13, Name: "app"},
		FD: &event.FD{Num: 5, Type: event.FDFile, Name: p}, Args: event.Args{{Name: "flags", Value: "O_WRONLY|O_CREAT|O_APPEND"}}}
}

// behaviour is the workload's usual round.
func (w workload) behaviour() []*event.Event {
	return []*event.Event{w.exec("/usr/bin/app"), w.exec("/bin/sh"), w.connect("10.0.0.5", 5432), w.listen(8080),
		w.write("/var/log/app.log"), w.write("/tmp/scratch")}
}

func unexpected(l *Learner, ev *event.Event) bool {
	l.Enrich(ev)
	return ev.Profile != nil && ev.Profile.Unexpected
}

func TestLearnThenEnforce(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := New(Options{Dir: dir, Window: 10 * time.Minute, Now: c.now})
	w := workload{ct: &event.Container{ID: "abc", Name: "orders-api", Image: "shop/orders:1", ImageID: img}}

	// Learning: the round, repeated for the whole window; nothing is
	// unexpected.
	for i := 0; i < 10; i++ {
		for _, ev := range w.behaviour() {
			if unexpected(l, ev) {
				t.Fatalf("unexpected while learning: %+v", ev.Profile)
			}
			if ev.Profile == nil && ev.FD != nil && ev.FD.Name != "/tmp/scratch" {
				t.Fatalf("event not profiled: %+v", ev)
			}
		}
		c.t = c.t.Add(time.Minute)
	}
	// After the window, the same round is expected...
	c.t = c.t.Add(time.Second)
	for i := 0; i < 3; i++ {
		for _, ev := range w.behaviour() {
			if unexpected(l, ev) {
				t.Fatalf("learned behaviour reported after the window: %+v", ev.Profile)
			}
		}
	}
	sh := w.exec("/bin/sh")
	if l.Enrich(sh); sh.Profile.State != Enforcing {
		t.Fatalf("state %q after the window", sh.Profile.State)
	}
	// ...and what is new is not, once each.
	ev := w.connect("203.0.113.5", 4444)
	if !unexpected(l, ev) || ev.Profile.Kind != event.ProfileOutbound || ev.Profile.Item != "203.0.113.5:4444/tcp" || ev.Profile.Image != img {
		t.Errorf("new destination: %+v", ev.Profile)
	}
	if unexpected(l, w.connect("203.0.113.5", 4444)) {
		t.Error("the same new destination reported twice")
	}
	for _, ev := range []*event.Event{w.exec("/usr/bin/nc"), w.listen(4444), w.write("/etc/cron.d/job")} {
		if !unexpected(l, ev) {
			t.Errorf("not reported: %s %+v", ev.Type, ev.Profile)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// The file is the readable YAML, and a new sensor enforces it at once.
	file := File(dir, img)
	p, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if p.State != Enforcing || len(p.Executables) != 2 || p.Outbound[0] != "10.0.0.5:5432/tcp" || p.Listening[0] != "8080/tcp" ||
		len(p.Writes) != 1 || p.Writes[0] != "/var/log/app.log" || !contains(p.Names, "orders-api") {
		t.Errorf("saved profile %+v", p)
	}
	l2 := New(Options{Dir: dir, Window: time.Hour, Now: c.now})
	if unexpected(l2, w.exec("/usr/bin/app")) || !unexpected(l2, w.exec("/usr/bin/curl")) {
		t.Error("a reloaded profile does not enforce")
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Entries edited into patterns allow what they match.
func TestEditedPatterns(t *testing.T) {
	dir := t.TempDir()
	doc := `apiVersion: bulkhead.dev/v1
kind: RuntimeProfile
image: ` + img + `
state: enforcing
learningStarted: 2026-01-01T00:00:00Z
learningEnds: 2026-01-01T00:10:00Z
executables: [/usr/bin/app, "/usr/lib/app/*", /opt/plugins/**]
outbound: ["10.0.0.0/8:*/tcp", "*:53/udp", "[2001:db8::1]:443/tcp"]
dns: ["*.example.com"]
listening: ["*/udp", 8080/tcp]
writes: [/data/**]
`
	if err := os.WriteFile(File(dir, img), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	l := New(Options{Dir: dir, Window: time.Hour})
	w := workload{ct: &event.Container{ID: "x", ImageID: img}}
	v6 := w.connect("10.0.0.1", 1)
	v6.FD.Type, v6.FD.SIP, v6.FD.SPort = event.FDIPv6, netip.MustParseAddr("2001:db8::1"), 443
	for _, ev := range []*event.Event{w.exec("/usr/lib/app/worker"), w.exec("/opt/plugins/a/b"), w.connect("10.9.8.7", 9999),
		v6, w.listen(8080), w.write("/data/x/y")} {
		if unexpected(l, ev) {
			t.Errorf("pattern did not allow %s %+v", ev.Type, ev.Profile)
		}
	}
	for _, ev := range []*event.Event{w.exec("/usr/lib/app/sub/worker"), w.exec("/opt/pluginsX"), w.connect("11.0.0.1", 80), w.write("/database")} {
		if !unexpected(l, ev) {
			t.Errorf("pattern allowed %s %+v", ev.Type, ev.Profile)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	head := "apiVersion: bulkhead.dev/v1\nkind: RuntimeProfile\nimage: " + img + "\nstate: enforcing\n"
	for _, c := range []struct{ doc, want string }{
		{"", "empty document"},
		{"apiVersion: v2\n", "apiVersion"},
		{head + "executables: [bin/sh]\n", "executables[0]"},
		{head + "outbound: [10.0.0.1:99999/tcp]\n", "outbound[0]"},
		{head + "outbound: [10.0.0.1/tcp]\n", "outbound[0]"},
		{head + "listening: [80/sctp]\n", "listening[0]"},
		{head + "executables: [\"/usr/[lib\"]\n", "executables[0]"},
		{head + "unknown: 1\n", "field unknown not found"},
		{head + "---\n" + head, "more than one YAML document"},
		{strings.Replace(head, "enforcing", "learning", 1), "learningEnds"},
		{strings.Replace(head, img, "sha256:abc", 1), "image"},
	} {
		_, err := Decode(strings.NewReader(c.doc), "p.yaml")
		var de *DecodeError
		if err == nil || !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "p.yaml") {
			t.Errorf("%q: %v, want a DecodeError naming p.yaml and %q", c.doc, err, c.want)
		}
	}
}

// A broken profile is reported and the image left alone; the file stays.
func TestBrokenProfileKept(t *testing.T) {
	dir := t.TempDir()
	file := File(dir, img)
	os.WriteFile(file, []byte("state: [\n"), 0o600)
	var stderr strings.Builder
	l := New(Options{Dir: dir, Window: time.Minute, Stderr: &stderr})
	ev := workload{ct: &event.Container{ID: "x", ImageID: img}}.exec("/bin/sh")
	l.Enrich(ev)
	l.Close()
	if ev.Profile != nil || !strings.Contains(stderr.String(), file) || !strings.Contains(stderr.String(), "not profiled until it is fixed") {
		t.Errorf("profile %+v, stderr %q", ev.Profile, stderr.String())
	}
	if b, _ := os.ReadFile(file); string(b) != "state: [\n" {
		t.Errorf("broken profile overwritten: %q", b)
	}
}

// Promoted rules load in the rules engine and fire on exactly what the
// profile does not list.
func TestPromote(t *testing.T) {
	p := &Profile{APIVersion: APIVersion, Kind: Kind, Image: img, State: Enforcing,
		Executables: []string{"/usr/bin/app", "/bin/sh", "/usr/lib/app/*"}, Outbound: []string{"10.0.0.5:5432/tcp", "10.1.0.0/16:*/tcp"},
		Listening: []string{"8080/tcp"}, Writes: []string{"/var/log/app.log", "/data/**"}, DNS: []string{"db.internal"}}
	b, err := Promote(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Not promoted: 1 DNS names") {
		t.Errorf("the DNS names left out are not said:\n%s", b)
	}
	l := rules.NewLoader()
	if err := l.Load("promoted.yaml", b); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	rs, err := l.Ruleset()
	if err != nil || len(rs.Active()) != 4 || len(rs.Skipped) != 0 {
		t.Fatalf("ruleset: %v, %d active, skipped %v\n%s", err, len(rs.Active()), rs.Skipped, b)
	}
	m := rs.Matcher()
	w := workload{ct: &event.Container{ID: "x", ImageID: img}}
	fires := func(ev *event.Event) bool {
		if ev.Type == "execve" {
			ev.Args = event.Args{{Name: "res", Value: "0"}}
		}
		return len(m.Match(ev)) > 0
	}
	for _, ev := range []*event.Event{w.exec("/usr/bin/app"), w.exec("/usr/lib/app/x"), w.connect("10.0.0.5", 5432), w.connect("10.1.2.3", 80),
		w.listen(8080), w.write("/var/log/app.log"), w.write("/data/a/b"), w.write("/tmp/x")} {
		if fires(ev) {
			t.Errorf("promoted rules fire on allowed %s %+v", ev.Type, ev.FD)
		}
	}
	for _, ev := range []*event.Event{w.exec("/usr/bin/nc"), w.connect("203.0.113.5", 4444), w.connect("10.0.0.5", 22), w.listen(4444), w.write("/etc/passwd")} {
		if !fires(ev) {
			t.Errorf("promoted rules miss %s %+v %s", ev.Type, ev.FD, ev.Proc.ExePath)
		}
	}
	// Another image's containers are not judged by this profile.
	other := workload{ct: &event.Container{ID: "y", ImageID: "sha256:" + strings.Repeat("0", 64)}}
	if fires(other.exec("/usr/bin/nc")) {
		t.Error("promoted rules fire on another image")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: bulkhead.dev/v1\nkind: RuntimeProfile\nimage: " + img + "\nstate: enforcing\nexecutables: [/bin/sh, \"/usr/*\"]\noutbound: [\"10.0.0.0/8:*/tcp\", \"[::1]:53/udp\"]\nlistening: [8080/tcp]\ndns: [\"*.x.org\"]\nwrites: [/data/**]\n"))
	f.Add([]byte("apiVersion: bulkhead.dev/v1\nkind: RuntimeProfile\nimage: " + img + "\nstate: learning\nlearningEnds: 2026-01-01T00:00:00Z\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("- [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(strings.NewReader(string(data)), "fuzz.yaml")
		if err != nil {
			return
		}
		// What decodes must validate, promote and round-trip.
		var sb strings.Builder
		if err := p.Encode(&sb); err != nil {
			t.Fatalf("encode: %v", err)
		}
		if _, err := Decode(strings.NewReader(sb.String()), "again.yaml"); err != nil {
			t.Fatalf("re-decode of %q: %v", sb.String(), err)
		}
		s := &state{p: p}
		s.index()
		s.has(event.ProfileOutbound, "1.2.3.4:80/tcp")
		s.has(event.ProfileExec, "/bin/sh")
		if b, err := Promote(p); err == nil {
			l := rules.NewLoader()
			if err := l.Load("promoted.yaml", b); err != nil {
				t.Fatalf("promoted rules do not load: %v\n%s", err, b)
			}
		}
	})
}

// runc, setting a container up, runs in its cgroup with the host's paths
// (it creates /etc/hosts in the overlay's merged directory): not learned.
func TestRuntimeInitNotLearned(t *testing.T) {
	l := New(Options{Dir: t.TempDir(), Window: time.Hour})
	w := workload{ct: &event.Container{ID: "x", ImageID: img}}
	ev := w.write("/var/lib/containers/storage/overlay/0a/merged/etc/hosts")
	ev.Proc.Name, ev.Proc.ExePath = "runc:[2:INIT]", "/"
	l.Enrich(ev)
	ex := w.exec("/")
	l.Enrich(ex)
	if ev.Profile != nil || ex.Profile != nil {
		t.Errorf("runtime init profiled: %+v %+v", ev.Profile, ex.Profile)
	}
}

func (w workload) dnsQuery(typ, name string, resolver string) *event.Event {
	ev := &event.Event{Type: typ, Res: 29, Container: w.ct, Proc: event.Process{PID: 14, Name: "nslookup"},
		Args: event.Args{{Name: "fd", Value: "3"}, {Name: "query", Value: name}}}
	if resolver != "" {
		ev.FD = &event.FD{Num: 3, Type: event.FDIPv4, L4Proto: "udp", SIP: netip.MustParseAddr(resolver), SPort: 53, NameChanged: typ == "sendto"}
	}
	return ev
}

// DNS names: learned from the sensor's "query" argument on writes and
// sends, reported once when new after the window; a query that also shows
// a new resolver reports the resolver first, then the name.
func TestLearnDNS(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := New(Options{Dir: dir, Window: time.Minute, Now: c.now})
	w := workload{ct: &event.Container{ID: "abc", Name: "web", ImageID: img}}
	for _, ev := range []*event.Event{w.dnsQuery("write", "db.internal", "10.88.0.1"), w.dnsQuery("sendmmsg", "api.example.com", ""),
		w.dnsQuery("sendto", "cdn.example.com", "10.88.0.1")} {
		if unexpected(l, ev) || ev.Profile == nil || ev.Profile.Kind != event.ProfileDNS {
			t.Fatalf("learning %s: %+v", ev.Type, ev.Profile)
		}
	}
	c.t = c.t.Add(2 * time.Minute)
	for _, ev := range []*event.Event{w.dnsQuery("write", "db.internal", "10.88.0.1"), w.dnsQuery("sendto", "api.example.com", "10.88.0.1")} {
		if unexpected(l, ev) {
			t.Fatalf("a learned name reported: %+v", ev.Profile)
		}
	}
	ev := w.dnsQuery("write", "evil.example.net", "10.88.0.1")
	if !unexpected(l, ev) || ev.Profile.Kind != event.ProfileDNS || ev.Profile.Item != "evil.example.net" {
		t.Fatalf("new name: %+v", ev.Profile)
	}
	if unexpected(l, w.dnsQuery("sendmsg", "evil.example.net", "")) {
		t.Error("the same new name reported twice")
	}
	// A failed send shows nothing.
	failed := w.dnsQuery("write", "other.example.net", "")
	failed.Res = -111
	if unexpected(l, failed) {
		t.Errorf("a failed send reported: %+v", failed.Profile)
	}
	// New resolver and new name in one sendto: the resolver, then the name.
	ev = w.dnsQuery("sendto", "x.example.org", "203.0.113.53")
	if !unexpected(l, ev) || ev.Profile.Kind != event.ProfileOutbound || ev.Profile.Item != "203.0.113.53:53/udp" {
		t.Fatalf("new resolver: %+v", ev.Profile)
	}
	ev = w.dnsQuery("sendto", "x.example.org", "203.0.113.53")
	if !unexpected(l, ev) || ev.Profile.Kind != event.ProfileDNS || ev.Profile.Item != "x.example.org" {
		t.Fatalf("new name after the new resolver: %+v", ev.Profile)
	}
	l.Close()
	p, err := Load(File(dir, img))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.DNS) != 3 || p.DNS[0] != "db.internal" || !contains(p.DNS, "cdn.example.com") {
		t.Errorf("saved dns list: %v", p.DNS)
	}
}

// A UDP bind to port 0 (a resolver's client socket gets an ephemeral
// port) is not a listening port; a bind to a fixed port is.
func TestEphemeralBindNotListening(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := New(Options{Dir: t.TempDir(), Window: time.Minute, Now: c.now})
	w := workload{ct: &event.Container{ID: "abc", Name: "web", ImageID: img}}
	bind := func(asked, got uint16) *event.Event {
		return &event.Event{Type: "bind", Container: w.ct, Proc: event.Process{PID: 15, Name: "nslookup"},
			Args: event.Args{{Name: "fd", Value: "3"}, {Name: "addr", Value: netip.AddrPortFrom(netip.IPv4Unspecified(), asked).String()}, {Name: "res", Value: "0"}},
			FD:   &event.FD{Num: 3, Type: event.FDIPv4, L4Proto: "udp", SIP: netip.IPv4Unspecified(), SPort: got, Server: true}}
	}
	ev := bind(0, 37837)
	if l.Enrich(ev); ev.Profile != nil {
		t.Fatalf("ephemeral bind profiled: %+v", ev.Profile)
	}
	ev = bind(5353, 5353)
	if l.Enrich(ev); ev.Profile == nil || ev.Profile.Item != "5353/udp" {
		t.Fatalf("fixed bind: %+v", ev.Profile)
	}
}
