package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/profile"
)

// The bundled bulkhead rules load whole (nothing skipped) before the
// stable ones, and a recorded drift, a package manager and a learner's
// verdict each raise their rule.
func TestBulkheadRules(t *testing.T) {
	rs, err := loadRules(nil, "", true)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range rs.Active() {
		names[r.Name] = true
	}
	for _, want := range []string{"Drift - executable not from the image", "Package manager run in container",
		"Unexpected executable (learned profile)", "Unexpected outbound connection (learned profile)",
		"Unexpected listening port (learned profile)", "Unexpected file write (learned profile)", "Unexpected DNS lookup (learned profile)", "Drop and execute new binary in container"} {
		if !names[want] {
			t.Errorf("rule %q not active", want)
		}
	}

	img := "sha256:" + strings.Repeat("ab", 32)
	ct := &event.Container{ID: "0123456789ab", Name: "orders-api", ImageID: img}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := []event.Event{
		{Time: now, Type: "execve", Args: event.Args{{Name: "res", Value: "0"}}, Container: ct,
			Proc:  event.Process{PID: 5, Name: "dropped", ExePath: "/tmp/dropped"},
			Drift: &event.Drift{Path: "/tmp/dropped", SHA256: strings.Repeat("3d", 32), Reason: event.DriftNotInImage, Writer: &event.Writer{PID: 4, Name: "cp"}}},
		{Time: now, Type: "execve", Args: event.Args{{Name: "res", Value: "0"}}, Container: ct, Proc: event.Process{PID: 6, Name: "apt-get", ExePath: "/usr/bin/apt-get"}},
		{Time: now, Type: "execve", Args: event.Args{{Name: "res", Value: "0"}}, Container: ct, Proc: event.Process{PID: 7, Name: "curl", ExePath: "/usr/bin/curl"}},
		{Time: now, Type: "write", Res: 29, Args: event.Args{{Name: "fd", Value: "3"}, {Name: "size", Value: "29"}, {Name: "res", Value: "29"}, {Name: "query", Value: "c2.example.net"}},
			Container: ct, Proc: event.Process{PID: 8, Name: "nslookup", ExePath: "/bin/busybox"}},
	}
	var trace bytes.Buffer
	for i := range evs {
		b, err := event.Marshal(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		trace.Write(append(b, '\n'))
	}
	// A learner whose window for the image is already over, with an
	// empty profile: every executable is new.
	l := profile.New(profile.Options{Dir: t.TempDir(), Window: time.Nanosecond, Now: func() time.Time { return now.Add(time.Hour) }})
	l.Enrich(&event.Event{Type: "execve", Container: ct, Proc: event.Process{ExePath: "/bin/sh"}}) // starts the profile
	var out bytes.Buffer
	if _, err := Run(context.Background(), Options{Trace: &trace, TraceName: "t.jsonl", Format: "json", Output: To(&out),
		Matching: "all", Enrichers: []Enricher{l}, BulkheadRules: true}); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var a struct {
			Rule   string         `json:"rule"`
			Fields map[string]any `json:"output_fields"`
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatal(err)
		}
		got[a.Rule] = append(got[a.Rule], line)
	}
	if d := got["Drift - executable not from the image"]; len(d) != 1 || !strings.Contains(d[0], `"drift.path":"/tmp/dropped"`) ||
		!strings.Contains(d[0], `"drift.writer.name":"cp"`) || !strings.Contains(d[0], `"container.image.id":"`+img+`"`) {
		t.Errorf("drift alerts: %v", d)
	}
	if p := got["Package manager run in container"]; len(p) != 1 || !strings.Contains(p[0], "apt-get") {
		t.Errorf("package manager alerts: %v", p)
	}
	if d := got["Unexpected DNS lookup (learned profile)"]; len(d) != 1 || !strings.Contains(d[0], `"profile.item":"c2.example.net"`) ||
		!strings.Contains(d[0], "Unexpected DNS lookup from orders-api (image "+img+"): c2.example.net") {
		t.Errorf("DNS alerts: %v", d)
	}
	if u := got["Unexpected executable (learned profile)"]; len(u) != 3 || !strings.Contains(strings.Join(u, ""), `"profile.item":"/usr/bin/curl"`) {
		t.Errorf("profile alerts: %v", u)
	}
}
