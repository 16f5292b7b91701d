package servere2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

// uploadInventory is upload i of client c: an Alpine base and npm, PyPI
// and Go packages, different in every upload (names and versions), so
// that a lost or mixed-up write shows.
func uploadInventory(c, i, size int) *inventory.Inventory {
	inv := &inventory.Inventory{
		Target: inventory.Target{Name: fmt.Sprintf("registry.example/durability/c%d:%d", c, i), Source: "registry",
			Digest: fmt.Sprintf("sha256:%032x%032x", c+1, i+1)},
		OS: &inventory.OS{ID: "alpine", VersionID: "3.18.4"},
	}
	types := []string{inventory.TypeAPK, inventory.TypeNPM, inventory.TypePyPI, inventory.TypeGo}
	for j := range size {
		t := types[j%len(types)]
		inv.Packages = append(inv.Packages, inventory.Package{Type: t, Name: fmt.Sprintf("pkg-%s-%d", t, j),
			Version: fmt.Sprintf("1.%d.%d", c, i), Maintainer: fmt.Sprintf("client %d upload %d", c, i)})
	}
	inv.Sort()
	return inv
}

type ack struct {
	id  int64
	inv *inventory.Inventory
}

// TestKillDuringIngest is the durability acceptance: concurrent clients
// upload inventories to the real server, which is killed with SIGKILL in
// the middle; restarted on the same database, it has every upload it
// acknowledged (201), equal to what was sent, and the database passes
// the store's integrity check. On SQLite and PostgreSQL.
func TestKillDuringIngest(t *testing.T) {
	const clients, size = 8, 60
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			dsn := dsnFor(t, backend)
			dbPath := testVulnDB(t)
			p := startServer(t, dsn, dbPath, "", nil)
			var (
				mu     sync.Mutex
				acks   []ack
				failed atomic.Int64
				wg     sync.WaitGroup
			)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for c := range clients {
				cl, err := client.New(p.url, client.Options{Token: adminToken, Timeout: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						inv := uploadInventory(c, i, size)
						rep, err := cl.UploadResult(ctx, &report.Result{Inventory: inv}, client.UploadOptions{Digest: inv.Target.Digest, Reference: inv.Target.Name})
						if err != nil {
							failed.Add(1) // not acknowledged: the server is gone
							if errors.Is(err, context.Canceled) {
								return
							}
							time.Sleep(20 * time.Millisecond)
							continue
						}
						mu.Lock()
						acks = append(acks, ack{rep.ScanID, inv})
						mu.Unlock()
					}
				})
			}
			// Kill it once uploads are flowing.
			waitFor(t, "40 acknowledged uploads", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(acks) >= 40
			})
			p.kill()
			time.Sleep(300 * time.Millisecond) // the clients see it gone
			cancel()
			wg.Wait()
			mu.Lock()
			n := len(acks)
			mu.Unlock()
			t.Logf("%d uploads acknowledged before SIGKILL, %d failed after", n, failed.Load())
			if failed.Load() == 0 {
				t.Fatal("no upload failed: the kill did not happen during ingest")
			}

			p2 := startServer(t, dsn, dbPath, p.addr, nil)
			cl, err := client.New(p2.url, client.Options{Token: adminToken})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range acks {
				got, err := cl.Scan(context.Background(), a.id)
				if err != nil {
					t.Errorf("acknowledged upload %d (%s) lost: %v", a.id, a.inv.Target.Digest, err)
					continue
				}
				if g := got.Result.Inventory; g.Target.Digest != a.inv.Target.Digest || !samePackages(g.Packages, a.inv.Packages) {
					t.Errorf("scan %d: stored %s with %d packages, uploaded %s with %d", a.id, g.Target.Digest, len(g.Packages), a.inv.Target.Digest, len(a.inv.Packages))
				}
			}
			p2.stop()
			st, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Verify(context.Background()); err != nil {
				t.Errorf("integrity check after SIGKILL: %v", err)
			}
		})
	}
}

func samePackages(a, b []inventory.Package) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(p inventory.Package) string { return p.Type + "|" + p.Name + "|" + p.Version + "|" + p.Maintainer }
	seen := map[string]int{}
	for _, p := range a {
		seen[key(p)]++
	}
	for _, p := range b {
		if seen[key(p)]--; seen[key(p)] < 0 {
			return false
		}
	}
	return true
}
