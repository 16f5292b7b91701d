package cel

import (
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
)

func TestImageConfigFindings(t *testing.T) {
	p, err := Load("t.yaml", []byte(`checks:
  - id: IMG-USER
    title: no root
    severity: HIGH
    target: imageconfig
    expression: '!has(config.config.User) || config.config.User in ["", "root", "0"] ? ["config.User", "config.User"] : []'
    message: runs as root
    fix: set USER
    link: https://example.com/user
  - id: IMG-LABEL
    title: needs a source label
    target: imageconfig
    expression: '!has(config.config.Labels)'
  - id: DF-1
    title: a dockerfile check
    target: dockerfile
    expression: 'true'
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ImageConfigFindings(p.ForTarget(ImageConfig), &v1.ConfigFile{}, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d findings, want 2 (the repeated place once): %+v", len(got), got)
	}
	u := got[0]
	if u.ID != "IMG-USER" || u.Severity != finding.High || u.Kind != finding.KindMisconfiguration || u.Target != "app:1" ||
		u.Location.Path != "image config:config.User" || u.Description != "runs as root" || u.Fix != "set USER" ||
		!reflect.DeepEqual(u.References, []string{"https://example.com/user"}) {
		t.Errorf("user finding: %+v", u)
	}
	if l := got[1]; l.ID != "IMG-LABEL" || l.Location.Path != ImageConfigPath || l.Description != "needs a source label" {
		t.Errorf("label finding: %+v %+v", l, l.Location)
	}
	got, err = ImageConfigFindings(p.ForTarget(ImageConfig), &v1.ConfigFile{Config: v1.Config{User: "1000", Labels: map[string]string{"a": "b"}}}, "app:1")
	if err != nil || len(got) != 0 {
		t.Errorf("passing image: %+v %v", got, err)
	}
	if _, err := ImageConfigFindings(p.ForTarget(ImageConfig), nil, "app:1"); err == nil {
		t.Error("no config: no error")
	}
	if _, err := ImageConfigFindings(p.ForTarget(Dockerfile), &v1.ConfigFile{}, "app:1"); err == nil {
		t.Error("a dockerfile check ran on an image config")
	}
	if o := p.Others(ImageConfig); !reflect.DeepEqual(o, map[Target][]string{Dockerfile: {"DF-1"}}) {
		t.Errorf("Others(imageconfig) = %v", o)
	}
	if o := p.Others(ImageConfig, Dockerfile); o != nil {
		t.Errorf("Others(all) = %v", o)
	}
}
