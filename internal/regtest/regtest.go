// Package regtest serves test registries for the tests of the policy front
// ends (the gate and the webhook): real go-containerregistry registries
// with images signed by real keys, like net/http/httptest.
package regtest

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// SignedRegistry is go-containerregistry's registry over TLS, behind
// net/http's ServeMux (which, like distribution's router, redirects
// /v2/other/../t/app/... to /v2/t/app/...), listening on addr
// ("127.0.0.1:0" for any port; the test is skipped when addr cannot be
// had). It holds t/app:latest signed by k2 only and t/app:good signed by
// k1 and k2; both keys' password is "pw".
func SignedRegistry(t *testing.T, addr string, k1, k2 []byte) (host string, app, good v1.Hash) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = l
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "https://")
	ctx := context.Background()
	o := sign.Options{Remote: image.RemoteOptions(ctx, image.Options{Insecure: true})}
	push := func(tag string, keys ...[]byte) v1.Hash {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		r, err := image.ParseReference(host+"/t/app:"+tag, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img, o.Remote...); err != nil {
			t.Fatal(err)
		}
		tg, err := sign.Resolve(ctx, r.String(), o)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			s, err := key.ParsePrivate(k, func(bool) ([]byte, error) { return []byte("pw"), nil })
			if err != nil {
				t.Fatal(err)
			}
			if err := sign.SignImage(ctx, tg, s, sign.SignOptions{Options: o}); err != nil {
				t.Fatal(err)
			}
		}
		return tg.Descriptor.Digest
	}
	return host, push("latest", k2), push("good", k1, k2)
}
