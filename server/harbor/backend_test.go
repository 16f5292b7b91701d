package harbor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/uuid"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server/harbor"
)

// pipelineBackend is a real Backend for the tests: each scan runs the
// application layer's pipeline.Run in a goroutine against the registry
// and with the credentials the request names, and the result is kept in
// memory. (The server's backend is its queue and store.) hold, when set,
// keeps scans from starting until it is closed, so that a test sees the
// pending state.
type pipelineBackend struct {
	matcher *pipeline.Matcher
	tmp     string
	hold    chan struct{}

	mu    sync.Mutex
	scans map[string]*harbor.Result
	wg    sync.WaitGroup
}

func (b *pipelineBackend) Submit(ctx context.Context, req harbor.ScanRequest) (string, error) {
	ref, plain, err := req.Reference()
	if err != nil {
		return "", err
	}
	auth, err := req.Registry.Auth()
	if err != nil {
		return "", err
	}
	id := uuid.NewString()
	b.mu.Lock()
	b.scans[id] = &harbor.Result{Pending: true, Artifact: req.Artifact}
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if b.hold != nil {
			<-b.hold
		}
		out := &harbor.Result{Artifact: req.Artifact}
		res, err := pipeline.Run(context.Background(), ref, pipeline.Options{TempDir: b.tmp, Auth: auth, Insecure: plain, Matcher: b.matcher})
		out.ScannedAt = time.Now()
		if err != nil {
			out.Err = err
		} else {
			res.Inventory.Sort()
			out.Inventory, out.Findings, out.DB = res.Inventory, res.Findings, res.DB
		}
		b.mu.Lock()
		b.scans[id] = out
		b.mu.Unlock()
	}()
	return id, nil
}

// put keeps a finished scan, as the server's store holds one, and returns
// its id.
func (b *pipelineBackend) put(r *harbor.Result) string {
	id := uuid.NewString()
	b.mu.Lock()
	b.scans[id] = r
	b.mu.Unlock()
	return id
}

func (b *pipelineBackend) Result(ctx context.Context, id string) (*harbor.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.scans[id]
	if !ok {
		return nil, harbor.ErrNotFound
	}
	return r, nil
}

// dbDir holds the test database; TestMain makes and removes it.
var dbDir string

func TestMain(m *testing.M) {
	var err error
	if dbDir, err = os.MkdirTemp("", "bulkhead-harbor-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if matcher != nil {
		matcher.Close()
	}
	os.RemoveAll(dbDir)
	os.Exit(code)
}

var (
	matcherOnce sync.Once
	matcher     *pipeline.Matcher
	matcherErr  error
)

// sharedMatcher builds the vulnerability database from the bundled
// snapshot once for the package's tests.
func sharedMatcher(t *testing.T) *pipeline.Matcher {
	t.Helper()
	matcherOnce.Do(func() {
		matcher, matcherErr = pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: filepath.Join(dbDir, "osv.db")})
	})
	if matcherErr != nil {
		t.Fatal(matcherErr)
	}
	return matcher
}

func newBackend(t *testing.T) *pipelineBackend {
	b := &pipelineBackend{matcher: sharedMatcher(t), tmp: t.TempDir(), scans: map[string]*harbor.Result{}}
	t.Cleanup(b.wg.Wait)
	return b
}

// tokenRegistry is go-containerregistry's registry behind the token
// authentication Harbor's registry uses: /v2/ answers 401 with a Bearer
// challenge whose realm, given the robot account's Basic credentials,
// hands out the token the registry then accepts. It counts the requests
// that reached the registry with the token and the ones refused.
type tokenRegistry struct {
	url, host  string
	user, pass string
	token      string
	served     atomic.Int64
	refused    atomic.Int64
	seenAuth   sync.Map // every Authorization header received
}

func newTokenRegistry(t *testing.T) *tokenRegistry {
	t.Helper()
	tr := &tokenRegistry{user: "robot$harbor-scanner", pass: "s3cr3t-robot-pass-" + uuid.NewString(), token: "jwt-" + uuid.NewString()}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			tr.seenAuth.Store(a, true)
		}
		if r.URL.Path == "/service/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != tr.user || p != tr.pass {
				tr.refused.Add(1)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"token": tr.token, "access_token": tr.token})
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+tr.token {
			tr.refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+tr.url+`/service/token",service="harbor-registry"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		tr.served.Add(1)
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.url = srv.URL
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// pushDemo pushes the demo image (real Alpine, Python, npm and Go
// packages with published advisories) as repo:tag and returns its digest.
func (tr *tokenRegistry) pushDemo(t *testing.T, repo, tag string) v1.Hash {
	t.Helper()
	img, err := image.Open(context.Background(), "oci-archive:../../testdata/images/alpine-demo.oci.tar", image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	r, err := name.ParseReference(tr.host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img.Image, remote.WithAuth(&authn.Basic{Username: tr.user, Password: tr.pass})); err != nil {
		t.Fatal(err)
	}
	dg, err := img.Image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dg
}
