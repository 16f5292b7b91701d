package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// TestScanProvenance: an image the server pulls gets its base detected in
// the server's base catalog with a recommendation, and its signature
// verified under the signature policy; both are stored with the scan and
// answered by GET /api/v1/scans/{id}/provenance (validated against
// openapi.json). An unsigned image fails the policy, an image no rule
// covers is no-policy.
func TestScanProvenance(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		reg := newRegistry(t)
		// Two bases: "fat" holds a vulnerable Django (UNKNOWN severity in
		// the test records), "slim" holds nothing.
		osRelease := map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"}
		fatFiles := map[string]string{"usr/lib/python3/dist-packages/Django-1.0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: Django\nVersion: 1.0.1\n"}
		for k, v := range osRelease {
			fatFiles[k] = v
		}
		fat := imageOf(t, tarLayer(t, fatFiles))
		slim := imageOf(t, tarLayer(t, osRelease))
		app := func(marker string) v1.Image {
			img, err := mutate.AppendLayers(fat, tarLayer(t, map[string]string{"app/" + marker: marker}))
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
		fatRef, slimRef := reg.write(t, "bases/fat:1", fat), reg.write(t, "bases/slim:1", slim)
		signedRef, unsignedRef, otherRef := reg.write(t, "release/app:1", app("one")), reg.write(t, "release/app:2", app("two")), reg.write(t, "dev/app:1", app("three"))

		m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: testDB(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		cat := &base.Catalog{}
		for _, ref := range []string{fatRef, slimRef} {
			res, err := pipeline.Run(ctx, ref, pipeline.Options{Insecure: true, Matcher: m, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			cat.Entries = append(cat.Entries, base.Profile(ref, res.Inventory, res.Tree, match.Active(res.Findings), &base.VulnCounts{DBSource: "test"}))
		}

		// Sign release/app:1 with the release key.
		dir := t.TempDir()
		priv, pub, err := key.Generate([]byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "release.pub"), pub, 0o644)
		signer, err := key.ParsePrivate(priv, func(bool) ([]byte, error) { return []byte("pw"), nil })
		if err != nil {
			t.Fatal(err)
		}
		so := sign.Options{Remote: image.RemoteOptions(ctx, image.Options{Insecure: true}), Name: []name.Option{name.Insecure}}
		tg, err := sign.Resolve(ctx, signedRef, so)
		if err != nil {
			t.Fatal(err)
		}
		if err := sign.SignImage(ctx, tg, signer, sign.SignOptions{Options: so}); err != nil {
			t.Fatal(err)
		}
		pol, err := sign.ParsePolicy([]byte("policies:\n  - name: release\n    images: [\""+reg.host+"/release/**\"]\n    keys: [release.pub]\n    transparencyLog: ignore\n"), dir)
		if err != nil {
			t.Fatal(err)
		}

		e := newEnv(t, backend, func(c *server.Config) {
			c.Insecure, c.BaseCatalog, c.SignaturePolicy, c.SnapshotInterval = true, cat, pol, 10*time.Millisecond
		})
		c := e.client(server.RoleScan)
		prov := func(ref string) (*store.Provenance, int64) {
			t.Helper()
			j, err := c.Submit(ctx, ref, "")
			if err != nil {
				t.Fatal(err)
			}
			if j, err = c.Wait(ctx, j.ID, 50*time.Millisecond); err != nil || j.ScanID == 0 {
				t.Fatalf("scan %s: %+v %v", ref, j, err)
			}
			resp, body := e.do(server.RoleRead, "GET", "/api/v1/scans/"+strconv.FormatInt(j.ScanID, 10)+"/provenance", "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("provenance of %s: %d %s", ref, resp.StatusCode, body)
			}
			var p store.Provenance
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			return &p, j.ScanID
		}

		p, _ := prov(signedRef)
		if p.Base == nil || p.Base.Detection.BaseRef != fatRef || p.Base.Detection.Method != base.MethodLayers || p.Base.Detection.Layers != 1 || p.Base.Detection.Of != 2 {
			t.Fatalf("base of %s: %+v", signedRef, p.Base)
		}
		rec := p.Base.Recommendation
		if rec == nil || len(rec.Candidates) == 0 || rec.Candidates[0].Ref != slimRef || rec.Candidates[0].VulnsDelta["UNKNOWN"] >= 0 || rec.Current.Vulns["UNKNOWN"] == 0 {
			t.Errorf("recommendation for %s: %+v (want %s, with fewer vulnerabilities)", signedRef, rec, slimRef)
		}
		if s := p.Signature; s == nil || s.Status != store.SignatureVerified || s.CheckedBy != store.CheckedByServer || len(s.Rules) != 1 ||
			s.Rules[0].Policy != "release" || !strings.HasSuffix(s.Rules[0].Key, "/release.pub") || len(s.Rules[0].Signatures) == 0 || s.Rules[0].TransparencyLog != "ignore" {
			t.Errorf("signature of %s: %+v", signedRef, p.Signature)
		}
		p, _ = prov(unsignedRef)
		if s := p.Signature; s == nil || s.Status != store.SignatureFailed || !strings.Contains(s.Reason, "not signed") {
			t.Errorf("signature of the unsigned %s: %+v", unsignedRef, p.Signature)
		}
		p, _ = prov(otherRef)
		if s := p.Signature; s == nil || s.Status != store.SignatureNoPolicy {
			t.Errorf("signature of %s (no rule): %+v", otherRef, p.Signature)
		}

		// An upload (bulkhead image --server: scanned where it runs, the
		// inventory sent without provenance) gets the base the server
		// detects from the inventory's layers, and no signature status.
		localRef := reg.write(t, "ci/app:1", app("four"))
		local, err := pipeline.Run(ctx, localRef, pipeline.Options{Insecure: true, Matcher: m, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		up, err := c.UploadResult(ctx, local.Result, client.UploadOptions{Reference: localRef})
		if err != nil {
			t.Fatal(err)
		}
		resp, body := e.do(server.RoleRead, "GET", "/api/v1/scans/"+strconv.FormatInt(up.ScanID, 10)+"/provenance", "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("provenance of the upload: %d %s", resp.StatusCode, body)
		}
		var pu store.Provenance
		if err := json.Unmarshal(body, &pu); err != nil {
			t.Fatal(err)
		}
		if pu.Base == nil || pu.Base.Detection.BaseRef != fatRef || pu.Base.Detection.Method != base.MethodLayers || pu.Base.Recommendation == nil ||
			len(pu.Base.Recommendation.Candidates) == 0 || pu.Base.Recommendation.Candidates[0].Ref != slimRef || pu.Signature != nil {
			t.Errorf("provenance of the upload of %s: base %+v, signature %+v", localRef, pu.Base, pu.Signature)
		}

		// The fleet's trend was snapshotted after the scans.
		deadline := time.Now().Add(10 * time.Second)
		for {
			pts, err := e.st.FleetTrend(context.Background(), time.Now().Add(-24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(pts) == 1 && pts[0].Images == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot of the 4 images: %+v", pts)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestUploadProvenance: a bulkhead report may carry a provenance object; it
// is stored as the uploader's word (checkedBy upload, whatever it says),
// and a bad status is refused with 400. A scan without provenance answers
// 404 with what to do.
func TestUploadProvenance(t *testing.T) {
	e := newEnv(t, backends[0], nil)
	doc := func(status, by string) []byte {
		return []byte(`{"schemaVersion":1,"target":{"name":"registry.example/ci/app:7","digest":"sha256:` + strings.Repeat("ab", 32) + `"},
			"packages":[{"name":"Django","version":"1.0.1","type":"pypi"}],
			"provenance":{"base":{"detection":{"method":"annotation","base":"debian:12","reason":"the image's base.name annotation names debian:12"}},
			"signature":{"status":"` + status + `","checkedBy":"` + by + `","checkedAt":"2026-12-01T10:00:00Z","rules":[{"policy":"ci","key":"ci.pub","signatures":[{"layout":"bundle","where":"sha256:1"}]}]}}}`)
	}
	resp, body := e.do(server.RoleScan, "POST", "/api/v1/inventory", server.MediaBulkhead, doc("verified", "server"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	id := resp.Header.Get(server.HeaderScanID)
	resp, body = e.do(server.RoleRead, "GET", "/api/v1/scans/"+id+"/provenance", "", nil)
	var p store.Provenance
	if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
		t.Fatalf("provenance: %d %s", resp.StatusCode, body)
	}
	if p.Signature == nil || p.Signature.Status != store.SignatureVerified || p.Signature.CheckedBy != store.CheckedByUpload || p.Base == nil || p.Base.Detection.BaseRef != "debian:12" {
		t.Errorf("uploaded provenance: %+v", p)
	}
	resp, body = e.do(server.RoleScan, "POST", "/api/v1/inventory", server.MediaBulkhead, doc("trust-me", "upload"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "trust-me") {
		t.Errorf("a bad signature status: %d %s", resp.StatusCode, body)
	}
	// Without provenance: 404 saying why.
	resp, body = e.do(server.RoleScan, "POST", "/api/v1/inventory", server.MediaBulkhead,
		[]byte(`{"schemaVersion":1,"target":{"name":"registry.example/ci/app:8","digest":"sha256:`+strings.Repeat("cd", 32)+`"},"packages":[]}`))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(server.RoleRead, "GET", "/api/v1/scans/"+resp.Header.Get(server.HeaderScanID)+"/provenance", "", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "--base-catalog") {
		t.Errorf("no provenance: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(server.RoleRead, "GET", "/api/v1/scans/999999/provenance", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no such scan: %d", resp.StatusCode)
	}
}

func imageOf(t *testing.T, l v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// write pushes img as repo:tag and returns the reference.
func (r *testRegistry) write(t *testing.T, repoTag string, img v1.Image) string {
	t.Helper()
	tag, err := name.ParseReference(r.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	return tag.Name()
}
