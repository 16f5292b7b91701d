package secret

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// ordinaryHistory are history lines of official images: digests, checksums,
// versions and key fingerprints, none of them a secret.
var ordinaryHistory = []string{
	"/bin/sh -c #(nop) ADD file:5b1e3e4d3c1f4e0a9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddcc in / ",
	"/bin/sh -c #(nop) COPY file:e7e2a1b3c4d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f in /usr/local/bin/ ",
	"/bin/sh -c #(nop) COPY dir:3a1f9c2b7d4e8f60a5b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3 in /run/secrets ",
	`/bin/sh -c #(nop)  CMD ["bash"]`,
	"ENV PYTHON_SHA256=bfb249609990220491a1b92850a07135ed0831e41738cf681d63cf01b2a8fbd1",
	"ENV GPG_KEY=7169605F62C751356D054A26A821E680E5FA6305",
	"ENV GPG_KEYS=1729F83938DA44E27BA0F4D3DBDB397470D12172 BFDDD28642824F8118EF77909B67A5C12229118F",
	"ENV GOSU_VERSION=1.17",
	"ENV SECRET_KEY_BASE_FILE=/run/secrets/secret_key_base",
	"ARG BUILDKIT_SBOM_SCAN_STAGE=true",
	"ARG NPM_TOKEN",
	"RUN |1 TARGETARCH=amd64 /bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates # buildkit",
	`RUN /bin/sh -c set -eux; wget -O python.tar.xz "https://www.python.org/ftp/python/${PYTHON_VERSION%%[a-z]*}/Python-$PYTHON_VERSION.tar.xz"; echo "$PYTHON_SHA256 *python.tar.xz" | sha256sum -c - # buildkit`,
	`RUN /bin/sh -c set -eux; curl -fL -o /tmp/openjdk.tar.gz https://github.com/adoptium/temurin21-binaries/releases/download/jdk-21.0.2%2B13/OpenJDK21U-jdk_x64_linux_hotspot_21.0.2_13.tar.gz; echo "454bebb2c9fe48d981341461ffb6bf1017c7b7c6e15c6b0c29b959194ba3aaa5 */tmp/openjdk.tar.gz" | sha256sum -c -`,
	"RUN /bin/sh -c echo 'deb [signed-by=/usr/share/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main' > /etc/apt/sources.list.d/nodesource.list # buildkit",
	"RUN /bin/sh -c git clone https://${GITHUB_TOKEN}@github.com/org/repo.git /src # buildkit",
	"RUN /bin/sh -c --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci # buildkit",
	"COPY --from=builder /app/dist /usr/share/nginx/html # buildkit",
	"buildkit.dockerfile.v0",
}

func TestConfigNoFalsePositives(t *testing.T) {
	for _, line := range ordinaryHistory {
		if ms := Default().ValueMatches("", line); len(ms) > 0 {
			t.Errorf("%q: %s", line, ms[0].Rule.ID)
		}
		if got := RedactValue("", line); got != line {
			t.Errorf("RedactValue changed an ordinary line: %q", got)
		}
	}
	for name, v := range map[string]string{
		"org.opencontainers.image.revision": "8f3c2a1b9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a",
		"BUILD_ID":                          "f3a9c1e7b2d84a6f9e0c5b1d7a3e8f2c",
		"org.opencontainers.image.version":  "1.25.3",
		"PATH":                              "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	} {
		if got := RedactValue(name, v); got != v {
			t.Errorf("RedactValue(%q) = %q", name, got)
		}
	}
}

// TestRedactValue: every rule's planted secret, as a history line and as a
// named value, comes out redacted in Redact's style, nothing of it left
// for a rule to find, the text around it kept.
func TestRedactValue(t *testing.T) {
	for _, p := range plantedSecrets(t) {
		line := "RUN /bin/sh -c echo '" + p.text + "' > /x # buildkit"
		got := RedactValue("", line)
		if ms := Default().ValueMatches("", got); len(ms) > 0 {
			t.Errorf("%s: %s still found after redaction: %q", p.rule, ms[0].Rule.ID, got)
		}
		if p.secret != "" && strings.Contains(got, p.secret) {
			t.Errorf("%s: secret left in %q", p.rule, got)
		}
		if !strings.HasPrefix(got, "RUN /bin/sh -c echo '") || !strings.HasSuffix(got, "' > /x # buildkit") || !strings.Contains(got, "*****") {
			t.Errorf("%s: %q", p.rule, got)
		}
		if p.rule == "private-key" {
			// The whole key goes, body and all.
			for _, l := range strings.Split(p.text, "\n") {
				if len(l) >= 16 && !strings.HasPrefix(l, "-----") && strings.Contains(got, l) {
					t.Errorf("private key body line left: %q", l)
				}
			}
		}
	}
	if got := RedactValue("GITHUB_TOKEN", "ghp_R8xK2mQ7vN4pL9wT3zY6bH1cJ5fD0gS8aE2u"); got != "ghp_R8*****" {
		t.Errorf("named value: %q", got)
	}
	two := "AKIAQ7LMX3VZ2KRT9WNB and ghp_R8xK2mQ7vN4pL9wT3zY6bH1cJ5fD0gS8aE2u"
	if got := RedactValue("", two); got != "AKIAQ7***** and ghp_R8*****" {
		t.Errorf("two secrets: %q", got)
	}
	// A key cut short (no END line) is hidden to the end of the string.
	if got := RedactValue("", "key: -----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEAq3Lm9Rt7Vz2Kp5Wn8Bc4Yx6Hd1Jf5Gs0Ta3Ue7\\nMore"); got != "key: -----BEGIN RSA PRIVATE KEY-----*****" {
		t.Errorf("cut key: %q", got)
	}
	m := RedactMap(map[string]string{"slack": "xoxb-2048193726-Zr8Qm3Xv7Kt2Lp9Wn4Bc", "v": "1"})
	if m["slack"] != "xoxb-20*****" || m["v"] != "1" || RedactMap(nil) != nil {
		t.Errorf("RedactMap: %v", m)
	}
}

func TestScanConfig(t *testing.T) {
	cfg := &v1.ConfigFile{
		History: []v1.History{
			{CreatedBy: ordinaryHistory[0]},
			{CreatedBy: "ARG GITHUB_TOKEN=ghp_R8xK2mQ7vN4pL9wT3zY6bH1cJ5fD0gS8aE2u", EmptyLayer: true},
			{CreatedBy: "RUN /bin/sh -c echo AKIAQ7LMX3VZ2KRT9WNB > /x", Comment: "by glpat-Xq3Lm9Rt7Vz2Kp5Wn8Bc"},
		},
		Config: v1.Config{
			Env:        []string{"STRIPE_SECRET=sk_live_4Rz8Qm3Xv7Kt2Lp9Wn4BcY6Hd", "BUILD_ID=f3a9c1e7b2d84a6f9e0c5b1d7a3e8f2c", "DB_PASSWORD=q7Lm2Xv9Rt4Kp8Wn3BcY6Hd"},
			Labels:     map[string]string{"hook": "xoxb-2048193726-Zr8Qm3Xv7Kt2Lp9Wn4Bc"},
			Cmd:        []string{"serve", "--token", "npm_Zr8Qm3Xv7Kt2Lp9Wn4BcY6Hd1Jf5Gs0Ta3Ue"},
			OnBuild:    []string{"RUN echo ghs_Tn5Wq8Ez2Rk7Yb4Mx1Vc6Ld9Hj3Gf0Sa2Pu7"},
			WorkingDir: "/app",
		},
	}
	layers := []inventory.Layer{{Index: 0}, {Index: 1}}
	layerOf := func(h int) *inventory.Layer {
		if h == 2 {
			return &layers[1]
		}
		return nil
	}
	strs := ConfigStrings(cfg, map[string]string{"m": "AIzaSyD4Rz8Qm3Xv7Kt2Lp9Wn4BcY6Hd1Jf5Gs0"}, map[string]string{"i": "glpat-Zq3Lm9Rt7Vz2Kp5Wn8Bc"})
	fs := Default().ScanConfig(strs, "img", layerOf)
	got := map[string]string{}
	for _, f := range fs {
		got[f.Location.Path] = f.ID
		if f.Target != "img" || !strings.Contains(f.Description, "*****") {
			t.Errorf("%+v", f)
		}
		for _, s := range []string{"ghp_R8xK2mQ7vN4p", "AKIAQ7LMX3VZ2KRT", "sk_live_4Rz8Qm3X", "q7Lm2Xv9Rt4Kp8Wn"} {
			if strings.Contains(f.Description, s) {
				t.Errorf("description holds a secret: %s", f.Description)
			}
		}
		if f.Location.Path == "config:history[2].created_by" && (f.Location.Layer == nil || f.Location.Layer.Index != 1) {
			t.Errorf("history finding without its layer: %+v", f.Location)
		}
	}
	want := map[string]string{
		"config:history[1].created_by": "github-token",
		"config:history[2].created_by": "aws-access-key-id",
		"config:history[2].comment":    "gitlab-token",
		"config:env.STRIPE_SECRET":     "stripe-key",
		"config:env.DB_PASSWORD":       "generic-secret",
		"config:labels.hook":           "slack-token",
		"config:cmd":                   "npm-token",
		"config:onbuild[0]":            "github-token",
		"manifest:annotations.m":       "gcp-api-key",
		"index:annotations.i":          "gitlab-token",
	}
	for k, id := range want {
		if got[k] != id {
			t.Errorf("%s: got %q, want %q", k, got[k], id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("findings %v, want %v", got, want)
	}
	// The allow-list's value regexes apply to the config too.
	s, err := New(Config{Allow: Allow{Regexes: []string{"^AKIAQ7"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.ScanConfig(strs, "img", nil) {
		if f.ID == "aws-access-key-id" {
			t.Errorf("allow-listed value reported: %+v", f)
		}
	}
}

// FuzzRedactValue: any configuration string, redacted, leaves nothing for
// the rules to find and keeps what they did not match.
func FuzzRedactValue(f *testing.F) {
	for _, l := range ordinaryHistory {
		f.Add("", l)
	}
	for _, p := range plantedSecrets(f) {
		f.Add("", "RUN echo '"+p.text+"'")
		f.Add("API_TOKEN", p.text)
	}
	f.Add("DB_PASSWORD", "q7Lm2Xv9Rt4Kp8Wn3BcY6Hd")
	f.Fuzz(func(t *testing.T, name, value string) {
		got := RedactValue(name, value)
		// Redaction hides what the rules report, and also the literal
		// value of a credential-named variable (reported or not).
		if len(Default().ValueMatches(name, value)) == 0 && len(assignments(name, value)) == 0 {
			if got != value {
				t.Fatalf("nothing found but %q became %q", value, got)
			}
			return
		}
		if ms := Default().ValueMatches(name, got); len(ms) > 0 {
			t.Fatalf("%s still finds %q in %q (from %q)", ms[0].Rule.ID, got[ms[0].start:ms[0].end], got, value)
		}
	})
}

// TestRedactAssignments: credential-named variables with literal values are
// hidden in free text and as named values, whatever their entropy;
// references, paths and other names are left alone.
func TestRedactAssignments(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"", "RUN |1 API_TOKEN=hunter2pass /bin/sh -c echo $API_TOKEN > /x # buildkit", "RUN |1 API_TOKEN=hu***** /bin/sh -c echo $API_TOKEN > /x # buildkit"},
		{"", "/bin/sh -c #(nop)  ENV DB_PASSWORD=Tr0ub4dor&3", "/bin/sh -c #(nop)  ENV DB_PASSWORD=Tr*****"},
		{"", `RUN /bin/sh -c echo "password=Xk9#mP2qL7vR" > /etc/app.conf`, `RUN /bin/sh -c echo "password=Xk9*****" > /etc/app.conf`},
		{"", `RUN |1 SECRET_KEY="quoted value here" /bin/sh -c true`, `RUN |1 SECRET_KEY="quot*****" /bin/sh -c true`},
		{"", "/bin/sh -c #(nop)  ENV PASSWORD_FILE=/run/secrets/db NODE_AUTH_TOKEN=${NPM_TOKEN} TOKEN_URL=https://x", ""},
		{"", "/bin/sh -c #(nop)  ENV GPG_KEYS=A0B1C2D3 JAVA_VERSION=21 DEBUG=true", ""},
		{"", "RUN |1 DB_PASSWORD= /bin/sh -c make", ""},
		{"DB_PASSWORD", "s3cr3t", "s*****"},
		{"API_TOKEN", "changeme", "ch*****"}, // hidden even when it looks like a placeholder
		{"API_TOKEN", "$TOKEN", ""},
		{"PATH", "/usr/bin:/bin", ""},
		{"APP_NAME", "hunter2", ""},
	} {
		want := c.want
		if want == "" {
			want = c.in
		}
		if got := RedactValue(c.name, c.in); got != want {
			t.Errorf("RedactValue(%q, %q) = %q, want %q", c.name, c.in, got, want)
		}
	}
	// Reported only when not a placeholder.
	if ms := Default().ValueMatches("API_TOKEN", "changeme"); len(ms) != 0 {
		t.Errorf("placeholder reported: %v", ms)
	}
	if ms := Default().ValueMatches("", "RUN |1 API_TOKEN=opensesame-42x /bin/sh -c make"); len(ms) != 1 || ms[0].Rule.ID != "credential-assignment" {
		t.Errorf("build argument not reported: %v", ms)
	}
}
