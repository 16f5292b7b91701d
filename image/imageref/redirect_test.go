package imageref

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// registryServer is go-containerregistry's in-memory registry behind
// handler h (nil: the registry itself); it holds a random image at t/app:1.
func registryServer(t *testing.T, wrap func(reg http.Handler) http.Handler) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(wrap(reg))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, host+"/t/app:1"), img); err != nil {
		t.Fatal(err)
	}
	return host
}

// TestRedirectDotSegments: the real stack (net/http's client, and a server
// routing through net/http's ServeMux, which like distribution's router
// answers an unclean path with a 301 to the clean one) serves t/app for
// other/../t/app. Unguarded, go-containerregistry follows; guarded, it is
// an error; and the canonicaliser rejects the reference before any request.
func TestRedirectDotSegments(t *testing.T) {
	host := registryServer(t, func(reg http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/", reg)
		return mux
	})
	written := host + "/other/../t/app:1"
	ref, err := name.ParseReference(written)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref); err != nil {
		t.Fatalf("the unguarded stack no longer follows the clean-path redirect (%v); this test shows nothing", err)
	}
	_, err = remote.Head(ref, remote.WithTransport(GuardRedirects(http.DefaultTransport)))
	var re *RedirectError
	if !errors.As(err, &re) || !strings.Contains(re.From, "/v2/other/../t/app/manifests/1") {
		t.Errorf("guarded: %v", err)
	}
	if _, err := Parse(written); err == nil {
		t.Error("canonicaliser accepted a dot segment")
	}
	// The canonical reference still works through the guard.
	ok, err := Parse(host + "/t/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ok.Reference(), remote.WithTransport(GuardRedirects(nil))); err != nil {
		t.Errorf("canonical reference through the guard: %v", err)
	}
}

// TestRedirectOtherRepository: a registry (or a proxy in front of one)
// redirecting manifest requests of other/app to t/app is refused, for
// tags and digests; blob redirects (to storage, here another repository
// path) are still followed, so pulls work.
func TestRedirectOtherRepository(t *testing.T) {
	host := registryServer(t, func(reg http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, from := range []string{"/v2/other/app/manifests/", "/v2/t/app/blobs/", "/v2/up/app/manifests/"} {
				if rest, ok := strings.CutPrefix(r.URL.Path, from); ok {
					to := "/v2/t/app/manifests/" + rest
					switch from {
					case "/v2/t/app/blobs/":
						to = "/v2/storage/blobs/" + rest
					case "/v2/up/app/manifests/":
						to = "http://" + r.Host + "/v2/up/app/../../t/app/manifests/" + rest
					}
					http.Redirect(w, r, to, http.StatusTemporaryRedirect)
					return
				}
			}
			reg.ServeHTTP(w, r)
		})
	})
	guard := remote.WithTransport(GuardRedirects(http.DefaultTransport))
	good, err := remote.Image(mustRef(t, host+"/t/app:1"), guard)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := good.Digest()
	layers, _ := good.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("blob through a redirect: %v", err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("blob through a redirect: %v", err)
		}
		rc.Close()
	}
	for _, written := range []string{host + "/other/app:1", host + "/other/app@" + d.String(), host + "/up/app:1"} {
		ref := mustRef(t, written)
		if _, err := remote.Head(ref); err != nil {
			t.Fatalf("%s: unguarded does not follow (%v); this test shows nothing", written, err)
		}
		for what, call := range map[string]func() error{
			"head":  func() error { _, err := remote.Head(ref, guard); return err },
			"get":   func() error { _, err := remote.Get(ref, guard); return err },
			"image": func() error { _, err := remote.Image(ref, guard); return err },
		} {
			var re *RedirectError
			if err := call(); !errors.As(err, &re) {
				t.Errorf("%s %s: want a RedirectError, got %v", what, written, err)
			}
		}
	}
}

func TestAPIPath(t *testing.T) {
	for p, want := range map[string]string{
		"/v2/t/app/manifests/1":              "t/app manifests",
		"/v2/a/manifests/b/manifests/latest": "a/manifests/b manifests",
		"/v2/t/app/tags/list":                "t/app tags",
		"/v2/t/app/referrers/" + dg:          "t/app referrers",
		"/v2/t/app/blobs/" + dg:              "",
		"/v2/t/app/blobs/uploads/x":          "",
		"/v2/":                               "",
		"/v2/manifests/1":                    "",
	} {
		repo, kind, ok := apiPath(p)
		got := ""
		if ok {
			got = repo + " " + kind
		}
		if got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
