package sign

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-sec/bulkhead/image/imageref"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// TestPolicyRewrittenReferences: the trust policy (bulkhead verify
// --policy) requires key K1 for the repositories under t/ and key K2 for
// everything. t/app is signed by K2 only. Spelt as the registry serves it
// the image fails the t/ rule; spelt otherwise (leading-zero port, upper
// case, a misleading tag next to the digest) it must fail the same rule,
// and a dot segment must be rejected, never matched as another repository.
func TestPolicyRewrittenReferences(t *testing.T) {
	ctx := context.Background()
	// A Go ServeMux in front: like distribution's router, it answers
	// /v2/other/../t/app/... with a redirect to /v2/t/app/....
	mux := http.NewServeMux()
	mux.Handle("/", registry.New(registry.Logger(nopLogger())))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	_, port, _ := net.SplitHostPort(host)
	// A TLS registry, reached as with --insecure (the test certificate
	// does not name localhost).
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.InsecureSkipVerify = true
	o := Options{Remote: []remote.Option{remote.WithTransport(imageref.GuardRedirects(tr))}}
	so := SignOptions{Options: o}
	dir := t.TempDir()
	k1priv, k1pub, _ := key.Generate([]byte("pw"))
	k2priv, k2pub, _ := key.Generate([]byte("pw"))
	os.WriteFile(filepath.Join(dir, "k1.pub"), k1pub, 0o644)
	os.WriteFile(filepath.Join(dir, "k2.pub"), k2pub, 0o644)
	signer := func(priv []byte) *key.Signer {
		s, err := key.ParsePrivate(priv, pass("pw"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The scope is written the way people write it: a differently spelt
	// host in the glob is put in canonical form too.
	pol, err := ParsePolicy([]byte(fmt.Sprintf(`policies:
  - {name: release, images: ["127.0.0.1:%s/t/**", "LocalHost:0%s/t/**"], keys: [k1.pub]}
  - {name: baseline, images: ["**"], keys: [k2.pub]}
`, port, port)), dir)
	if err != nil {
		t.Fatal(err)
	}
	push := func(tag, fixture string) *Target {
		b, _ := os.ReadFile(filepath.Join("testdata", fixture))
		pushTo(t, o, host+"/t/app:"+tag, fixtureImage(t, b))
		tg, err := Resolve(ctx, host+"/t/app:"+tag, o)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	app, ok := push("latest", "demo.vex.json"), push("good", "SPDXJSONExample-v2.3.spdx.json")
	if err := SignImage(ctx, app, signer(k2priv), so); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{k1priv, k2priv} {
		if err := SignImage(ctx, ok, signer(k), so); err != nil {
			t.Fatal(err)
		}
	}
	appD, okD := app.Digest.DigestStr(), ok.Digest.DigestStr()

	for _, tc := range []struct {
		ref, want string // want: "" passes, else a substring of the error
	}{
		{host + "/t/app@" + appD, "policy release: not signed"},
		{"127.0.0.1:0" + port + "/t/app@" + appD, "policy release: not signed"},
		{"127.0.0.1:000" + port + "/t/app:latest", "policy release: not signed"},
		{"LOCALHOST:" + port + "/t/app@" + appD, "policy release: not signed"},
		{"LocalHost:0" + port + "/t/app:latest@" + appD, "policy release: not signed"},
		// The tag names the good image, the digest is app's: the digest
		// is judged.
		{host + "/t/app:good@" + appD, "policy release: not signed"},
		{host + "/other/../t/app@" + appD, `".." segment`},
		{host + "/other/./t/app:1", `"." segment`},
		{host + "/other//t/app:1", "empty segment"},
		{host + "/t/%61pp:1", "percent-encoding"},
		// Signed by both keys: passes however it is spelt.
		{host + "/t/app@" + okD, ""},
		{"127.0.0.1:0" + port + "/t/app:good", ""},
		{"LOCALHOST:" + port + "/t/app:good", ""},
	} {
		tg, err := Resolve(ctx, tc.ref, o)
		if err == nil {
			var res []RuleResult
			res, err = pol.Verify(ctx, tg, VerifyOptions{TLog: TLogInsecureIgnore, Options: o}, nil)
			if err == nil && len(res) != 2 {
				t.Errorf("%s: %d rules applied, want 2 (release and baseline)", tc.ref, len(res))
			}
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.ref, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.ref, err, tc.want)
		}
		if strings.Contains(tc.want, "segment") || strings.Contains(tc.want, "percent") {
			var rej *imageref.Error
			if !errors.As(err, &rej) {
				t.Errorf("%s: want an *imageref.Error, got %T", tc.ref, err)
			}
		}
	}
	// Resolve names the canonical repository and the digest, not the tag.
	tg, err := Resolve(ctx, "LocalHost:0"+port+"/t/app:good@"+appD, o)
	if err != nil {
		t.Fatal(err)
	}
	if want := "localhost:" + port + "/t/app@" + appD; tg.Ref.String() != want || tg.Digest.String() != want {
		t.Errorf("resolved %s / %s, want %s", tg.Ref, tg.Digest, want)
	}
}

// TestPolicyDefaultPort: :443 written out is the same registry as no port.
// It needs a TLS registry on 127.0.0.1:443 (root, or the port free).
func TestPolicyDefaultPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:443")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:443 (%v): the :443 spelling is covered by package imageref's tests", err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(nopLogger())))
	srv.Listener.Close()
	srv.Listener = l
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx := context.Background()
	o := Options{Remote: []remote.Option{remote.WithTransport(imageref.GuardRedirects(srv.Client().Transport))}}
	dir := t.TempDir()
	k1priv, k1pub, _ := key.Generate([]byte("pw"))
	_, k2pub, _ := key.Generate([]byte("pw"))
	os.WriteFile(filepath.Join(dir, "k1.pub"), k1pub, 0o644)
	os.WriteFile(filepath.Join(dir, "k2.pub"), k2pub, 0o644)
	pol, err := ParsePolicy([]byte(`policies:
  - {name: release, images: ["127.0.0.1/t/**"], keys: [k2.pub]}
  - {name: baseline, images: ["**"], keys: [k1.pub]}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join("testdata", "demo.vex.json"))
	pushTo(t, o, "127.0.0.1:443/t/app:1", fixtureImage(t, b))
	tg, err := Resolve(ctx, "127.0.0.1:443/t/app:1", o)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := key.ParsePrivate(k1priv, pass("pw"))
	if err := SignImage(ctx, tg, s, SignOptions{Options: o}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"127.0.0.1:443/t/app:1", "127.0.0.1:0443/t/app:1", "127.0.0.1/t/app:1"} {
		tg, err := Resolve(ctx, ref, o)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if tg.Digest.Context().Name() != "127.0.0.1/t/app" {
			t.Errorf("%s: resolved in %s", ref, tg.Digest.Context())
		}
		if _, err := pol.Verify(ctx, tg, VerifyOptions{TLog: TLogInsecureIgnore, Options: o}, nil); err == nil || !strings.Contains(err.Error(), "policy release: not signed") {
			t.Errorf("%s: got %v, want the release rule to fail", ref, err)
		}
	}
}

func pushTo(t *testing.T, o Options, ref string, img v1.Image) {
	t.Helper()
	c, err := imageref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(c.Reference(), img, o.Remote...); err != nil {
		t.Fatal(err)
	}
}

func fixtureImage(t *testing.T, b []byte) v1.Image {
	t.Helper()
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: static.NewLayer(b, types.OCILayer)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}
