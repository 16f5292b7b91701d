package imageref

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want, repo string
		ignored        string
	}{
		{"alpine", "index.docker.io/library/alpine:latest", "index.docker.io/library/alpine", ""},
		{"alpine:3.19", "index.docker.io/library/alpine:3.19", "index.docker.io/library/alpine", ""},
		{"docker.io/library/alpine", "index.docker.io/library/alpine:latest", "index.docker.io/library/alpine", ""},
		{"docker.io/alpine", "index.docker.io/library/alpine:latest", "index.docker.io/library/alpine", ""},
		{"Docker.IO/acme/app:1", "index.docker.io/acme/app:1", "index.docker.io/acme/app", ""},
		{"index.docker.io/acme/app:1", "index.docker.io/acme/app:1", "index.docker.io/acme/app", ""},
		{"registry-1.docker.io/acme/app:1", "index.docker.io/acme/app:1", "index.docker.io/acme/app", ""},
		{"docker.io:443/acme/app:1", "index.docker.io/acme/app:1", "index.docker.io/acme/app", ""},
		{"acme/app:1", "index.docker.io/acme/app:1", "index.docker.io/acme/app", ""},
		// Case, leading zeros, default ports.
		{"Registry.Local:5000/t/app:1", "registry.local:5000/t/app:1", "registry.local:5000/t/app", ""},
		{"127.0.0.1:05000/t/app", "127.0.0.1:5000/t/app:latest", "127.0.0.1:5000/t/app", ""},
		{"127.0.0.1:0005000/t/app", "127.0.0.1:5000/t/app:latest", "127.0.0.1:5000/t/app", ""},
		{"registry.example.com:443/t/app:1", "registry.example.com/t/app:1", "registry.example.com/t/app", ""},
		{"registry.example.com:0443/t/app:1", "registry.example.com/t/app:1", "registry.example.com/t/app", ""},
		{"registry.example.com:80/t/app:1", "registry.example.com/t/app:1", "registry.example.com/t/app", ""},
		{"LOCALHOST:443/t/app", "localhost/t/app:latest", "localhost/t/app", ""},
		{"localhost/app", "localhost/app:latest", "localhost/app", ""},
		// A dotless host keeps its port: without it, it would be a Docker Hub namespace.
		{"myreg:443/app", "myreg:443/app:latest", "myreg:443/app", ""},
		{"[0:0:0:0:0:0:0:1]:5000/t/app", "[::1]:5000/t/app:latest", "[::1]:5000/t/app", ""},
		{"[::ffff:127.0.0.1]:5000/t/app", "127.0.0.1:5000/t/app:latest", "127.0.0.1:5000/t/app", ""},
		// The digest is what is pulled; a tag next to it is dropped.
		{"registry.local/t/app:latest@" + dg, "registry.local/t/app@" + dg, "registry.local/t/app", "latest"},
		{"registry.local/t/app@" + dg, "registry.local/t/app@" + dg, "registry.local/t/app", ""},
		{"ghcr.io/a.b/c_d/e__f/g--h:V1.0_x-y", "ghcr.io/a.b/c_d/e__f/g--h:V1.0_x-y", "ghcr.io/a.b/c_d/e__f/g--h", ""},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if r.String() != tc.want || r.Repo() != tc.repo || r.IgnoredTag != tc.ignored || r.Written != tc.in {
			t.Errorf("%s: got %s repo %s ignored %q", tc.in, r, r.Repo(), r.IgnoredTag)
		}
		if r.Reference().String() != tc.want || r.Reference().Context().Name() != tc.repo {
			t.Errorf("%s: go-containerregistry reference %s", tc.in, r.Reference())
		}
		again, err := Parse(r.String())
		if err != nil || again.String() != r.String() {
			t.Errorf("%s: not idempotent: %v %v", tc.in, again, err)
		}
		if (r.String() != tc.in) != strings.Contains(r.Describe(), "(written "+tc.in+")") {
			t.Errorf("%s: describe %q", tc.in, r.Describe())
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ in, reason string }{
		{"", "empty"},
		{"registry.local/other/../t/app@" + dg, `".." segment`},
		{"registry.local/../t/app", `".." segment`},
		{"registry.local/t/app/..", `".." segment`},
		{"registry.local/t/./app", `"." segment`},
		{"registry.local/./t/app:1", `"." segment`},
		{"registry.local/t//app", "empty segment"},
		{"registry.local//t/app", "empty segment"},
		{"registry.local/t/app/", "empty segment"},
		{"registry.local/t/%2e%2e/app", "percent-encoding"},
		{"registry.local/t/app%2Fx", "percent-encoding"},
		{"registry.local/T/app", "not valid"},
		{"registry.local/t/.app", "not valid"},
		{"registry.local/t/app.", "not valid"},
		{"registry.local/t/a..b", "not valid"},
		{"registry.local/t/app:..", "tag"},
		{"registry.local/t/app:.x", "tag"},
		{"registry.local/t/app:-x", "tag"},
		{"registry.local/t/app@sha256:abc", "digest"},
		{"registry.local/t/app@sha256:" + strings.ToUpper(dg[7:]), "digest"},
		{"registry.local/t/app@" + dg + "@" + dg, "more than one @"},
		{"registry.local:/t/app", "empty port"},
		{"registry.local:0/t/app", "out of range"},
		{"registry.local:65536/t/app", "out of range"},
		{"registry.local:+80/t/app", "not a number"},
		{"registry.local.:5000/t/app", "ends with a dot"},
		{"registry..local/t/app", "DNS label"},
		{"reg_istry.local/t/app", "DNS label"},
		{"127.1:5000/t/app", "dotted quad"},
		{"127.0.0.01:5000/t/app", "dotted quad"},
		{"0x7f.0.0.1:5000/t/app", "dotted quad"},
		{"[fe80::1%25eth0]:5000/t/app", "percent-encoding"},
		{"[127.0.0.1]:5000/t/app", "IPv6"},
		{"[::1:5000/t/app", "unclosed"},
		{"MyReg/app", "ambiguous"},
		{"registry.local/t/app\x00", "control"},
		{"registry.local/t/äpp", "non-ASCII"},
		{"registry.local/t/app tag", "space"},
		{"registry.local\\t/app", "backslash"},
		{strings.Repeat("a/", 600) + "a", "longer than"},
	} {
		_, err := Parse(tc.in)
		var re *Error
		if !errors.As(err, &re) {
			t.Errorf("%q: want *Error, got %v", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%q: %v; want %q", tc.in, err, tc.reason)
		}
	}
}

func TestParseInsecure(t *testing.T) {
	r, err := Parse("registry.example.com:443/t/app", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reference().Context().Scheme() != "http" {
		t.Errorf("name.Insecure dropped: %s", r.Reference().Context().Scheme())
	}
}

func TestPatterns(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/*":         "index.docker.io/library/*",
		"Registry.Local:05000/t/**":   "registry.local:5000/t/**",
		"registry.example.com:443/**": "registry.example.com/**",
		"Registry.*/**":               "registry.*/**",
		"**":                          "**",
		"alpine:3.*":                  "alpine:3.*",
		"acme/*":                      "acme/*",
	} {
		if got := ImagePattern(in); got != want {
			t.Errorf("ImagePattern(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"docker.io":       "index.docker.io",
		"GHCR.io":         "ghcr.io",
		"127.0.0.1:05000": "127.0.0.1:5000",
		"127.0.0.1:*":     "127.0.0.1:*",
		"*.Example.com":   "*.example.com",
	} {
		if got := HostPattern(in); got != want {
			t.Errorf("HostPattern(%q) = %q, want %q", in, got, want)
		}
	}
}
