package diag

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestFprint(t *testing.T) {
	var b bytes.Buffer
	Fprint(&b, []Diagnostic{
		Warnf(WalkAbsoluteName, "entry %q is an absolute name", "/etc/\x1b]2;pwned\x07"),
		Infof(PolicyExempt, "exempted"),
		{Message: "no code, no severity"},
		Errorf(ConfigUnreadable, "a\nb\u009b"),
	})
	want := "warning: entry \"/etc/\\x1b]2;pwned\\a\" is an absolute name [walk.absolute-name]\n" +
		"info: exempted [policy.exempt]\n" +
		"warning: no code, no severity\n" +
		"error: a?b? [config.unreadable]\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	// a raw control character in the message is masked, not sent
	b.Reset()
	Fprint(&b, []Diagnostic{New(Unclassified, Warning, "x\x1b[31my")})
	if b.String() != "warning: x?[31my [warning]\n" {
		t.Errorf("got %q", b.String())
	}
}

func TestMerge(t *testing.T) {
	ds := []Diagnostic{Warnf(VulnDBStale, "old"), Infof(PolicyExempt, "note")}
	got := Merge(ds, []string{"old", "decoded", "old"})
	want := []Diagnostic{ds[0], ds[1], New(Unclassified, Warning, "decoded"), New(Unclassified, Warning, "old")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Merge = %+v, want %+v", got, want)
	}
	if w := Warnings(ds); !reflect.DeepEqual(w, []string{"old"}) {
		t.Errorf("Warnings = %q", w)
	}
	if m := Messages(ds); !reflect.DeepEqual(m, []string{"old", "note"}) {
		t.Errorf("Messages = %q", m)
	}
	if !Has(ds, PolicyExempt) || Has(ds, PolicyWarnRule) {
		t.Error("Has")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	d := Warnf(IgnoreExpired, "expired").At(Location{Path: ".bulkheadignore", Line: 3, Object: "CVE-1"})
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"code":"ignore.expired","severity":"warning","location":{"path":".bulkheadignore","line":3,"object":"CVE-1"},"message":"expired"}` {
		t.Errorf("JSON %s", b)
	}
	var back Diagnostic
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, d) {
		t.Errorf("round trip %+v %v", back, err)
	}
	if d := New(Unclassified, Warning, "x").At(Location{}); d.Location != nil {
		t.Error("a zero location is kept")
	}
	if s := (&Location{Layer: "sha256:a", Path: "/p", Line: 2, Object: "o"}).String(); s != "layer sha256:a /p:2 o" {
		t.Errorf("Location.String %q", s)
	}
}
