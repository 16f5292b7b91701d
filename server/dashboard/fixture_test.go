package dashboard

// The test fleet: real scans (pipeline.Run with the vulnerability, secret
// and image-audit scanners, against a database built from the bundled OSV
// snapshot) of the demo image and of a second version built from it in the
// test, stored with sightings, a re-evaluation and events in an SQLite
// store, served by httptest.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-sec/bulkhead/audit"
	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/internal/browsertest"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/secret/imagescan"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

var tmpRoot string

func TestMain(m *testing.M) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "bulkhead-dashboard-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	browsertest.Close()
	if fx != nil {
		fx.close()
	}
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// fixture is the loaded dashboard.
type fixture struct {
	st          *sqlstore.Store
	srv         *httptest.Server
	dash        *Dashboard
	a, b        *store.Scan // the demo image and its second version
	idA, idB    int64
	tokens      map[Role]string
	mu          sync.Mutex
	rescans     []string
	ignoredID   string
	fixedByReev finding.Finding
}

func (f *fixture) close() {
	f.srv.Close()
	f.st.Close()
}

var (
	fxOnce sync.Once
	fx     *fixture
	fxErr  error
)

// theFixture builds the fleet once per test binary.
func theFixture(t *testing.T) *fixture {
	t.Helper()
	fxOnce.Do(func() { fx, fxErr = build() })
	if fxErr != nil {
		t.Fatal(fxErr)
	}
	return fx
}

// ignoredID is suppressed by the fixture's ignore file.
const ignoredID = "GHSA-29mw-wpgm-hmr9"

// fleetNow is the fixture's "now": events and changes are placed before it.
var fleetNow = time.Now().UTC().Truncate(time.Second)

func build() (*fixture, error) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(tmpRoot, "dash.db"), sqlstore.Options{})
	if err != nil {
		return nil, err
	}
	f := &fixture{st: st, tokens: map[Role]string{}, ignoredID: ignoredID}
	ignore := filepath.Join(tmpRoot, ".bulkheadignore")
	if err := os.WriteFile(ignore, []byte(ignoredID+"\n"), 0o644); err != nil {
		return nil, err
	}
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: filepath.Join(tmpRoot, "osv.db"), IgnoreFile: ignore})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	demo, err := filepath.Abs("../../testdata/images/alpine-demo.oci.tar")
	if err != nil {
		return nil, err
	}
	// The base catalog: the demo's first layer as a base image of its own,
	// and scratch.
	v2, firstLayer, err := secondVersion(demo)
	if err != nil {
		return nil, err
	}
	cat := &base.Catalog{Entries: []base.Entry{base.Profile(base.Scratch, &inventory.Inventory{Target: inventory.Target{Name: base.Scratch, Source: "scratch"}}, nil, nil, &base.VulnCounts{DBSource: "osv"})}}
	res, err := pipeline.Run(ctx, "oci-layout:"+firstLayer, pipeline.Options{TempDir: tmpRoot, Matcher: m})
	if err != nil {
		return nil, err
	}
	cat.Entries = append(cat.Entries, base.Profile("registry.example/base/alpine:3", res.Inventory, res.Tree, match.Active(res.Findings), &base.VulnCounts{DBSource: "osv"}))
	scanOne := func(ref string) (*store.Scan, error) {
		res, err := pipeline.Run(ctx, ref, pipeline.Options{TempDir: tmpRoot, Matcher: m,
			Scanners: []scan.Scanner{imagescan.New(secret.Default()), audit.New()}})
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", ref, err)
		}
		// The base and its recommendation, as the server makes them
		// (server.Config.BaseCatalog).
		var diffIDs []string
		for _, d := range res.Image.Config().RootFS.DiffIDs {
			diffIDs = append(diffIDs, d.String())
		}
		det := base.Detect(cat, diffIDs, res.Annotations)
		bi := &store.BaseImage{Detection: det}
		if bi.Recommendation, err = base.Recommend(ctx, cat, det, res.Inventory, m.Active); err != nil {
			return nil, fmt.Errorf("recommend a base for %s: %w", ref, err)
		}
		return &store.Scan{Digest: res.Inventory.Target.Digest, Repository: "registry.example/shop/web", Source: "registry",
			DB: res.DB, Inventory: res.Inventory, Findings: res.Findings, Provenance: &store.Provenance{Base: bi}}, nil
	}
	if f.a, err = scanOne("oci-archive:" + demo); err != nil {
		return nil, err
	}
	if f.b, err = scanOne("oci-layout:" + v2); err != nil {
		return nil, err
	}
	f.a.ScannedAt, f.b.ScannedAt = fleetNow.Add(-3*24*time.Hour), fleetNow.Add(-2*time.Hour)
	// Signature statuses (the server's signature check is tested in
	// package server against a registry): 1.0 verified under the release
	// policy, 1.1 not signed.
	f.a.Provenance.Signature = &store.SignatureStatus{Status: store.SignatureVerified, CheckedBy: store.CheckedByServer, CheckedAt: f.a.ScannedAt,
		Rules: []store.SignatureRule{{Policy: "release", Key: "/etc/bulkhead/keys/release.pub", TransparencyLog: "ignore",
			Signatures:   []store.SignatureRef{{Layout: "legacy", Where: "sha256-" + strings.TrimPrefix(f.a.Digest, "sha256:") + ".sig layer 0"}},
			Attestations: []store.SignatureRef{{Layout: "bundle", Where: "sha256:0123", PredicateType: "https://cyclonedx.org/bom"}}}}}
	f.b.Provenance.Signature = &store.SignatureStatus{Status: store.SignatureFailed, CheckedBy: store.CheckedByServer, CheckedAt: f.b.ScannedAt,
		Reason: "policy release: not signed by any of its keys"}
	if f.idA, err = st.PutScan(ctx, f.a, &store.Sighting{Reference: "registry.example/shop/web:1.0", Kind: "registry", SeenAt: f.a.ScannedAt}); err != nil {
		return nil, err
	}
	// The fleet's trend: a snapshot after each stored scan and after the
	// re-evaluation, as the server takes them.
	if err := st.SnapshotFleet(ctx, f.a.ScannedAt); err != nil {
		return nil, err
	}
	if f.idB, err = st.PutScan(ctx, f.b, &store.Sighting{Reference: "registry.example/shop/web:1.1", Kind: "registry", SeenAt: f.b.ScannedAt}); err != nil {
		return nil, err
	}
	f.a.ID, f.b.ID = f.idA, f.idB
	for _, s := range []store.Sighting{
		{Digest: f.a.Digest, Reference: "registry.example/shop/web:1.0", Kind: "cluster", Cluster: "prod", Namespace: "shop", Workload: "Deployment/web"},
		{Digest: f.a.Digest, Reference: "registry.example/shop/web:1.0", Kind: "cluster", Cluster: "prod", Namespace: "shop", Workload: "Deployment/worker"},
		{Digest: f.b.Digest, Reference: "registry.example/shop/web:1.1", Kind: "cluster", Cluster: "staging", Namespace: "shop", Workload: "Deployment/web"},
	} {
		s.SeenAt = fleetNow.Add(-time.Hour)
		if err := st.AddSighting(ctx, &s); err != nil {
			return nil, err
		}
	}
	// A re-evaluation an hour ago: the image-2 minimist advisory was
	// withdrawn from image A (it disappeared).
	var kept []finding.Finding
	for _, x := range f.a.Findings {
		if x.ID == "GHSA-xvch-5gv4-984h" && f.fixedByReev.ID == "" {
			f.fixedByReev = x
			continue
		}
		kept = append(kept, x)
	}
	if f.fixedByReev.ID == "" {
		return nil, errors.New("the demo image has no GHSA-xvch-5gv4-984h (minimist): did the OSV snapshot change?")
	}
	if err := st.Reevaluated(ctx, f.idA, f.a.DB, kept, []store.Change{{Kind: "disappeared", Finding: f.fixedByReev, At: fleetNow.Add(-time.Hour), DBVersion: "test"}}); err != nil {
		return nil, err
	}
	f.a.Findings = kept
	if err := st.SnapshotFleet(ctx, fleetNow.Add(-time.Hour)); err != nil {
		return nil, err
	}
	for i, e := range []store.Event{
		{Kind: "runtime", Digest: f.a.Digest, Priority: "Critical", Rule: "Terminal shell in container", Container: "web", Namespace: "shop",
			Output: "A shell was spawned in a container with an attached terminal (user=root shell=sh)"},
		{Kind: "runtime", Digest: f.a.Digest, Priority: "Warning", Rule: "Read sensitive file untrusted", Container: "worker", Namespace: "shop",
			Output: "Sensitive file opened for reading by non-trusted program (file=/etc/shadow)"},
		{Kind: "runtime", Digest: f.b.Digest, Priority: "Critical", Rule: "Terminal shell in container", Container: "web", Namespace: "shop",
			Output: "A shell was spawned in a container with an attached terminal (user=app shell=bash)"},
		{Kind: "gate", Digest: f.a.Digest, Priority: "deny", Rule: "no-critical", Output: "1 CRITICAL vulnerability: GHSA-xvch-5gv4-984h"},
		{Kind: "admission", Digest: f.b.Digest, Priority: "allow", Output: "passed 2 rules"},
	} {
		e.Body, e.At = []byte("{}"), fleetNow.Add(time.Duration(i-10)*time.Minute)
		if _, err := st.PutEvent(ctx, &e); err != nil {
			return nil, err
		}
	}
	for _, r := range []Role{RoleRead, RoleScan} {
		tok := fmt.Sprintf("bkh_test-%s-token-%d", r, time.Now().UnixNano())
		h := sha256.Sum256([]byte(tok))
		if _, err := st.PutToken(ctx, &store.Token{Name: "dash-" + r.String(), Role: r.String(), Hash: h[:]}); err != nil {
			return nil, err
		}
		f.tokens[r] = tok
	}
	d, err := New(st, Options{Auth: storeAuth(st), Now: func() time.Time { return fleetNow }, PageSize: 20, Version: "test",
		Rescan: func(ctx context.Context, repo, digest string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.rescans = append(f.rescans, repo+"@"+digest)
			return nil
		}})
	if err != nil {
		return nil, err
	}
	f.dash = d
	mux := http.NewServeMux()
	mux.Handle(Prefix, d)
	f.srv = httptest.NewServer(mux)
	return f, nil
}

// storeAuth checks tokens against the store, as the server does (SHA-256
// of the token).
func storeAuth(st store.Store) Auth {
	return TokenAuth(func(ctx context.Context, token string) (Role, error) {
		h := sha256.Sum256([]byte(token))
		t, err := st.TokenByHash(ctx, h[:])
		if errors.Is(err, store.ErrNotFound) {
			return RoleNone, nil
		}
		if err != nil {
			return RoleNone, err
		}
		switch t.Role {
		case "read":
			return RoleRead, nil
		case "scan":
			return RoleScan, nil
		case "admin":
			return RoleAdmin, nil
		}
		return RoleNone, nil
	})
}

// secondVersion builds version 1.1 of the demo image: one more layer that
// upgrades lodash (fixing its advisories) and leaves a GitHub token in an
// .env file. It is written as an OCI layout directory.
func secondVersion(demo string) (v2, firstLayer string, err error) {
	// The archive is an OCI layout in a tar: unpack it and read it with
	// go-containerregistry's layout package.
	src := filepath.Join(tmpRoot, "demo-1.0")
	if err := untar(demo, src); err != nil {
		return "", "", err
	}
	lp, err := layout.FromPath(src)
	if err != nil {
		return "", "", err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return "", "", err
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) == 0 {
		return "", "", fmt.Errorf("demo index: %v", err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return "", "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, fl := range []struct{ name, body string }{
		{"app/node_modules/lodash/package.json", `{"name":"lodash","version":"4.17.21","license":"MIT"}`},
		{"app/config/.env", "GITHUB_TOKEN=ghp_R8xK2mQ7vN4pL9wT3zY6bH1cJ5fD0gS8aE2u\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: fl.name, Mode: 0o644, Size: int64(len(fl.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			return "", "", err
		}
		tw.Write([]byte(fl.body))
	}
	tw.Close()
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return "", "", err
	}
	next, err := mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "COPY app/ /app/ # 1.1: lodash 4.17.21, config", Created: v1.Time{Time: time.Unix(1700000000, 0)}}})
	if err != nil {
		return "", "", err
	}
	// The base: the demo's first layer alone.
	layers, err := img.Layers()
	if err != nil || len(layers) < 2 {
		return "", "", fmt.Errorf("demo layers: %d, %v", len(layers), err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", "", err
	}
	baseImg, err := mutate.AppendLayers(empty.Image, layers[0])
	if err != nil {
		return "", "", err
	}
	bcf, err := baseImg.ConfigFile()
	if err != nil {
		return "", "", err
	}
	bcf = bcf.DeepCopy()
	bcf.Architecture, bcf.OS = cf.Architecture, cf.OS
	if baseImg, err = mutate.ConfigFile(baseImg, bcf); err != nil {
		return "", "", err
	}
	write := func(dir string, img v1.Image) error {
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			return err
		}
		return p.AppendImage(img)
	}
	v2, firstLayer = filepath.Join(tmpRoot, "demo-1.1"), filepath.Join(tmpRoot, "demo-base")
	if err := write(v2, next); err != nil {
		return "", "", err
	}
	if err := write(firstLayer, baseImg); err != nil {
		return "", "", err
	}
	return v2, firstLayer, nil
}

func untar(file, dir string) error {
	fh, err := os.Open(file)
	if err != nil {
		return err
	}
	defer fh.Close()
	tr := tar.NewReader(fh)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.Create(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		}
	}
}
