package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/internal/pgtest"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(durabilityChild())
	}
	os.Exit(pgtest.Main(m))
}

// backend opens a fresh store of one dialect.
type backend struct {
	name string
	dsn  func(t testing.TB) string
}

var backends = []backend{
	{SQLite, func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "s.db") }},
	{Postgres, pgtest.DSN},
}

// eachDB runs fn against a fresh SQLite and a fresh PostgreSQL store.
func eachDB(t *testing.T, fn func(t *testing.T, s *Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := openT(t, b.dsn(t), Options{})
			fn(t, s)
		})
	}
}

func openT(t testing.TB, dsn string, opt Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func digestOf(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }

// genInventory builds an image inventory of n Debian packages, the way the
// cataloguer reports them (locations, layers, source packages).
func genInventory(seed, n int) *inventory.Inventory {
	layer := &inventory.Layer{Index: 0, Digest: digestOf(seed + 1000000), DiffID: digestOf(seed + 2000000), CreatedBy: "ADD rootfs.tar.xz /"}
	inv := &inventory.Inventory{
		Target: inventory.Target{Name: fmt.Sprintf("registry.example/app-%d:1.%d", seed%7, seed), Source: "registry", Digest: digestOf(seed),
			Layers: []inventory.Layer{*layer}, Size: 31 << 20, Labels: map[string]string{"org.opencontainers.image.version": "1"}},
		OS: &inventory.OS{ID: "debian", VersionID: "12", Codename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)", Source: "/etc/os-release"},
	}
	for j := range n {
		name := fmt.Sprintf("lib%s%d", []string{"ssl", "curl", "xml", "z", "gnutls", "krb"}[j%6], j)
		inv.Packages = append(inv.Packages, inventory.Package{
			Name: name, Version: fmt.Sprintf("%d.%d.%d-%d+deb12u%d", j%5, seed%9, j, 1+j%3, seed%4), Type: inventory.TypeDeb,
			PURL: fmt.Sprintf("pkg:deb/debian/%s@%d.%d?arch=amd64&distro=debian-12", name, j%5, seed%9), Arch: "amd64",
			SourceName: name + "-src", SourceVersion: fmt.Sprintf("%d.%d", j%5, seed%9),
			Licenses: []string{"MIT"}, Maintainer: "Debian Maintainers <pkg@debian.org>", FoundBy: "dpkg",
			Locations: []inventory.Location{{Path: "/var/lib/dpkg/status", Layer: layer}},
		})
	}
	return inv
}

// genFindings builds findings for some of the inventory's packages: one in
// ten is vulnerable, with a CVE ID and a GHSA alias.
func genFindings(seed int, inv *inventory.Inventory) []finding.Finding {
	var out []finding.Finding
	for j := 0; j < len(inv.Packages); j += 10 {
		p := &inv.Packages[j]
		f := finding.Finding{
			ID: fmt.Sprintf("CVE-2026-%05d", j), Kind: finding.KindVulnerability, Aliases: []string{fmt.Sprintf("GHSA-%04d-abcd-efgh", j)},
			Severity: finding.Severity(1 + j/10%4), SeveritySource: "CVSS v3.1 (NVD)",
			CVSS:  []finding.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: 9.8}},
			Title: "heap overflow in " + p.Name, Description: "A crafted input overflows a heap buffer in " + p.Name + ".",
			Target:  "debian 12",
			Package: &finding.Package{Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL, Ecosystem: "Debian:12", Path: "/var/lib/dpkg/status"},
			Status:  finding.StatusNoFixYet, References: []string{"https://security-tracker.debian.org/tracker/CVE-2026-" + fmt.Sprint(j)},
		}
		if j/10%2 == 0 {
			f.FixedVersions, f.Status = []string{p.Version + "+fix1"}, finding.StatusFixed
		}
		out = append(out, f)
	}
	return out
}

func genScan(seed, n int) *store.Scan {
	inv := genInventory(seed, n)
	return &store.Scan{
		Digest: digestOf(seed), Repository: fmt.Sprintf("registry.example/app-%d", seed%7),
		ScannedAt: time.Date(2026, 11, 1, 10, 0, 0, 123456000, time.UTC).Add(time.Duration(seed) * time.Minute),
		Source:    "registry", DB: &report.DBInfo{Source: "osv", UpdatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Records: 1234},
		Inventory: inv, Findings: genFindings(seed, inv),
	}
}

func putT(t testing.TB, s *Store, sc *store.Scan, seen *store.Sighting) int64 {
	t.Helper()
	id, err := s.PutScan(context.Background(), sc, seen)
	if err != nil {
		t.Fatalf("PutScan: %v", err)
	}
	return id
}

// holdWriter runs a write that keeps the group writer inside its
// transaction until the returned release is called, so that the writes
// handed over meanwhile queue (and then go in one batch). release waits
// for the holding write.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	hold, held, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	return func() {
		close(hold)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// waitQueued waits until n writes wait for the group writer.
func waitQueued(t *testing.T, s *Store, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.gw.waiting.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", s.gw.waiting.Load(), n)
		}
	}
}
