package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	celDockerfileCheck = `  - id: ORG-DF-1
    title: the final stage must set a USER
    target: dockerfile
    expression: '!file.stages[size(file.stages)-1].instructions.exists(i, i.cmd == "user")'
    message: no USER in the final stage
`
	celKubernetesCheck = `  - id: ORG-K8S-1
    title: pods need a priority class
    target: kubernetes
    expression: isWorkload && !has(podSpec.priorityClassName)
    message: no priorityClassName
`
	celImageChecks = `  - id: ORG-IMG-1
    title: images must not run as the user app
    severity: HIGH
    target: imageconfig
    expression: 'has(config.config.User) && config.config.User == "app" ? ["config.User"] : []'
    message: the image runs as app
  - id: ORG-IMG-2
    title: images need a version label
    target: imageconfig
    expression: '!has(config.config.Labels) || !("org.opencontainers.image.version" in config.config.Labels)'
    message: no version label
`
)

func writePolicy(t *testing.T, checks ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "checks.yaml")
	if err := os.WriteFile(p, []byte("checks:\n"+strings.Join(checks, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type jsonFindings struct {
	Findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Location struct {
			Path string `json:"path"`
		} `json:"location"`
	} `json:"findings"`
}

func findingIDs(t *testing.T, out []byte) map[string]string {
	t.Helper()
	var doc jsonFindings
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	ids := map[string]string{}
	for _, f := range doc.Findings {
		ids[f.ID] = f.Location.Path
	}
	return ids
}

// TestConfigPolicyImageConfigChecks: `bulkhead config --policy` used to
// load a file's imageconfig checks and never run them, without a word. They
// need an image: a file that also has checks config runs gives a warning
// naming them and where they run; a file with none fails the run.
func TestConfigPolicyImageConfigChecks(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM alpine:3.20\nRUN true\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	mixed := writePolicy(t, celDockerfileCheck, celKubernetesCheck, celImageChecks)
	var out, errb bytes.Buffer
	if code := Main([]string{"config", "-f", "json", "--policy", mixed, dir}, &out, &errb); code != 0 {
		t.Fatalf("mixed policy: exit %d: %s", code, errb.String())
	}
	if _, ok := findingIDs(t, out.Bytes())["ORG-DF-1"]; !ok {
		t.Errorf("the dockerfile check did not run: %s", out.String())
	}
	for _, want := range []string{"does not run 2 checks of target imageconfig (ORG-IMG-1, ORG-IMG-2)", "bulkhead image --policy"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	if strings.Contains(errb.String(), "ORG-DF-1") || strings.Contains(errb.String(), "ORG-K8S-1") {
		t.Errorf("a check config runs is named as not run:\n%s", errb.String())
	}

	only := writePolicy(t, celImageChecks)
	out.Reset()
	errb.Reset()
	if code := Main([]string{"config", "-f", "json", "--policy", only, dir}, &out, &errb); code != 1 {
		t.Fatalf("imageconfig-only policy: exit %d, want 1: %s", code, errb.String())
	}
	for _, want := range []string{"no check of target dockerfile or kubernetes", "ORG-IMG-1, ORG-IMG-2", "bulkhead image --policy"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}

	// the checks run with the misconfig scanner: without it, say so
	errb.Reset()
	if code := Main([]string{"config", "--scanners", "secret", "--policy", mixed, dir}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "add misconfig to --scanners") {
		t.Errorf("--scanners secret --policy: exit %d: %s", code, errb.String())
	}
}

// TestImagePolicyRunsImageConfigChecks: `bulkhead image --policy` runs the
// imageconfig checks on the image's configuration, names the checks of
// other targets in a warning, and rejects a file with no imageconfig check.
func TestImagePolicyRunsImageConfigChecks(t *testing.T) {
	ref := "oci:" + plantedImage(t) // User "app", label org.opencontainers.image.version

	pol := writePolicy(t, celDockerfileCheck, celImageChecks)
	var out, errb bytes.Buffer
	if code := Main([]string{"image", "--scanners", "misconfig", "-f", "json", "--temp-dir", t.TempDir(), "--policy", pol, ref}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	ids := findingIDs(t, out.Bytes())
	if got := ids["ORG-IMG-1"]; got != "image config:config.User" {
		t.Errorf("ORG-IMG-1 at %q, want image config:config.User (findings %v)", got, ids)
	}
	if _, ok := ids["ORG-IMG-2"]; ok {
		t.Errorf("ORG-IMG-2 reported on an image with the label")
	}
	if _, ok := ids["BH-IMG-002"]; !ok {
		t.Errorf("the built-in image audit no longer runs next to the policy: %v", ids)
	}
	if !strings.Contains(errb.String(), "does not run 1 check of target dockerfile (ORG-DF-1)") {
		t.Errorf("no warning for the dockerfile check:\n%s", errb.String())
	}

	errb.Reset()
	if code := Main([]string{"image", "-q", "--scanners", "misconfig", "--temp-dir", t.TempDir(), "--policy", writePolicy(t, celDockerfileCheck), ref}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "no check of target imageconfig") || !strings.Contains(errb.String(), "bulkhead config") {
		t.Errorf("dockerfile-only policy on an image: exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"image", "-q", "--scanners", "secret", "--temp-dir", t.TempDir(), "--policy", pol, ref}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "add misconfig to --scanners") {
		t.Errorf("--scanners secret --policy: exit %d: %s", code, errb.String())
	}
}
