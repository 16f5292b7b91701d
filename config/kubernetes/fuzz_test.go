package kubernetes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// FuzzParse feeds arbitrary streams to the parser and the checks: errors
// are fine, panics and hangs are not.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"testdata/examples/*", "testdata/psa/restricted/v1.37/fail/*", "testdata/kics/*/test/positive*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil && len(data) < 64<<10 {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(aliasBomb()))
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _ := ParseBytes("fuzz.yaml", data)
		if _, err := s.Scan(objs); err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if _, err := CELVars(o); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzStream decodes streams one document at a time, as bulkhead config
// does, under a small object limit: the objects before the limit, checked
// document by document, give the findings Scan gives for them.
func FuzzStream(f *testing.F) {
	files, _ := filepath.Glob("testdata/examples/*")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil && len(data) < 64<<10 {
			f.Add(data, uint8(3))
		}
	}
	f.Add(pods(4), uint8(2))
	f.Add([]byte("kind: List\napiVersion: v1\nitems: [{kind: Pod, apiVersion: v1, spec: {containers: [{name: c}]}}, {kind: ServiceAccount, apiVersion: v1, metadata: {name: default}, automountServiceAccountToken: false}]\n"), uint8(0))
	f.Add([]byte(aliasBomb()), uint8(1))
	for _, p := range []string{"testdata/rbac/argo-cd_argocd-server-clusterrole.yaml", "testdata/rbac/kube-linter_cluster-admin-role-binding.yml", "testdata/kics/service_account_allows_access_secrets/test/positive.yaml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data, uint8(0))
		}
	}
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		d := NewDecoder("fuzz.yaml", data)
		d.MaxObjects = int(limit)
		var objs []*Object
		st := s.NewStream()
		var got []finding.Finding
		var perr error
		for perr == nil {
			var some []*Object
			some, perr = d.Next()
			objs = append(objs, some...)
			fs, err := st.Check(some)
			if err != nil {
				// a malformed object (an RBAC rule of the wrong type):
				// Scan must refuse the same objects
				if _, serr := s.Scan(objs); serr == nil {
					t.Fatalf("stream refused (%v), Scan did not", err)
				}
				return
			}
			got = append(got, fs...)
		}
		got = append(got, st.Finish()...)
		SortFindings(got)
		if limit > 0 && len(objs) > int(limit) {
			t.Fatalf("%d objects past the limit %d", len(objs), limit)
		}
		if errors.Is(perr, ErrTooManyObjects) && (limit == 0 || d.Objects() != int(limit)) {
			t.Fatalf("limit %d, %d objects: %v", limit, d.Objects(), perr)
		}
		want, err := s.Scan(objs)
		if err != nil {
			t.Fatal(err)
		}
		// the same findings; ties on file, line and ID may come in another order
		// (by value: a key with pointers in it would order by address)
		key := func(f finding.Finding) string {
			var loc, supp string
			if f.Location != nil {
				loc = fmt.Sprint(*f.Location)
			}
			if f.Suppressed != nil {
				supp = fmt.Sprint(*f.Suppressed)
			}
			f.Location, f.Suppressed = nil, nil
			return fmt.Sprint(f) + loc + supp
		}
		byAll := func(fs []finding.Finding) {
			sort.SliceStable(fs, func(i, j int) bool { return key(fs[i]) < key(fs[j]) })
		}
		byAll(got)
		byAll(want)
		if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("stream gives %d findings, Scan %d", len(got), len(want))
		}
	})
}
