package rules

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

func loadYAML(t *testing.T, y string) *Ruleset {
	t.Helper()
	l := NewLoader()
	if err := l.Load("k8s.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
	rs, err := l.Ruleset()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Skipped) > 0 {
		t.Fatalf("skipped %+v", rs.Skipped)
	}
	return rs
}

func matched(m *Matcher, ev *event.Event) []string {
	var out []string
	for _, r := range m.Match(ev) {
		out = append(out, r.Name)
	}
	return out
}

// TestK8sFields: k8s.* and container.label fields read the container's
// Kubernetes context; a host event or a container outside Kubernetes has
// none.
func TestK8sFields(t *testing.T) {
	rs := loadYAML(t, `
- rule: shop
  desc: d
  condition: evt.type=openat and k8s.ns.name=shop
  output: ns=%k8s.ns.name pod=%k8s.pod.name uid=%k8s.pod.uid labels=%k8s.pod.labels app=%k8s.pod.label[app] tier=%container.label[tier]
  priority: INFO
- rule: web label
  desc: d
  condition: evt.type=openat and (k8s.pod.labels contains "app:web" or k8s.pod.label[app] in (api))
  output: o
  priority: INFO
`)
	m := rs.Matcher()
	m.First = false
	ev := &event.Event{Type: "openat", Time: time.Unix(1700000000, 0), Proc: event.Process{PID: 7, Name: "cat"}}
	if got := matched(m, ev); len(got) != 0 {
		t.Errorf("host event matched %v", got)
	}
	ev.Container = &event.Container{ID: "0123456789ab", Name: "plain"}
	if got := matched(m, ev); len(got) != 0 {
		t.Errorf("container outside Kubernetes matched %v", got)
	}
	ev.Container = &event.Container{ID: "0123456789ab", Name: "web", K8sNamespace: "shop", K8sPodName: "web-5d8c",
		K8sPodUID: "9f1c", K8sPodLabels: map[string]string{"app": "web", "tier": "front"}, Labels: map[string]string{"tier": "front"}}
	got := m.Match(ev)
	if len(got) != 2 {
		t.Fatalf("matched %d rules, want shop and web label", len(got))
	}
	a := m.Alert(got[0], ev)
	if want := "ns=shop pod=web-5d8c uid=9f1c labels=app:web, tier:front app=web tier=front"; !strings.HasSuffix(a.Output, want) {
		t.Errorf("output %q, want suffix %q", a.Output, want)
	}
	ev.Container.K8sNamespace = "other"
	ev.Container.K8sPodLabels = map[string]string{"app": "api"}
	if got := matched(m, ev); len(got) != 1 || got[0] != "web label" {
		t.Errorf("namespace other matched %v, want only the label rule", got)
	}
}

// TestIPName: fd.sip.name compares the server address with what the
// name resolves to (here localhost, from the machine's resolver); the
// first evaluation starts the resolution and never waits for it.
func TestIPName(t *testing.T) {
	rs := loadYAML(t, `
- rule: to localhost
  desc: d
  condition: evt.type=connect and fd.sip.name=localhost
  output: name=%fd.sip.name
  priority: INFO
`)
	m := rs.Matcher()
	ev := &event.Event{Type: "connect", Time: time.Unix(1700000000, 0), Proc: event.Process{PID: 7, Name: "nc"},
		FD: &event.FD{Type: event.FDIPv4, CIP: netip.MustParseAddr("127.0.0.1"), CPort: 40000, SIP: netip.MustParseAddr("127.0.0.1"), SPort: 80}}
	start := time.Now()
	m.Match(ev)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("the first evaluation took %v: it waited for DNS", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	var got []*Rule
	for time.Now().Before(deadline) {
		if got = m.Match(ev); len(got) == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatal("fd.sip.name=localhost never matched a connect to 127.0.0.1")
	}
	if a := m.Alert(got[0], ev); !strings.HasSuffix(a.Output, "name=localhost") {
		t.Errorf("output %q", a.Output)
	}
	ev.FD.SIP = netip.MustParseAddr("192.0.2.1")
	if got := m.Match(ev); len(got) != 0 {
		t.Error("fd.sip.name=localhost matched 192.0.2.1")
	}
}
