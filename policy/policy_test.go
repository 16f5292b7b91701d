package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

func TestParseExample(t *testing.T) {
	f, err := Load("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rules) != 8 || f.Rules[0].Name != "no-critical-vulns" || f.Rules[0].Line != 14 {
		t.Fatalf("rules: %d, first %q at line %d", len(f.Rules), f.Rules[0].Name, f.Rules[0].Line)
	}
	if f.Rules[0].Mode != Enforce || f.Rules[3].Mode != Warn {
		t.Errorf("modes %s %s", f.Rules[0].Mode, f.Rules[3].Mode)
	}
	if got := f.Rules[0].Vulnerabilities.DBMaxAge; time.Duration(got) != 30*24*time.Hour {
		t.Errorf("dbMaxAge %v", time.Duration(got))
	}
	if len(f.Rules[1].Signatures.verifiers) != 1 || len(f.Rules[1].Signatures.predicates) != 1 || f.Rules[1].Signatures.TLog().Ignored() {
		t.Errorf("signature rule not loaded: %+v", f.Rules[1].Signatures)
	}
	if !f.FailClosed("prod") || f.FailClosed("dev-alice") || !f.ExemptNamespace("kube-system") || f.ExemptNamespace("default") {
		t.Error("admission settings")
	}
	if time.Duration(f.Admission.ScanBudget) != 30*time.Second {
		t.Errorf("scanBudget %v", time.Duration(f.Admission.ScanBudget))
	}
	if f.Exemptions[0].Line != 56 || f.Exemptions[0].ExpiresAt().Format(time.RFC3339) != "2027-03-31T23:59:59Z" {
		t.Errorf("exemption line %d expires %v", f.Exemptions[0].Line, f.Exemptions[0].ExpiresAt())
	}
}

// TestParseErrors: every mistake is reported with its line and what to do.
func TestParseErrors(t *testing.T) {
	head := "apiVersion: bulkhead.dev/v1\nkind: Policy\n"
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"empty", "", []string{"empty"}},
		{"not yaml", "rules: [", []string{"line"}},
		{"old version", "apiVersion: bulkhead.dev/v0\nkind: Policy\nrules: [{name: a, secrets: {}}]\n", []string{`apiVersion is "bulkhead.dev/v0"`}},
		{"unknown top field", head + "rulez: []\n", []string{"line 3", "rulez"}},
		{"unknown rule field", head + "rules:\n  - name: a\n    secrets: {}\n    severity: HIGH\n", []string{"line 6", "severity", "in a rule"}},
		{"misspelt check field", head + "rules:\n  - name: a\n    vulnerabilities:\n      maxSeverty: HIGH\n", []string{"line 6", "maxSeverty", "in vulnerabilities"}},
		{"no rules", head, []string{"no rules"}},
		{"no check", head + "rules:\n  - name: a\n", []string{"line 4", "has no check"}},
		{"two checks", head + "rules:\n  - name: a\n    secrets: {}\n    digestPinning: {}\n", []string{"line 4", "secrets and digestPinning"}},
		{"duplicate name", head + "rules:\n  - {name: a, secrets: {}}\n  - {name: a, digestPinning: {}}\n", []string{"line 5", "used twice"}},
		{"bad mode", head + "rules:\n  - {name: a, mode: audit, secrets: {}}\n", []string{"line 4", `mode "audit"`}},
		{"bad severity", head + "rules:\n  - {name: a, vulnerabilities: {maxSeverity: SEVERE}}\n", []string{"line 4", "maxSeverity"}},
		{"missing key", head + "rules:\n  - {name: a, signatures: {keys: [nope.pub]}}\n", []string{"line 4", "nope.pub"}},
		{"bad layout", head + "rules:\n  - {name: a, signatures: {keys: [release.pub], layouts: [tags]}}\n", []string{`layout "tags"`}},
		{"bad attestation", head + "rules:\n  - {name: a, signatures: {keys: [release.pub], attestations: [sbomz]}}\n", []string{`attestation "sbomz"`}},
		{"bad transparencyLog", head + "rules:\n  - {name: a, signatures: {keys: [release.pub], transparencyLog: off}}\n", []string{"line 4", `transparencyLog "off"`, "required (the default) or ignore"}},
		{"bad level", head + "rules:\n  - {name: a, podSecurity: {level: privileged}}\n", []string{"baseline or restricted"}},
		{"pss id in workload", head + "rules:\n  - {name: a, workload: {checks: [BH-K8S-003]}}\n", []string{"BH-K8S-003", "podSecurity"}},
		{"bad cel", head + "rules:\n  - name: a\n    cel:\n      checks:\n        - {id: X-1, title: t, severity: LOW, target: kubernetes, expression: 'podSpec.'}\n", []string{"line 4", "cel"}},
		{"bad duration", head + "rules:\n  - {name: a, vulnerabilities: {dbMaxAge: soon}}\n", []string{"line 4", "soon"}},
		{"bad glob", head + "rules:\n  - {name: a, match: {namespaces: ['[']}, secrets: {}}\n", []string{"pattern"}},
		{"exemption incomplete", head + "rules:\n  - {name: a, secrets: {}}\nexemptions:\n  - rule: b\n", []string{"line 6", `no rule has that name`, "owner is required", "reason is required", "expires is required"}},
		{"exemption bad date", head + "rules:\n  - {name: a, secrets: {}}\nexemptions:\n  - {rule: a, owner: o, reason: r, expires: next week}\n", []string{"line 6", "use a date"}},
		{"bad failure policy", head + "admission: {failurePolicy: maybe}\nrules:\n  - {name: a, secrets: {}}\n", []string{"failurePolicy \"maybe\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.doc), "testdata")
			if err == nil {
				t.Fatal("no error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("not a ValidationError: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// demoFacts answers from a real scan of the repository's demo image (an
// OCI archive) for one reference and fails like an unreachable registry
// for the others.
type demoFacts struct {
	scan      *Scan
	verifyErr error
}

var (
	demoOnce sync.Once
	demoScan *Scan
	demoErr  error
)

func demo(t testing.TB) *Scan {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "policy-test-")
		if err != nil {
			demoErr = err
			return
		}
		dbPath := filepath.Join(dir, "db")
		if _, demoErr = vulndb.EnsureBundled(dbPath); demoErr != nil {
			return
		}
		db, err := vulndb.Open(dbPath)
		if err != nil {
			demoErr = err
			return
		}
		defer db.Close()
		img, err := image.Open(context.Background(), "oci-archive:../testdata/images/alpine-demo.oci.tar", image.Options{TempDir: dir})
		if err != nil {
			demoErr = err
			return
		}
		defer img.Close()
		demoScan, demoErr = ScanImage(context.Background(), img, db, nil, dir)
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoScan
}

func (d *demoFacts) Resolve(_ context.Context, img *Image) (string, error) {
	if strings.Contains(img.Ref, "unreachable") {
		return "", errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	}
	return d.scan.Digest, nil
}

func (d *demoFacts) Verify(context.Context, *Image, *SignatureRule) error { return d.verifyErr }

func (d *demoFacts) Scan(context.Context, *Image) (*Scan, error) { return d.scan, nil }

func pod(t *testing.T, file, image string) *kubernetes.Object {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if image != "" {
		b = []byte(strings.ReplaceAll(string(b), "registry.k8s.io/pause", image))
	}
	objs, err := kubernetes.ParseBytes(file, b)
	if err != nil || len(objs) != 1 {
		t.Fatalf("%s: %v", file, err)
	}
	return objs[0]
}

func images(o *kubernetes.Object) []string {
	var out []string
	for _, c := range o.Pod.Containers() {
		out = append(out, c.C.Image)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	sc := demo(t)
	const head = "apiVersion: bulkhead.dev/v1\nkind: Policy\nadmission:\n  namespaces: [{match: dev-*, failurePolicy: open}]\n"
	for _, tc := range []struct {
		name     string
		policy   string
		ns       string
		pod      string
		image    string
		verify   error
		allowed  bool
		want     []string // in the denial messages (or warnings when allowed)
		warnings int
	}{
		{name: "critical vuln denied", policy: "rules:\n  - {name: no-critical, vulnerabilities: {maxSeverity: HIGH}}\n", image: "ghcr.io/acme/app:1",
			want: []string{`rule "no-critical"`, "CRITICAL GHSA-xvch-5gv4-984h in minimist 1.2.5"}},
		{name: "critical ignored", policy: "rules:\n  - {name: no-critical, vulnerabilities: {maxSeverity: HIGH, ignore: [cve-2021-44906]}}\n", image: "ghcr.io/acme/app:1", allowed: true},
		{name: "high over MEDIUM", policy: "rules:\n  - {name: no-high, vulnerabilities: {maxSeverity: MEDIUM}}\n", image: "ghcr.io/acme/app:1",
			want: []string{"4 vulnerabilities above MEDIUM", "HIGH PYSEC-2023-192 in urllib3 1.26.12 (fixed in 1.26.17)"}},
		{name: "critical at max CRITICAL", policy: "rules:\n  - {name: anything-goes, vulnerabilities: {maxSeverity: CRITICAL}}\n", image: "ghcr.io/acme/app:1", allowed: true},
		{name: "warn mode allows with warning", policy: "rules:\n  - {name: no-critical, mode: warn, vulnerabilities: {}}\n", image: "ghcr.io/acme/app:1", allowed: true, warnings: 1,
			want: []string{`rule "no-critical"`, "GHSA-xvch-5gv4-984h"}},
		{name: "stale db", policy: "rules:\n  - {name: fresh-db, vulnerabilities: {maxSeverity: CRITICAL, dbMaxAge: 1h}}\n", image: "ghcr.io/acme/app:1",
			want: []string{`rule "fresh-db"`, "older than dbMaxAge"}},
		{name: "scoped out", policy: "rules:\n  - {name: no-critical, match: {images: ['docker.io/**']}, vulnerabilities: {}}\n", image: "ghcr.io/acme/app:1", allowed: true},
		{name: "namespace scoped out", policy: "rules:\n  - {name: no-critical, match: {namespaces: [prod]}, vulnerabilities: {}}\n", ns: "staging", image: "ghcr.io/acme/app:1", allowed: true},
		{name: "unsigned", policy: "rules:\n  - {name: signed, signatures: {keys: [release.pub]}}\n", image: "ghcr.io/acme/app:1", verify: &Violation{"no valid signature by a trusted key"},
			want: []string{`rule "signed" (signatures)`, "no valid signature"}},
		{name: "registry down fail-closed", policy: "rules:\n  - {name: signed, signatures: {keys: [release.pub]}}\n", image: "unreachable.example/app:1",
			want: []string{`rule "signed"`, "could not be checked", "connection refused", "fail-closed"}},
		{name: "registry down fail-open", policy: "rules:\n  - {name: signed, signatures: {keys: [release.pub]}}\n", ns: "dev-bob", image: "unreachable.example/app:1", allowed: true, warnings: 1,
			want: []string{"fail-open"}},
		{name: "registry not allowed", policy: "rules:\n  - {name: registries, registries: {allowed: [ghcr.io]}}\n", image: "docker.io/library/alpine:3",
			want: []string{`rule "registries"`, "registry index.docker.io is not allowed"}},
		{name: "digest pinning", policy: "rules:\n  - {name: pinned, digestPinning: {}}\n", image: "ghcr.io/acme/app:1",
			want: []string{`rule "pinned"`, "not pinned by digest"}},
		{name: "no base catalog", policy: "rules:\n  - {name: bases, baseImages: {allowed: ['alpine:*']}}\n", image: "ghcr.io/acme/app:1",
			want: []string{`rule "bases"`, "base image not identified"}},
		{name: "image config cel", policy: "rules:\n  - name: labels\n    cel:\n      checks:\n        - {id: ORG-IMG-1, title: images need a maintainer label, severity: LOW, target: imageconfig, expression: '!has(config.config.Labels) || !(\"maintainer\" in config.config.Labels)', message: no maintainer label}\n", image: "ghcr.io/acme/app:1",
			want: []string{`rule "labels"`, "ORG-IMG-1: no maintainer label"}},
		{name: "privileged pod", policy: "rules:\n  - {name: pss, podSecurity: {level: baseline}}\n", pod: "testdata/pods/privileged.yaml",
			want: []string{`rule "pss" (podSecurity)`, "violates Pod Security baseline", "BH-K8S-003 Privileged container"}},
		{name: "root under restricted", policy: "rules:\n  - {name: pss, podSecurity: {level: restricted}}\n", pod: "testdata/pods/root.yaml",
			want: []string{`rule "pss"`, "BH-K8S-022"}},
		{name: "root fine under baseline", policy: "rules:\n  - {name: pss, podSecurity: {level: baseline}}\n", pod: "testdata/pods/root.yaml", allowed: true},
		{name: "restricted pod passes", policy: "rules:\n  - {name: pss, podSecurity: {level: restricted}}\n", pod: "testdata/pods/restricted-pass.yaml", allowed: true},
		{name: "workload warn", policy: "rules:\n  - {name: limits, mode: warn, workload: {checks: [BH-K8S-102]}}\n", pod: "testdata/pods/restricted-pass.yaml", allowed: true, warnings: 1,
			want: []string{`rule "limits"`, "BH-K8S-102 No CPU limit"}},
		{name: "exempted", policy: "rules:\n  - {name: pss, podSecurity: {level: baseline}}\nexemptions:\n  - {rule: pss, namespaces: [ci], owner: ci-team, reason: builds need it, expires: 2999-01-01}\n", ns: "ci", pod: "testdata/pods/privileged.yaml", allowed: true},
		{name: "exemption elsewhere", policy: "rules:\n  - {name: pss, podSecurity: {level: baseline}}\nexemptions:\n  - {rule: pss, namespaces: [ci], owner: ci-team, reason: builds need it, expires: 2999-01-01}\n", ns: "prod", pod: "testdata/pods/privileged.yaml",
			want: []string{"BH-K8S-003"}},
		{name: "expired exemption", policy: "rules:\n  - {name: pss, podSecurity: {level: baseline}}\nexemptions:\n  - {rule: pss, owner: ci-team, reason: builds need it, expires: 2020-01-01}\n", pod: "testdata/pods/privileged.yaml", warnings: 1,
			want: []string{"BH-K8S-003"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("test.yaml", []byte(head+tc.policy), "testdata")
			if err != nil {
				t.Fatal(err)
			}
			e := &Engine{File: f, Facts: &demoFacts{scan: sc, verifyErr: tc.verify}}
			in := Input{Namespace: tc.ns}
			if tc.pod != "" {
				in.Object = pod(t, tc.pod, "ghcr.io/acme/app:1")
				in.Images = images(in.Object)
			} else {
				in.Images = []string{tc.image}
			}
			d := e.Evaluate(context.Background(), in)
			if d.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %s %q", d.Allowed, tc.allowed, d.Reason(), d.Warnings)
			}
			text := d.Reason()
			if tc.allowed {
				text = strings.Join(d.Warnings, "; ")
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in %q", w, text)
				}
			}
			if len(d.Warnings) != tc.warnings {
				t.Errorf("warnings %q, want %d", d.Warnings, tc.warnings)
			}
			if tc.name == "expired exemption" && !strings.Contains(d.Warnings[0], "expired on 2020-01-01: no longer exempting") {
				t.Errorf("warning %q", d.Warnings[0])
			}
			if tc.name == "exempted" && (d.Results[0].Exempted == nil || !strings.Contains(d.Results[0].Message, "exempted until 2999-01-01 by ci-team")) {
				t.Errorf("exempted result %+v", d.Results[0])
			}
		})
	}
}

func TestImageGlobs(t *testing.T) {
	for _, tc := range []struct {
		glob, s string
		want    bool
	}{
		{"ghcr.io/acme/**", "ghcr.io/acme/team/app", true},
		{"ghcr.io/acme/*", "ghcr.io/acme/team/app", false},
		{"ghcr.io/acme/*", "ghcr.io/acme/app", true},
		{"127.0.0.1:*", "127.0.0.1:5000", true},
		{"127.0.0.1:*/app", "127.0.0.1:5000/app", true},
		{"alpine:3.*", "alpine:3.20", true},
		{"alpine:3.*", "alpine:edge", false},
		{"ghcr.io", "ghcr.io.evil.example", false},
	} {
		if got := matchImage([]string{tc.glob}, tc.s); got != tc.want {
			t.Errorf("%s ~ %s = %v", tc.glob, tc.s, got)
		}
	}
	repo, reg, err := Repository("alpine:3.20")
	if err != nil || repo != "index.docker.io/library/alpine" || reg != "index.docker.io" {
		t.Errorf("Repository(alpine) = %s %s %v", repo, reg, err)
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/policy.yaml")
	f.Add(b)
	f.Add([]byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - {name: a, secrets: {}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, "testdata")
		if err == nil && (p.APIVersion != APIVersion || len(p.Rules) == 0) {
			t.Fatalf("accepted an invalid policy: %+v", p)
		}
	})
}

func BenchmarkEvaluate(b *testing.B) {
	sc := demo(b)
	f, err := Load("testdata/policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	e := &Engine{File: f, Facts: &demoFacts{scan: sc}}
	data, _ := os.ReadFile("testdata/pods/restricted-pass.yaml")
	objs, _ := kubernetes.ParseBytes("pod.yaml", data)
	in := Input{Namespace: "prod", Object: objs[0], Images: images(objs[0])}
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(context.Background(), in)
	}
}

// TestScanCache: a scan stored by digest is found again by a new Registry
// (a restarted webhook) from the disk cache, and the memory cache stays
// bounded.
func TestScanCache(t *testing.T) {
	sc := demo(t)
	dir := t.TempDir()
	r := &Registry{CacheDir: dir}
	r.store(sc, true)
	again := &Registry{CacheDir: dir}
	got := again.Cached(sc.Digest)
	if got == nil || got.Digest != sc.Digest || len(got.Findings) != len(sc.Findings) || got.Target.Name != sc.Target.Name {
		t.Fatalf("disk cache: %+v", got)
	}
	if again.Cached("sha256:0000000000000000000000000000000000000000000000000000000000000000") != nil {
		t.Error("a digest never scanned is cached")
	}
	// A stale scan (older than ScanTTL) is not used.
	old := *sc
	old.ScannedAt = time.Now().Add(-48 * time.Hour)
	stale := &Registry{CacheDir: t.TempDir()}
	stale.store(&old, true)
	if (&Registry{CacheDir: stale.CacheDir}).Cached(old.Digest) != nil {
		t.Error("a scan older than ScanTTL was used")
	}
	// Memory stays bounded however many digests pass.
	mem := &Registry{}
	for i := 0; i < 3*maxMemoryScans; i++ {
		s := *sc
		s.Digest = fmt.Sprintf("sha256:%064x", i)
		mem.store(&s, false)
	}
	if len(mem.scans) > maxMemoryScans {
		t.Errorf("%d scans in memory", len(mem.scans))
	}
}
