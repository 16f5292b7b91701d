package image

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options.Auth is the credential for one open, in place of the keychain's:
// a registry that wants Basic credentials lets the open through with them,
// and refuses it (access denied) with the keychain's anonymous access.
func TestOpenRemoteWithAuth(t *testing.T) {
	t.Setenv("BULKHEAD_USERNAME", "")
	t.Setenv("BULKHEAD_PASSWORD", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "robot" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/t/app:1"
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	basic := &authn.Basic{Username: "robot", Password: "pw"}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(basic)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := OpenRemote(ctx, ref, Options{TempDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("without credentials: %v, want access denied", err)
	}
	got, err := OpenRemote(ctx, ref, Options{TempDir: t.TempDir(), Auth: basic})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if got.Digest != want {
		t.Errorf("digest %s, want %s", got.Digest, want)
	}
}
