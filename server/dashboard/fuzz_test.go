package dashboard

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

// FuzzRequest: any path and query string under /ui/ (they come from the
// network) is answered without a panic, without a server error, and with
// the page's text escaped (no tag the input brought).
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"", "images?worst=critical&after=3", "images?worst=none&q=%25_x&package=pkg", "images?severity=bogus",
		"images/sha256:" + strings.Repeat("be", 32) + "?tab=layers&page=99999999999", "images/x?tab=nope",
		"vulnerabilities?page=-1", "vulnerabilities/CVE-2026-00001?format=csv", "alerts?before=1&rule=<script>",
		"decisions?kind=vote", "changes?since=yesterday", "compare?a=1&b=sha256:zz", "search?q=%3Cimg%20src%3Dx%3E",
		"images?format=json&after=18446744073709551616", "login?next=//evil.example/",
	} {
		f.Add(s)
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"), sqlstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	sc := benchScan(0, 30)
	sc.Digest = "sha256:" + strings.Repeat("be", 32)
	if _, err := st.PutScan(ctx, sc, &store.Sighting{Kind: "cluster", Cluster: "c", Namespace: "n", Workload: "Deployment/w"}); err != nil {
		f.Fatal(err)
	}
	if _, err := st.PutEvent(ctx, &store.Event{Kind: "runtime", Digest: sc.Digest, Rule: "r", Output: "o", Body: []byte("{}")}); err != nil {
		f.Fatal(err)
	}
	token := "bkh_fuzz-token"
	h := sha256.Sum256([]byte(token))
	if _, err := st.PutToken(ctx, &store.Token{Name: "fuzz", Role: "read", Hash: h[:]}); err != nil {
		f.Fatal(err)
	}
	d, err := New(st, Options{Auth: storeAuth(st)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		req, err := http.NewRequest("GET", "http://dash.example"+Prefix+rest, nil)
		if err != nil {
			return // not a URL a client could send
		}
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		d.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("GET %q: %d %.300s", rest, w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), "<script>") || strings.Contains(w.Body.String(), "<img src") {
			t.Fatalf("GET %q: the input's tag is in the page", rest)
		}
		if loc := w.Header().Get("Location"); loc != "" && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//")) {
			t.Fatalf("GET %q: redirect off the site to %q", rest, loc)
		}
	})
}
