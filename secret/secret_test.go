package secret

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"golang.org/x/crypto/ssh"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randString makes a random string over an alphabet: planted tokens have
// the real format and fresh, high-entropy bodies.
func randString(t testing.TB, n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func pemKey(t testing.TB, typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// signJWT signs a JWT with HS256.
func signJWT(t testing.TB) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(`{"sub":"1234567890","name":"bulkhead test","iat":1716239022}`))
	mac := hmac.New(sha256.New, []byte(randString(t, 32, alnum)))
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(mac.Sum(nil))
}

func pgpKey(t testing.TB) string {
	e, err := openpgp.NewEntity("bulkhead", "test", "test@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.String()
}

type planted struct {
	rule, text, secret string
}

// plantedSecrets returns one real-format secret per rule, each embedded
// the way it shows up in files.
func plantedSecrets(t testing.TB) []planted {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	sshBlock, err := ssh.MarshalPrivateKey(edKey, "bulkhead test")
	if err != nil {
		t.Fatal(err)
	}
	gcpPEM := pemKey(t, "PRIVATE KEY", pkcs8)
	gcpJSON, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "bulkhead-test", "private_key_id": hex.EncodeToString([]byte(randString(t, 20, alnum))),
		"private_key": gcpPEM, "client_email": "scanner@bulkhead-test.iam.gserviceaccount.com",
	}, "", "  ")
	jwt := signJWT(t)
	azureKey := base64.StdEncoding.EncodeToString([]byte(randString(t, 64, alnum)))
	hexs := "0123456789abcdef"
	ghp := "ghp_" + randString(t, 36, alnum)
	// A random hex-and-alphanumeric value is high-entropy on average, but
	// one in a few hundred falls under the rule's threshold: draw again.
	generic := randString(t, 32, hexs) + randString(t, 8, alnum)
	for entropy(generic) < 3.9 {
		generic = randString(t, 32, hexs) + randString(t, 8, alnum)
	}
	return []planted{
		// AWS's documented example keys.
		{"aws-access-key-id", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", "AKIAIOSFODNN7EXAMPLE"},
		{"aws-secret-access-key", "[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		{"gcp-service-account", string(gcpJSON), ""},
		{"gcp-api-key", "const key = \"AIza" + randString(t, 35, alnum) + "\";\n", ""},
		{"azure-storage-key", "DefaultEndpointsProtocol=https;AccountName=bulkhead;AccountKey=" + azureKey + ";EndpointSuffix=core.windows.net\n", azureKey},
		{"azure-client-secret", "AZURE_CLIENT_SECRET=" + randString(t, 3, alnum) + "8Q~" + randString(t, 34, alnum) + "\n", ""},
		{"github-token", "GITHUB_TOKEN=" + ghp + "\n", ghp},
		{"github-token", "token: gho_" + randString(t, 36, alnum) + "\n", ""},
		{"github-token", "ghs_" + randString(t, 36, alnum) + "\n", ""},
		{"github-fine-grained-pat", "url = https://x-access-token:github_pat_" + randString(t, 82, alnum+"_") + "@github.com/o/r\n", ""},
		{"gitlab-token", "export GL=glpat-" + randString(t, 20, alnum) + "\n", ""},
		{"slack-token", "slack: xoxb-" + randString(t, 12, "0123456789") + "-" + randString(t, 13, "0123456789") + "-" + randString(t, 24, alnum) + "\n", ""},
		{"slack-webhook", "hook: https://hooks.slack.com/services/T" + randString(t, 8, "ABCDEFGHJK0123456789") + "/B" + randString(t, 8, "ABCDEFGHJK0123456789") + "/" + randString(t, 24, alnum) + "\n", ""},
		{"stripe-key", "Stripe.api_key = 'sk_live_" + randString(t, 24, alnum) + "'\n", ""},
		{"twilio-api-key", "TWILIO_API_KEY=SK" + randString(t, 32, hexs) + "\n", ""},
		{"twilio-auth-token", "twilio_auth_token: " + randString(t, 32, hexs) + "\n", ""},
		{"sendgrid-api-key", "SENDGRID=SG." + randString(t, 22, alnum) + "." + randString(t, 43, alnum) + "\n", ""},
		{"npm-token", "NPM_TOKEN=npm_" + randString(t, 36, alnum) + "\n", ""},
		{"npmrc-auth-token", "//registry.npmjs.org/:_authToken=" + randString(t, 8, hexs) + "-" + randString(t, 4, hexs) + "-" + randString(t, 4, hexs) + "-" + randString(t, 12, hexs) + "\n", ""},
		{"pypi-token", "password = pypi-AgEIcHlwaS5vcmc" + randString(t, 70, alnum) + "\n", ""},
		{"private-key", pemKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), ""},
		{"private-key", pemKey(t, "EC PRIVATE KEY", ecDER), ""},
		{"private-key", string(pem.EncodeToMemory(sshBlock)), ""},
		{"private-key", pgpKey(t), ""},
		{"jwt", "Authorization: Bearer " + jwt + "\n", jwt},
		{"url-password", "DATABASE_URL=postgres://app:Zr8qT2mVx9pL@db.internal:5432/app\n", "Zr8qT2mVx9pL"},
		{"generic-secret", "api_token = \"" + generic + "\"\n", ""},
	}
}

func TestPlantedSecretsFound(t *testing.T) {
	s := Default()
	cases := plantedSecrets(t)
	seen := map[string]bool{}
	// Each alone, with a line of noise before it, so the line is 2.
	for _, c := range cases {
		seen[c.rule] = true
		text := "# config\n" + c.text
		fs, err := s.Scan("planted.txt", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		found := false
		for _, f := range fs {
			ids = append(ids, f.ID)
			if f.ID == c.rule && f.Location.StartLine >= 2 {
				found = true
			}
			b, _ := json.Marshal(f)
			if c.secret != "" && bytes.Contains(b, []byte(c.secret)) {
				t.Errorf("%s: finding leaks the secret: %s", c.rule, b)
			}
		}
		if !found {
			t.Errorf("%s not found in %q (found %v)", c.rule, text, ids)
		}
	}
	for _, r := range Rules() {
		if !seen[r.ID] {
			t.Errorf("rule %s has no planted case", r.ID)
		}
	}
	// All together in one file: every one still found, on its own line.
	var all strings.Builder
	want := map[string]int{}
	for _, c := range cases {
		all.WriteString(c.text)
		all.WriteString("\n")
		want[c.rule]++
	}
	fs, err := s.Scan("all.txt", strings.NewReader(all.String()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range fs {
		got[f.ID]++
	}
	for id, n := range want {
		if got[id] < n {
			t.Errorf("combined file: %s found %d times, want %d", id, got[id], n)
		}
	}
}

// TestCleanFixtures: real Dockerfiles and manifests with no secrets give no
// findings (committed fixtures; the whole shared corpus below when present).
func TestCleanFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/clean/*")
	if len(files) < 5 {
		t.Fatalf("only %d clean fixtures", len(files))
	}
	for _, p := range files {
		if fs := scanFile(t, p); len(fs) > 0 {
			t.Errorf("%s: %v", p, fs)
		}
	}
}

func scanFile(t testing.TB, p string) []string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := Default().Scan(p, f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range fs {
		out = append(out, fmt.Sprintf("%s:%d", x.ID, x.Location.StartLine))
	}
	return out
}

// corpusExceptions are corpus files that do contain secrets on purpose,
// with the reason.
var corpusExceptions = map[string]string{
	"k8s/kics-queries/encryption_provider_not_properly_configured/test/negative1.yaml": "EncryptionConfiguration with inline AES/secretbox keys (planted test keys)",
	"k8s/kics-queries/encryption_provider_not_properly_configured/test/positive1.yaml": "EncryptionConfiguration with inline AES keys (planted test keys)",
}

func TestSharedCorpusHasNoSecrets(t *testing.T) {
	root := testcorpus.Dir()
	if root == "" {
		t.Skip("../shared/corpus not present")
	}
	n := 0
	for _, sub := range []string{"dockerfiles", "k8s"} {
		filepath.Walk(filepath.Join(root, sub), func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return nil
			}
			n++
			rel, _ := filepath.Rel(root, p)
			got := scanFile(t, p)
			if _, ok := corpusExceptions[rel]; ok {
				if len(got) == 0 {
					t.Errorf("%s: listed as an exception but no secret found", rel)
				}
				return nil
			}
			if len(got) > 0 {
				t.Errorf("%s: %v", rel, got)
			}
			return nil
		})
	}
	t.Logf("%d corpus files scanned, %d exceptions", n, len(corpusExceptions))
}

func TestPlantedFixture(t *testing.T) {
	got := scanFile(t, "testdata/planted/kics-encryption-config.yaml")
	sort.Strings(got)
	want := []string{"generic-secret:11", "generic-secret:13", "generic-secret:17", "generic-secret:19", "generic-secret:23"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v want %v", got, want)
	}
}

func TestAllowList(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "secrets.yaml")
	os.WriteFile(cfgPath, []byte("allow:\n  paths: ['(^|/)fixtures/']\n  rules: [jwt]\n  regexes: ['EXAMPLE']\n"), 0o644)
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := "AKIAIOSFODNN7EXAMPLE\nAKIA" + strings.Repeat("Q", 12) + "ZZ7W\n" + signJWT(t) + "\n"
	fs, _ := s.Scan("app/config.txt", strings.NewReader(text))
	if len(fs) != 1 || fs[0].ID != "aws-access-key-id" || fs[0].Location.StartLine != 2 {
		t.Errorf("allow-list: %+v", fs)
	}
	if fs, _ := s.Scan("app/fixtures/x.txt", strings.NewReader(text)); len(fs) != 0 {
		t.Errorf("allowed path still scanned: %+v", fs)
	}
	// Bad configs are clear errors.
	os.WriteFile(cfgPath, []byte("allow:\n  pathz: [x]\n"), 0o644)
	if _, err := LoadConfig(cfgPath); err == nil {
		t.Error("unknown key accepted")
	}
	if _, err := New(Config{Allow: Allow{Rules: []string{"nope"}}}); err == nil || !strings.Contains(err.Error(), "unknown rule") {
		t.Errorf("unknown rule: %v", err)
	}
	if _, err := New(Config{Allow: Allow{Paths: []string{"("}}}); err == nil {
		t.Error("bad regex accepted")
	}
}

func TestBinaryAndSize(t *testing.T) {
	s, _ := New(Config{MaxFileSize: 1 << 16})
	bin := append([]byte("\x7fELF\x00\x00"), []byte("AKIAIOSFODNN7EXAMPLE")...)
	if fs, err := s.Scan("bin", bytes.NewReader(bin)); err != nil || len(fs) != 0 {
		t.Errorf("binary: %v %v", fs, err)
	}
	big := append(bytes.Repeat([]byte("a"), 1<<16), []byte(" AKIAIOSFODNN7EXAMPLE")...)
	if fs, err := s.Scan("big", bytes.NewReader(big)); err != nil || len(fs) != 0 {
		t.Errorf("oversize: %v %v", fs, err)
	}
	// A secret past the binary probe in a text file is found.
	text := append(bytes.Repeat([]byte("x\n"), 10000), []byte("AKIAIOSFODNN7EXAMPLE\n")...)
	if fs, _ := s.Scan("t", bytes.NewReader(text)); len(fs) != 1 || fs[0].Location.StartLine != 10001 {
		t.Errorf("late secret: %+v", fs)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"AKIAIOSFODNN7EXAMPLE":            "AKIAIO*****",
		"hunter2xyz":                      "hu*****",
		"-----BEGIN RSA PRIVATE KEY-----": "-----BEGIN RSA PRIVATE KEY-----*****",
		"ab":                              "*****",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSensitiveName(t *testing.T) {
	for name, want := range map[string]bool{
		"DB_PASSWORD": true, "githubToken": true, "API_KEY": true, "AWS_SECRET_ACCESS_KEY": true, "client-secret": true,
		"PASSWORD_FILE": false, "GPG_KEYS": false, "GPG_KEY": false, "SECRET_NAME": false, "PATH": false, "KEY": false, "TOKEN_URL": false,
	} {
		if got := SensitiveName(name); got != want {
			t.Errorf("SensitiveName(%q) = %v", name, got)
		}
	}
}

func TestMatchValue(t *testing.T) {
	if m, ok := MatchValue("X", "AKIAIOSFODNN7EXAMPLE"); !ok || m.Rule.ID != "aws-access-key-id" {
		t.Errorf("aws: %v %v", m, ok)
	}
	if _, ok := MatchValue("BUILD_ID", "f3a9c1e7b2d84a6f9e0c5b1d7a3e8f2c"); ok {
		t.Error("generic rule fired on a non-credential name")
	}
	if _, ok := MatchValue("GOLANG_VERSION", "1.23.7"); ok {
		t.Error("version matched")
	}
}

func FuzzScan(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, c := range plantedSecrets(f) {
		f.Add([]byte(c.text))
	}
	s := Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := s.Scan("fuzz", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range fs {
			if x.Location.StartLine < 1 || x.Location.EndLine < x.Location.StartLine {
				t.Fatalf("bad lines %+v", x.Location)
			}
		}
	})
}

// BenchmarkScan measures throughput over text with no secrets (the common
// case: one keyword pass) and with secrets.
func BenchmarkScan(b *testing.B) {
	var clean []byte
	files, _ := filepath.Glob("testdata/clean/*")
	for _, p := range files {
		d, _ := os.ReadFile(p)
		clean = append(clean, d...)
	}
	for len(clean) < 4<<20 {
		clean = append(clean, clean...)
	}
	var dirty bytes.Buffer
	for _, c := range plantedSecrets(b) {
		dirty.WriteString(c.text)
	}
	s := Default()
	for name, data := range map[string][]byte{"clean": clean, "secrets": dirty.Bytes()} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				s.Matches(data)
			}
		})
	}
}
