package kubernetes

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// pods is a stream of n privileged pods, one document each.
func pods(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%d}\nspec:\n  containers: [{name: c, image: x, securityContext: {privileged: true}}]\n", i)
	}
	return []byte(b.String())
}

// streamAll checks a stream the way bulkhead config does.
func streamAll(t testing.TB, s *Scanner, d *Decoder) ([]finding.Finding, error) {
	t.Helper()
	st := s.NewStream()
	var out []finding.Finding
	for {
		objs, perr := d.Next()
		fs, err := st.Check(objs)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fs...)
		if perr != nil {
			out = append(out, st.Finish()...)
			SortFindings(out)
			if errors.Is(perr, io.EOF) {
				perr = nil
			}
			return out, perr
		}
	}
}

func TestDecoderMaxObjects(t *testing.T) {
	data := append(pods(30), "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"...)
	d := NewDecoder("many.yaml", data)
	d.MaxObjects = 31 // the List's second item is one too many
	var n int
	var err error
	for err == nil {
		var objs []*Object
		objs, err = d.Next()
		n += len(objs)
	}
	if !errors.Is(err, ErrTooManyObjects) || n != 31 || d.Objects() != 31 {
		t.Fatalf("got %d objects, err %v", n, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "many.yaml") || !strings.Contains(msg, "more than 31 objects") || !strings.Contains(msg, "split") {
		t.Errorf("unclear error: %s", msg)
	}
	if _, again := d.Next(); !errors.Is(again, ErrTooManyObjects) {
		t.Errorf("Next after the limit: %v", again)
	}
	// At the limit exactly, the stream ends cleanly.
	d = NewDecoder("many.yaml", data)
	d.MaxObjects = 32
	if objs, err := ParseBytes("many.yaml", data); err != nil || len(objs) != 32 {
		t.Fatalf("ParseBytes: %d %v", len(objs), err)
	}
	s, _ := New(Options{})
	if _, err := streamAll(t, s, d); err != nil {
		t.Fatal(err)
	}
}

// TestStreamMatchesScan: checking document by document gives what Scan
// over the whole stream gives, a ServiceAccount after the pods that use it
// included.
func TestStreamMatchesScan(t *testing.T) {
	data := []byte(`apiVersion: v1
kind: Pod
metadata: {name: a, namespace: n}
spec:
  serviceAccountName: quiet
  containers: [{name: c, image: "x:1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: n}
spec:
  serviceAccountName: loud
  containers: [{name: c, image: "x:1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: n, annotations: {bulkhead.dev/ignore: BH-K8S-104}}
spec:
  containers: [{name: c, image: "x:1"}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: quiet, namespace: n}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: loud, namespace: n}
---
apiVersion: v1
kind: Pod
metadata: {name: d, namespace: n}
spec:
  serviceAccountName: quiet
  containers: [{name: c, image: "x:1"}]
`)
	data = append(data, pods(5)...)
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ParseBytes("s.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := streamAll(t, s, NewDecoder("s.yaml", data))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stream and scan differ:\n%v\n%v", got, want)
	}
	automount := map[int]bool{}
	for _, f := range got {
		if f.ID == automountCheckID {
			automount[f.Location.StartLine] = f.Suppressed != nil
		}
	}
	// pod a (spec on line 4) and d are cleared by "quiet", declared after a; b's
	// "loud" mounts; c's finding is suppressed by its annotation.
	if _, ok := automount[4]; ok {
		t.Errorf("pod a reported though its account turns automount off: %v", automount)
	}
	if supp, ok := automount[11]; !ok || supp {
		t.Errorf("pod b: %v", automount)
	}
	if supp, ok := automount[18]; !ok || !supp {
		t.Errorf("pod c: %v", automount)
	}
}
