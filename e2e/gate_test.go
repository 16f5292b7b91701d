package e2e

// The CI integrations run the way their platforms run them: the GitHub
// Action's steps as bash scripts with the environment and files a runner
// provides, the GitLab template's job script lines in one shell that stops
// at the first failure, and the pre-commit hooks' entries on the files their
// patterns select.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// gatePolicy needs no registry: manifests only.
const gatePolicy = `apiVersion: bulkhead.dev/v1
kind: Policy
metadata:
  name: ci
rules:
  - name: pod-security
    podSecurity:
      level: baseline
  - name: resource-limits
    mode: warn
    workload:
      checks: [BH-K8S-102]
`

// ciWorkspace is a checkout with the policy and two manifests: a pod that
// passes baseline and a privileged one (pod-security-admission's own
// fixtures).
func ciWorkspace(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "deploy"), 0o755)
	os.WriteFile(filepath.Join(ws, "bulkhead-policy.yaml"), []byte(gatePolicy), 0o644)
	copyFixture(t, filepath.Join(repoRoot, "policy/testdata/pods/restricted-pass.yaml"), filepath.Join(ws, "deploy/good.yaml"))
	copyFixture(t, filepath.Join(repoRoot, "policy/testdata/pods/privileged.yaml"), filepath.Join(ws, "deploy/privileged.yaml"))
	return ws
}

func copyFixture(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(to), 0o755)
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// actionStep is one step of a composite action.
type actionStep struct {
	Name  string            `json:"name"`
	ID    string            `json:"id"`
	If    string            `json:"if"`
	Shell string            `json:"shell"`
	Run   string            `json:"run"`
	Uses  string            `json:"uses"`
	Env   map[string]string `json:"env"`
	With  map[string]string `json:"with"`
}

type actionFile struct {
	Inputs map[string]struct {
		Default  string `json:"default"`
		Required bool   `json:"required"`
	} `json:"inputs"`
	Outputs map[string]struct {
		Value string `json:"value"`
	} `json:"outputs"`
	Runs struct {
		Using string       `json:"using"`
		Steps []actionStep `json:"steps"`
	} `json:"runs"`
}

// runner runs a composite action like the GitHub runner does: ${{ }}
// expressions over inputs and step outputs, each run step a bash script
// (bash --noprofile --norc -eo pipefail), GITHUB_OUTPUT/GITHUB_PATH/
// GITHUB_STEP_SUMMARY files read between steps.
type runner struct {
	t        *testing.T
	ws, tmp  string
	inputs   map[string]string
	outputs  map[string]map[string]string // step id -> outputs
	path     []string
	summary  string
	uploaded []string // SARIF files the upload step would send
}

var ghExpr = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

func (r *runner) value(expr string) string {
	expr = strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(expr, "'") && strings.HasSuffix(expr, "'"):
		return strings.Trim(expr, "'")
	case strings.HasPrefix(expr, "inputs."):
		return r.inputs[strings.TrimPrefix(expr, "inputs.")]
	case strings.HasPrefix(expr, "steps."):
		parts := strings.Split(expr, ".")
		if len(parts) == 4 && parts[2] == "outputs" {
			return r.outputs[parts[1]][parts[3]]
		}
	}
	r.t.Fatalf("expression %q not understood by the test runner", expr)
	return ""
}

func (r *runner) expand(s string) string {
	return ghExpr.ReplaceAllStringFunc(s, func(m string) string { return r.value(ghExpr.FindStringSubmatch(m)[1]) })
}

// cond evaluates an if: made of && of always(), X == 'v' and X != 'v'.
func (r *runner) cond(s string) bool {
	s = strings.TrimSpace(s)
	if m := ghExpr.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if s == "" {
		return true // no if: is success(): earlier steps all passed here
	}
	for _, term := range strings.Split(s, "&&") {
		term = strings.TrimSpace(term)
		switch {
		case term == "always()":
		case strings.Contains(term, "!="):
			a, b, _ := strings.Cut(term, "!=")
			if r.value(a) == r.value(b) {
				return false
			}
		case strings.Contains(term, "=="):
			a, b, _ := strings.Cut(term, "==")
			if r.value(a) != r.value(b) {
				return false
			}
		default:
			r.t.Fatalf("condition %q not understood by the test runner", term)
		}
	}
	return true
}

func readKV(path string) map[string]string {
	out := map[string]string{}
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out
}

// runAction runs action.yml with the given inputs; it returns the failed
// step's exit code (0 when every step passed).
func runAction(t *testing.T, ws string, with map[string]string) (*runner, int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a actionFile
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using %q", a.Runs.Using)
	}
	r := &runner{t: t, ws: ws, tmp: t.TempDir(), inputs: map[string]string{}, outputs: map[string]map[string]string{}}
	for name, in := range a.Inputs {
		r.inputs[name] = in.Default
		if v, ok := with[name]; ok {
			r.inputs[name] = v
		} else if in.Required {
			t.Fatalf("required input %s not given", name)
		}
	}
	summary := filepath.Join(r.tmp, "step_summary")
	for i, st := range a.Runs.Steps {
		if !r.cond(st.If) {
			continue
		}
		if st.Uses != "" {
			if !strings.HasPrefix(st.Uses, "github/codeql-action/upload-sarif@") {
				t.Fatalf("step %q uses %s: the test runner knows only upload-sarif", st.Name, st.Uses)
			}
			r.uploaded = append(r.uploaded, filepath.Join(ws, r.expand(st.With["sarif_file"])))
			continue
		}
		if st.Shell != "bash" {
			t.Fatalf("step %q: shell %q (composite run steps must name one; this action uses bash)", st.Name, st.Shell)
		}
		script := filepath.Join(r.tmp, fmt.Sprintf("step%d.sh", i))
		os.WriteFile(script, []byte(r.expand(st.Run)), 0o755)
		outFile, pathFile := filepath.Join(r.tmp, fmt.Sprintf("output%d", i)), filepath.Join(r.tmp, fmt.Sprintf("path%d", i))
		os.WriteFile(outFile, nil, 0o644)
		os.WriteFile(pathFile, nil, 0o644)
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir = ws
		env := []string{
			"CI=true", "GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=" + ws, "GITHUB_ACTION_PATH=" + repoRoot,
			"GITHUB_OUTPUT=" + outFile, "GITHUB_PATH=" + pathFile, "GITHUB_STEP_SUMMARY=" + summary,
			"GITHUB_ENV=" + filepath.Join(r.tmp, "env"), "RUNNER_TEMP=" + r.tmp, "RUNNER_OS=Linux",
			"HOME=" + os.Getenv("HOME"), "GOFLAGS=" + os.Getenv("GOFLAGS"), "GOCACHE=" + goEnvVar(t, "GOCACHE"), "GOMODCACHE=" + goEnvVar(t, "GOMODCACHE"),
			"GOTOOLCHAIN=local", "BULKHEAD_CACHE_DIR=" + os.Getenv("BULKHEAD_CACHE_DIR"),
			"PATH=" + strings.Join(append(append([]string{}, r.path...), os.Getenv("PATH")), string(os.PathListSeparator)),
		}
		for k, v := range st.Env {
			env = append(env, k+"="+r.expand(v))
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		t.Logf("step %q:\n%s", st.Name, out)
		if st.ID != "" {
			r.outputs[st.ID] = readKV(outFile)
		}
		pb, _ := os.ReadFile(pathFile)
		for _, p := range strings.Fields(string(pb)) {
			r.path = append([]string{p}, r.path...)
		}
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				sb, _ := os.ReadFile(summary)
				r.summary = string(sb)
				return r, ee.ExitCode()
			}
			t.Fatal(err)
		}
	}
	sb, _ := os.ReadFile(summary)
	r.summary = string(sb)
	return r, 0
}

func goEnvVar(t *testing.T, name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// sarifResults reads a SARIF file's rule ids and artifact locations.
func sarifResults(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Version != "2.1.0" || len(doc.Runs) != 1 {
		t.Fatalf("%s is not SARIF 2.1.0: %v", path, err)
	}
	var out []string
	for _, r := range doc.Runs[0].Results {
		uri := ""
		if len(r.Locations) > 0 {
			uri = r.Locations[0].PhysicalLocation.ArtifactLocation.URI
		}
		out = append(out, r.RuleID+" "+r.Level+" "+uri)
	}
	sort.Strings(out)
	return out
}

func TestGitHubAction(t *testing.T) {
	requireEnv(t)
	ws := ciWorkspace(t)
	// Allowed: every step passes, the SARIF (a warning only) is uploaded.
	r, code := runAction(t, ws, map[string]string{"targets": "deploy/good.yaml"})
	if code != 0 || r.outputs["gate"]["result"] != "allowed" {
		t.Fatalf("allowed run: exit %d, outputs %v", code, r.outputs["gate"])
	}
	if len(r.uploaded) != 1 || !strings.HasSuffix(r.uploaded[0], "bulkhead-gate.sarif") {
		t.Fatalf("uploaded %v", r.uploaded)
	}
	if got := sarifResults(t, r.uploaded[0]); strings.Join(got, ";") != "policy/resource-limits warning deploy/good.yaml" {
		t.Errorf("SARIF results %q", got)
	}
	if !strings.Contains(r.summary, "### bulkhead gate") || !strings.Contains(r.summary, "0 denied, 1 warnings") {
		t.Errorf("step summary:\n%s", r.summary)
	}
	// Denied: the SARIF is still uploaded, then the last step fails.
	r, code = runAction(t, ws, map[string]string{"targets": "deploy/good.yaml\ndeploy/privileged.yaml", "sarif": "out/gate.sarif"})
	if code != 1 || r.outputs["gate"]["result"] != "denied" || r.outputs["gate"]["status"] != "1" {
		t.Fatalf("denied run: exit %d, outputs %v", code, r.outputs["gate"])
	}
	if len(r.uploaded) != 1 {
		t.Fatalf("denied run uploaded %v", r.uploaded)
	}
	got := sarifResults(t, r.uploaded[0])
	if !contains(got, "policy/pod-security error deploy/privileged.yaml") {
		t.Errorf("SARIF results %q", got)
	}
	if !strings.Contains(r.summary, `DENY  rule "pod-security"`) {
		t.Errorf("step summary:\n%s", r.summary)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// gitlabJob is the part of a GitLab CI job the runner executes.
type gitlabJob struct {
	Extends      any               `json:"extends"`
	Image        string            `json:"image"`
	Variables    map[string]string `json:"variables"`
	BeforeScript []string          `json:"before_script"`
	Script       []string          `json:"script"`
	Artifacts    struct {
		When  string   `json:"when"`
		Paths []string `json:"paths"`
	} `json:"artifacts"`
}

// runGitLabJob runs a job of the template like a shell executor: global
// then job variables, CI_* variables, before_script and script lines in one
// bash that stops at the first failing line.
func runGitLabJob(t *testing.T, ws, job string, vars map[string]string, bin string) (string, int, gitlabJob) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "ci/gitlab/bulkhead.gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("template: %v", err)
	}
	var globals map[string]string
	json.Unmarshal(doc["variables"], &globals)
	var resolve func(name string) gitlabJob
	resolve = func(name string) gitlabJob {
		raw, ok := doc[name]
		if !ok {
			t.Fatalf("no job %s in the template", name)
		}
		var j gitlabJob
		if err := json.Unmarshal(raw, &j); err != nil {
			t.Fatalf("job %s: %v", name, err)
		}
		if parent, ok := j.Extends.(string); ok {
			p := resolve(parent)
			if j.Script == nil {
				j.Script = p.Script
			}
			if j.BeforeScript == nil {
				j.BeforeScript = p.BeforeScript
			}
			if j.Artifacts.Paths == nil {
				j.Artifacts = p.Artifacts
			}
			for k, v := range p.Variables {
				if _, ok := j.Variables[k]; !ok {
					if j.Variables == nil {
						j.Variables = map[string]string{}
					}
					j.Variables[k] = v
				}
			}
		}
		return j
	}
	j := resolve(job)
	var script strings.Builder
	script.WriteString("set -eo pipefail\n")
	for _, l := range append(append([]string{}, j.BeforeScript...), j.Script...) {
		fmt.Fprintf(&script, "echo '$ '%q\n%s\n", l, l)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-c", script.String())
	cmd.Dir = ws
	env := []string{"CI=true", "GITLAB_CI=true", "CI_PROJECT_DIR=" + ws, "CI_JOB_NAME=" + job, "HOME=" + os.Getenv("HOME"),
		"BULKHEAD_CACHE_DIR=" + os.Getenv("BULKHEAD_CACHE_DIR"), "PATH=" + filepath.Dir(bin) + ":" + os.Getenv("PATH")}
	for k, v := range globals {
		env = append(env, k+"="+v)
	}
	for k, v := range j.Variables {
		env = append(env, k+"="+v)
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code, j
}

func TestGitLabTemplate(t *testing.T) {
	requireEnv(t)
	bin := gateBinary(t)
	ws := ciWorkspace(t)
	out, code, job := runGitLabJob(t, ws, "bulkhead-gate", map[string]string{"BULKHEAD_TARGETS": "deploy/good.yaml"}, bin)
	if code != 0 {
		t.Fatalf("allowed job: exit %d\n%s", code, out)
	}
	if job.Artifacts.When != "always" {
		t.Errorf("artifacts.when %q: reports must be kept when the job fails", job.Artifacts.When)
	}
	for _, p := range job.Artifacts.Paths {
		if _, err := os.Stat(filepath.Join(ws, p)); err != nil {
			t.Errorf("artifact %s: %v", p, err)
		}
	}
	out, code, _ = runGitLabJob(t, ws, "bulkhead-gate", map[string]string{"BULKHEAD_TARGETS": "deploy/privileged.yaml deploy/good.yaml"}, bin)
	if code != 1 || !strings.Contains(out, `DENY  rule "pod-security"`) {
		t.Fatalf("denied job: exit %d\n%s", code, out)
	}
	var rep struct {
		Targets []struct {
			Target   string `json:"target"`
			Decision struct {
				Allowed bool `json:"allowed"`
			} `json:"decision"`
		} `json:"targets"`
	}
	b, _ := os.ReadFile(filepath.Join(ws, "gl-bulkhead-gate.json"))
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Targets) != 2 || rep.Targets[0].Decision.Allowed || !rep.Targets[1].Decision.Allowed {
		t.Errorf("JSON report: %v\n%s", err, b)
	}
	// Without targets the job says what to set.
	out, code, _ = runGitLabJob(t, ws, ".bulkhead-gate", nil, bin)
	if code != 2 || !strings.Contains(out, "set BULKHEAD_TARGETS") {
		t.Errorf("no targets: exit %d\n%s", code, out)
	}
}

// gateBinary is the bulkhead binary, as the platforms would install it.
func gateBinary(t *testing.T) string {
	t.Helper()
	bin := buildBulkhead(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "bulkhead")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	return link
}

type preCommitHook struct {
	ID            string `json:"id"`
	Entry         string `json:"entry"`
	Language      string `json:"language"`
	Files         string `json:"files"`
	Exclude       string `json:"exclude"`
	PassFilenames *bool  `json:"pass_filenames"`
}

func TestPreCommitHooks(t *testing.T) {
	requireEnv(t)
	bin := gateBinary(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, ".pre-commit-hooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var hooks []preCommitHook
	if err := yaml.Unmarshal(b, &hooks); err != nil {
		t.Fatal(err)
	}
	// A repository with Dockerfiles and manifests, good and bad (real
	// fixtures: KICS's negative cases, docker-library's golang image which
	// sets no USER, pod-security-admission's pods), plus files no hook
	// should take.
	ws := t.TempDir()
	dfs := filepath.Join(repoRoot, "config/dockerfile/testdata")
	files := map[string]string{
		"Dockerfile":                  filepath.Join(dfs, "kics/missing_user_instruction/negative1.dockerfile"),
		"svc/api.Dockerfile":          filepath.Join(dfs, "kics/last_user_is_root/negative1.dockerfile"),
		"images/golang/Containerfile": filepath.Join(dfs, "official/golang-1.23-alpine3.21.Dockerfile"),
		"deploy/good.yaml":            filepath.Join(repoRoot, "policy/testdata/pods/restricted-pass.yaml"),
		"deploy/privileged.yaml":      filepath.Join(repoRoot, "policy/testdata/pods/privileged.yaml"),
		".pre-commit-hooks.yaml":      filepath.Join(repoRoot, ".pre-commit-hooks.yaml"),
		"README.md":                   filepath.Join(repoRoot, "README.md"),
	}
	for to, from := range files {
		copyFixture(t, from, filepath.Join(ws, to))
	}
	var all []string
	for f := range files {
		all = append(all, f)
	}
	sort.Strings(all)
	byID := map[string]preCommitHook{}
	for _, h := range hooks {
		byID[h.ID] = h
		if h.Language != "golang" || (h.PassFilenames != nil && !*h.PassFilenames) {
			t.Errorf("hook %s: language %s, pass_filenames %v", h.ID, h.Language, h.PassFilenames)
		}
	}
	// selected applies files/exclude as pre-commit does (re.search).
	selected := func(h preCommitHook, names []string) []string {
		inc := regexp.MustCompile(h.Files)
		var exc *regexp.Regexp
		if h.Exclude != "" {
			exc = regexp.MustCompile(h.Exclude)
		}
		var out []string
		for _, n := range names {
			if inc.MatchString(n) && (exc == nil || !exc.MatchString(n)) {
				out = append(out, n)
			}
		}
		return out
	}
	run := func(h preCommitHook, names []string) (string, int) {
		args := append(strings.Fields(h.Entry)[1:], names...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = ws
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	for _, tc := range []struct {
		hook     string
		selected []string
		good     []string
		bad      []string
		want     string
	}{
		{"bulkhead-dockerfile", []string{"Dockerfile", "images/golang/Containerfile", "svc/api.Dockerfile"},
			[]string{"Dockerfile", "svc/api.Dockerfile"}, []string{"images/golang/Containerfile"}, "BH-DF-001"},
		{"bulkhead-kubernetes", []string{"deploy/good.yaml", "deploy/privileged.yaml"},
			[]string{"deploy/good.yaml"}, []string{"deploy/privileged.yaml"}, "BH-K8S-003"},
	} {
		h, ok := byID[tc.hook]
		if !ok {
			t.Fatalf("no hook %s", tc.hook)
		}
		if got := selected(h, all); strings.Join(got, ",") != strings.Join(tc.selected, ",") {
			t.Errorf("%s selects %v, want %v", tc.hook, got, tc.selected)
		}
		if out, code := run(h, tc.good); code != 0 {
			t.Errorf("%s on %v: exit %d\n%s", tc.hook, tc.good, code, out)
		}
		if out, code := run(h, tc.selected); code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%s on %v: exit %d, want 1 with %s\n%s", tc.hook, tc.selected, code, tc.want, out)
		}
		if out, code := run(h, tc.bad); code != 1 {
			t.Errorf("%s on %v: exit %d, want 1\n%s", tc.hook, tc.bad, code, out)
		}
	}
}
