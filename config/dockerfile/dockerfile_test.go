package dockerfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
)

func lintString(t testing.TB, src string) []finding.Finding {
	t.Helper()
	f, err := Parse("Dockerfile", strings.NewReader(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Lint(f, Options{})
}

// hits renders findings as "ID:line" for comparison.
func hits(fs []finding.Finding, only ...string) []string {
	keep := map[string]bool{}
	for _, id := range only {
		keep[id] = true
	}
	var out []string
	for _, f := range fs {
		if len(only) > 0 && !keep[f.ID] {
			continue
		}
		s := fmt.Sprintf("%s:%d", f.ID, f.Location.StartLine)
		if f.Suppressed != nil {
			s += "(ignored)"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// TestOfficialDockerfiles asserts the exact findings on real official-image
// Dockerfiles: every one below is a true statement about the file.
func TestOfficialDockerfiles(t *testing.T) {
	cases := map[string][]string{
		// Multi-stage: the build stage's lack of USER does not count; chmod
		// -R 1777 "$GOPATH" is the sticky /tmp pattern and is not flagged;
		// the pinned sha256 values are not secrets.
		"golang-1.23-alpine3.21.Dockerfile": {"BH-DF-001:113", "BH-DF-008:113", "BH-DF-008:7", "BH-DF-018:113"},
		// The server install (line 71) really does omit
		// --no-install-recommends; "chmod 1777 /var/lib/mysql" is sticky;
		// MYSQL_RANDOM_ROOT_PASSWORD appears only in a comment.
		"mysql-8.0-debian.Dockerfile": {"BH-DF-001:7", "BH-DF-008:7", "BH-DF-014:71", "BH-DF-018:7"},
	}
	for name, want := range cases {
		f, err := ParseFile(filepath.Join("testdata/official", name))
		if err != nil {
			t.Fatal(err)
		}
		got := hits(Lint(f, Options{}))
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %v\nwant %v", name, got, want)
		}
	}
}

func TestChecks(t *testing.T) {
	cases := []struct {
		name string
		src  string
		ids  []string // checks to look at
		want []string
	}{
		{"no user", "FROM debian:12\nRUN true\n", []string{"BH-DF-001", "BH-DF-002"}, []string{"BH-DF-001:1"}},
		{"user in builder only", "FROM golang:1.22 AS b\nUSER app\nFROM debian:12\nCOPY --from=b /x /x\n", []string{"BH-DF-001"}, []string{"BH-DF-001:3"}},
		{"user inherited from stage", "FROM debian:12 AS base\nUSER 1000\nFROM base\nRUN true\n", []string{"BH-DF-001", "BH-DF-002"}, nil},
		{"root last", "FROM debian:12\nUSER app\nRUN x\nUSER 0:0\n", []string{"BH-DF-001", "BH-DF-002"}, []string{"BH-DF-002:4"}},
		{"root then app", "FROM debian:12\nUSER root\nRUN x\nUSER app\n", []string{"BH-DF-002"}, nil},
		{"scratch", "FROM scratch\nCOPY app /\n", []string{"BH-DF-001", "BH-DF-022"}, []string{"BH-DF-022:1"}},
		{"sudo exec form", "FROM d:1\nRUN [\"sudo\", \"ls\"]\nRUN apt-get install -y sudo\n", []string{"BH-DF-003"}, []string{"BH-DF-003:2"}},
		{"add url", "FROM d:1\nADD https://x/y.tgz /y\nADD --checksum=sha256:abc https://x/z /z\nADD app.tar.gz /\nADD a.py /\n", []string{"BH-DF-004", "BH-DF-005"}, []string{"BH-DF-004:2", "BH-DF-005:5"}},
		{"from pinning", "ARG V=3.20\nFROM alpine:${V} AS a\nFROM alpine\nFROM alpine:latest\nFROM a\nFROM alpine@sha256:0123456789012345678901234567890123456789012345678901234567890123\nFROM $UNKNOWN\nFROM later\nFROM registry:5000/team/app:1.2 AS later\n",
			[]string{"BH-DF-006", "BH-DF-007", "BH-DF-008"},
			[]string{"BH-DF-006:3", "BH-DF-006:8", "BH-DF-007:4", "BH-DF-008:2", "BH-DF-008:9"}},
		{"secrets", "FROM d:1\nENV DB_PASSWORD=s3cr3tPassw0rd GPG_KEYS=ABCDEF PASSWORD_FILE=/run/secrets/p\nARG GITHUB_TOKEN\nARG API_KEY=${KEY}\nENV AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nENV MYSQL_ALLOW_EMPTY_PASSWORD=yes\nLABEL x=ghp_0123456789abcdefghijABCDEFGHIJ012345\n",
			[]string{"BH-DF-009", "BH-DF-010", "BH-DF-011"},
			[]string{"BH-DF-009:5", "BH-DF-009:7", "BH-DF-010:2", "BH-DF-011:3"}},
		{"curl pipe", "FROM d:1\nRUN curl -fsSL https://get.x | sh\nRUN wget -qO- https://x | sudo bash -s --\nRUN sh -c \"$(curl -fsSL https://x)\"\nRUN bash <(curl -s https://x)\nRUN curl -o f https://x | tar x\nRUN curl https://x | python3 -\n",
			[]string{"BH-DF-012"}, []string{"BH-DF-012:2", "BH-DF-012:3", "BH-DF-012:4", "BH-DF-012:5", "BH-DF-012:7"}},
		{"apt hygiene", "FROM d:1\nRUN apt-get update && apt-get install -y --no-install-recommends a && rm -rf /var/lib/apt/lists/*\nRUN apt-get install a\nRUN apt-get -o Dpkg::Options::=--force-confold install -qq b\nRUN --mount=type=cache,target=/var/lib/apt apt-get install -y --no-install-recommends c\n",
			[]string{"BH-DF-013", "BH-DF-014", "BH-DF-015"},
			[]string{"BH-DF-013:3", "BH-DF-014:3", "BH-DF-014:4", "BH-DF-015:3", "BH-DF-015:4"}},
		{"apk pip", "FROM d:1\nRUN apk add --no-cache a\nRUN apk add b && rm -rf /var/cache/apk/*\nRUN apk --update add c\nRUN pip install x\nRUN python3 -m pip install --no-cache-dir y\nENV PIP_NO_CACHE_DIR=1\nRUN pip3 install z\n",
			[]string{"BH-DF-016", "BH-DF-017"}, []string{"BH-DF-016:4", "BH-DF-017:5"}},
		{"healthcheck inherited", "FROM d:1 AS base\nHEALTHCHECK CMD true\nFROM base\n", []string{"BH-DF-018"}, nil},
		{"expose", "FROM d:1\nEXPOSE 8080 22/tcp\nEXPOSE 20-25\nEXPOSE 2222\n", []string{"BH-DF-019"}, []string{"BH-DF-019:2", "BH-DF-019:3"}},
		{"chmod", "FROM d:1\nRUN chmod 777 /a\nRUN chmod -R 0777 /b\nRUN chmod 1777 /tmp\nRUN chmod a+rwx /c\nRUN chmod o+w,+t /d\nRUN chmod 755 /e && chmod +x /f\nRUN chmod 666 /g\n",
			[]string{"BH-DF-020"}, []string{"BH-DF-020:2", "BH-DF-020:3", "BH-DF-020:5", "BH-DF-020:8"}},
		{"heredoc run", "FROM d:1\nRUN <<EOF\nset -e\ncurl -fsSL https://x | bash\nEOF\n", []string{"BH-DF-012"}, []string{"BH-DF-012:2"}},
		{"inline ignore", "FROM d:1\n# bulkhead:ignore:BH-DF-019\nEXPOSE 22\n# bulkhead:ignore:BH-DF-003,BH-DF-020 vendor script needs it\nRUN sudo chmod 777 /x\n",
			[]string{"BH-DF-019", "BH-DF-003", "BH-DF-020"}, []string{"BH-DF-003:5(ignored)", "BH-DF-019:3(ignored)", "BH-DF-020:5(ignored)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := hits(lintString(t, c.src), c.ids...)
			want := append([]string{}, c.want...)
			sort.Strings(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestCopyContextNeedsDockerignore(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM d:1\nCOPY . /src\nCOPY --from=b . /x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lint := func() []string {
		f, err := ParseFile(df)
		if err != nil {
			t.Fatal(err)
		}
		return hits(Lint(f, Options{}), "BH-DF-021")
	}
	if got := lint(); fmt.Sprint(got) != "[BH-DF-021:2]" {
		t.Errorf("without .dockerignore: %v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile.dockerignore"), []byte(".git\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := lint(); len(got) != 0 {
		t.Errorf("with Dockerfile.dockerignore: %v", got)
	}
	// From stdin nobody knows: no finding.
	if got := hits(lintString(t, "FROM d:1\nCOPY . /src\n"), "BH-DF-021"); len(got) != 0 {
		t.Errorf("stdin: %v", got)
	}
}

func TestOptions(t *testing.T) {
	f, err := Parse("Dockerfile", strings.NewReader("FROM alpine:3.20\nUSER app\nHEALTHCHECK NONE\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs := Lint(f, Options{Severity: map[string]finding.Severity{"BH-DF-008": finding.High}})
	if len(fs) != 1 || fs[0].ID != "BH-DF-008" || fs[0].Severity != finding.High {
		t.Fatalf("severity override: %+v", fs)
	}
	if fs[0].Location.StartLine != 1 || fs[0].Fix == "" || len(fs[0].References) != 1 || fs[0].Kind != finding.KindMisconfiguration {
		t.Errorf("finding fields: %+v", fs[0])
	}
	if fs := Lint(f, Options{Disable: []string{"bh-df-008"}}); len(fs) != 0 {
		t.Errorf("disable: %+v", fs)
	}
}

// TestModelMap checks the documented shape CEL reads.
func TestModelMap(t *testing.T) {
	f, err := Parse("Dockerfile", strings.NewReader("ARG V=1\nFROM --platform=linux/amd64 golang:${V} AS build\nRUN CGO_ENABLED=0 go build -o /app . | tee log\nFROM build\nCOPY --from=build --chown=1:1 /app /app\nENV A=\"b c\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := f.Map()
	stages := m["stages"].([]any)
	if len(stages) != 2 {
		t.Fatalf("stages: %v", stages)
	}
	s0 := stages[0].(map[string]any)
	if s0["image"] != "golang:1" || s0["name"] != "build" || s0["platform"] != "linux/amd64" || s0["baseStage"] != int64(-1) || s0["final"] != false {
		t.Errorf("stage 0: %v", s0)
	}
	run := s0["instructions"].([]any)[0].(map[string]any)
	cmds := run["commands"].([]any)
	c0 := cmds[0].(map[string]any)
	if fmt.Sprint(c0["args"]) != "[go build -o /app .]" || fmt.Sprint(c0["assigns"]) != "[CGO_ENABLED=0]" || c0["pipeline"] == int64(0) || fmt.Sprint(c0["pipeTo"]) != "[tee log]" {
		t.Errorf("command: %v", c0)
	}
	s1 := stages[1].(map[string]any)
	if s1["baseStage"] != int64(0) || s1["final"] != true {
		t.Errorf("stage 1: %v", s1)
	}
	ins := s1["instructions"].([]any)
	cp := ins[0].(map[string]any)
	if fl := cp["flags"].(map[string]any); fl["from"] != "build" || fl["chown"] != "1:1" {
		t.Errorf("flags: %v", fl)
	}
	env := ins[1].(map[string]any)["keyValues"].([]any)[0].(map[string]any)
	if env["key"] != "A" || env["value"] != "b c" {
		t.Errorf("env: %v", env)
	}
	if _, err := json.Marshal(m); err != nil {
		t.Error(err)
	}
}

// TestParseCorpus: every buildkit parser case parses (or fails with an
// error, never a panic) and lints.
func TestParseCorpus(t *testing.T) {
	files, _ := filepath.Glob("testdata/buildkit/*.Dockerfile")
	if shared := testcorpus.Dir(); shared != "" {
		more, _ := filepath.Glob(filepath.Join(shared, "dockerfiles/buildkit-parser-testfiles/*/*/Dockerfile"))
		files = append(files, more...)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files", len(files))
	}
	ok := 0
	for _, p := range files {
		f, err := ParseFile(p)
		if err != nil {
			if !strings.Contains(p, "negative") {
				t.Errorf("%s: %v", p, err)
			}
			continue
		}
		Lint(f, Options{})
		f.Map()
		ok++
	}
	t.Logf("%d/%d files parsed and linted", ok, len(files))
}

func TestBadInput(t *testing.T) {
	if _, err := Parse("x", bytes.NewReader([]byte("FROM a\x00"))); err == nil || !strings.Contains(err.Error(), "binary") {
		t.Errorf("binary: %v", err)
	}
	big := bytes.Repeat([]byte("RUN true\n"), MaxSize/9+10)
	if _, err := Parse("x", bytes.NewReader(big)); err == nil {
		t.Error("oversize file accepted")
	}
	if _, err := ParseFile("testdata/does-not-exist"); err == nil {
		t.Error("missing file accepted")
	}
	// Empty and comment-only files are fine and have no findings.
	for _, src := range []string{"", "# just a comment\n"} {
		if fs := lintString(t, src); len(fs) != 0 {
			t.Errorf("%q: %v", src, fs)
		}
	}
}

func FuzzLint(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/official/*")
	more, _ := filepath.Glob("testdata/buildkit/*.Dockerfile")
	kics, _ := filepath.Glob("testdata/kics/*/positive1.dockerfile")
	for _, p := range append(append(seeds, more...), kics...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		df, err := Parse("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, fd := range Lint(df, Options{}) {
			if fd.Location == nil || fd.Location.StartLine < 0 || fd.ID == "" {
				t.Fatalf("bad finding %+v", fd)
			}
		}
		df.Map()
	})
}

func FuzzShellCommands(f *testing.F) {
	for _, s := range []string{"curl -fsSL x | sh", "a && b || c; d | e | f", "if x; then y; fi", "sh -c \"$(wget -qO- x)\"", "echo 'unterminated", "$(("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range ShellCommands(s) {
			c.Program()
		}
	})
}

func BenchmarkLint(b *testing.B) {
	var srcs [][]byte
	for _, p := range []string{"testdata/official/golang-1.23-alpine3.21.Dockerfile", "testdata/official/mysql-8.0-debian.Dockerfile", "testdata/buildkit/nginx.Dockerfile", "testdata/buildkit/znc.Dockerfile"} {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, data)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src := srcs[i%len(srcs)]
		f, err := Parse("Dockerfile", bytes.NewReader(src))
		if err != nil {
			b.Fatal(err)
		}
		Lint(f, Options{})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "dockerfiles/s")
}
