package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// countingFacts fails every lookup and counts them.
type countingFacts struct{ calls int }

func (c *countingFacts) Resolve(context.Context, *Image) (string, error) {
	c.calls++
	return "", errors.New("unreachable")
}
func (c *countingFacts) Verify(context.Context, *Image, *SignatureRule) error {
	c.calls++
	return errors.New("unreachable")
}
func (c *countingFacts) Scan(context.Context, *Image) (*Scan, error) {
	c.calls++
	return nil, errors.New("unreachable")
}

// Over MaxImages no image is looked up: each rule that needs the registry
// gives one result naming the limit (fail mode applies); rules that need
// no registry still judge each image; Reason lists at most MaxReasons.
func TestMaxImages(t *testing.T) {
	doc := `apiVersion: bulkhead.dev/v1
kind: Policy
rules:
  - name: signed
    signatures: {keys: [release.pub]}
  - name: vulns
    vulnerabilities: {maxSeverity: HIGH}
  - name: pinned
    digestPinning: {}
`
	f, err := Parse("test.yaml", []byte(doc), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	if f.Admission.MaxImages != DefaultMaxImages {
		t.Errorf("default maxImages %d", f.Admission.MaxImages)
	}
	facts := &countingFacts{}
	e := &Engine{File: f, Facts: facts}
	var imgs []string
	for i := 0; i < 100; i++ {
		imgs = append(imgs, fmt.Sprintf("registry.example/app-%d:1", i))
	}
	d := e.Evaluate(context.Background(), Input{Images: imgs, MaxImages: 10})
	if facts.calls != 0 {
		t.Errorf("%d lookups over the limit", facts.calls)
	}
	var tooMany, pinned int
	for _, r := range d.Results {
		switch {
		case r.Rule == "pinned" && r.Outcome == Deny:
			pinned++
		case strings.Contains(r.Message, "100 distinct images, over the limit of 10 (admission.maxImages)") && r.Outcome == Deny && r.Error:
			tooMany++
		default:
			t.Errorf("unexpected result %+v", r)
		}
	}
	if tooMany != 2 || pinned != 100 {
		t.Errorf("%d too-many results, %d pinning denials", tooMany, pinned)
	}
	if reason := d.Reason(); !strings.HasSuffix(reason, fmt.Sprintf("; and %d more denials", 102-MaxReasons)) {
		t.Errorf("reason %.300s", reason)
	}
	// Within the limit the facts are asked for.
	e.Evaluate(context.Background(), Input{Images: imgs[:10], MaxImages: 10})
	if facts.calls == 0 {
		t.Error("no lookups within the limit")
	}
	if _, err := Parse("test.yaml", []byte(doc+"admission: {maxImages: -1}\n"), "testdata"); err == nil || !strings.Contains(err.Error(), "maxImages") {
		t.Errorf("negative maxImages: %v", err)
	}
}

// Once the context has expired, no lookup is started.
func TestSpentBudgetStopsLookups(t *testing.T) {
	f, err := Parse("test.yaml", []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - name: vulns\n    vulnerabilities: {maxSeverity: HIGH}\n"), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	facts := &countingFacts{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := (&Engine{File: f, Facts: facts}).Evaluate(ctx, Input{Images: []string{"registry.example/a:1", "registry.example/b:1"}})
	if facts.calls != 0 || d.Allowed || !strings.Contains(d.Reason(), "time budget ran out") {
		t.Errorf("%d lookups; %v %s", facts.calls, d.Allowed, d.Reason())
	}
}
