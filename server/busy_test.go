package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

// TestUploadBusyDatabase: while another process holds the SQLite
// database's write lock past the busy timeout, an upload is answered 503
// with Retry-After and a reason (not 500), and nothing is stored; the
// client sends it again after Retry-After and succeeds once the lock is
// released; a client with retries off reports the 503.
func TestUploadBusyDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "server.db")
	st, err := sqlstore.Open(ctx, path, sqlstore.Options{BusyTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnvStore(t, st, nil)
	doc := bulkheadDoc(t, inv(digestA, "registry.example/app:1", "1.0.1", "0.3.0"))

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	resp, body := e.do(server.RoleScan, http.MethodPut, "/api/v1/inventory", server.MediaBulkhead, doc)
	var eb server.ErrorBody
	json.Unmarshal(body, &eb)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(eb.Error, "busy") {
		t.Fatalf("upload under another writer's lock: %d, Retry-After %q, %q; want 503, 1 and a reason", resp.StatusCode, resp.Header.Get("Retry-After"), eb.Error)
	}
	noRetry, err := client.New(e.ts.URL, client.Options{Token: e.tokens[server.RoleScan], Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noRetry.Upload(ctx, server.MediaBulkhead, doc, client.UploadOptions{}); !client.IsStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("upload without retries = %v, want 503", err)
	}
	if imgs, err := st.Images(ctx, store.ImageFilter{}); err != nil || len(imgs) != 0 {
		t.Fatalf("refused uploads stored %d images (%v)", len(imgs), err)
	}

	refused := func() int { return strings.Count(e.logs.String(), "database busy") }
	before := refused()
	var got *client.Report
	var uerr error
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Go(func() {
		got, uerr = e.client(server.RoleScan).Upload(ctx, server.MediaBulkhead, doc, client.UploadOptions{})
	})
	deadline := time.Now().Add(10 * time.Second)
	for refused() == before {
		if time.Now().After(deadline) {
			t.Fatal("the retrying upload was never refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := lock.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if uerr != nil {
		t.Fatalf("upload retried after the lock was released: %v", uerr)
	}
	if d := time.Since(t0); d < time.Second {
		t.Errorf("the client sent the upload again after %s, before Retry-After (1 s)", d)
	}
	if len(vulnIDs(got.Findings)) == 0 || got.ScanID == 0 {
		t.Fatalf("retried upload: scan %d, findings %v", got.ScanID, got.Findings)
	}
	if imgs, err := st.Images(ctx, store.ImageFilter{}); err != nil || len(imgs) != 1 {
		t.Fatalf("%d images after the retried upload (%v), want 1", len(imgs), err)
	}
}
