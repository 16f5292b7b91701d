package cel

import (
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
)

func TestLoadExample(t *testing.T) {
	p, err := LoadFile("testdata/checks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Checks) != 4 || len(p.ForTarget(Kubernetes)) != 2 || len(p.ForTarget(Dockerfile)) != 1 || len(p.ForTarget(ImageConfig)) != 1 {
		t.Fatalf("checks: %d", len(p.Checks))
	}
	if p.Checks[0].SeverityLevel() != finding.Medium {
		t.Errorf("severity %v", p.Checks[0].SeverityLevel())
	}
}

func TestEvalTargets(t *testing.T) {
	p, err := LoadFile("testdata/checks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// imageconfig: a v1.ConfigFile as JSON
	vars, err := ImageConfigVars(&v1.ConfigFile{Config: v1.Config{Labels: map[string]string{"a": "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.ForTarget(ImageConfig)[0].Eval(vars)
	if err != nil || len(got) != 1 {
		t.Errorf("imageconfig: %v %v", got, err)
	}
	vars, _ = ImageConfigVars(&v1.ConfigFile{Config: v1.Config{Labels: map[string]string{"org.opencontainers.image.source": "x"}}})
	if got, err := p.ForTarget(ImageConfig)[0].Eval(vars); err != nil || len(got) != 0 {
		t.Errorf("imageconfig with label: %v %v", got, err)
	}
	// dockerfile: the model's map form; lists of instructions give lines
	file := map[string]any{"stages": []any{map[string]any{"instructions": []any{
		map[string]any{"cmd": "run", "startLine": int64(3), "commands": []any{map[string]any{"args": []any{"npm", "install"}}}},
		map[string]any{"cmd": "run", "startLine": int64(4), "commands": []any{map[string]any{"args": []any{"npm", "install", "--ignore-scripts"}}}},
	}}}}
	got, err = p.ForTarget(Dockerfile)[0].Eval(DockerfileVars(file))
	if err != nil || len(got) != 1 || got[0].Line != 3 {
		t.Errorf("dockerfile: %v %v", got, err)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := map[string]string{
		"empty":          "",
		"no checks":      "checks: []",
		"unknown field":  "checks:\n- id: A\n  target: kubernetes\n  expression: 'true'\n  message: m\n  colour: red\n",
		"bad target":     "checks:\n- id: A\n  target: helm\n  expression: 'true'\n  message: m\n",
		"bad expression": "checks:\n- id: A\n  target: kubernetes\n  expression: 'containers.'\n  message: m\n",
		"wrong type":     "checks:\n- id: A\n  target: kubernetes\n  expression: '1 + 2'\n  message: m\n",
		"unknown var":    "checks:\n- id: A\n  target: imageconfig\n  expression: 'podSpec.x'\n  message: m\n",
		"bad severity":   "checks:\n- id: A\n  severity: huge\n  target: kubernetes\n  expression: 'true'\n  message: m\n",
		"bad id":         "checks:\n- id: 'a b'\n  target: kubernetes\n  expression: 'true'\n  message: m\n",
		"duplicate":      "checks:\n- {id: A, target: kubernetes, expression: 'true', message: m}\n- {id: A, target: kubernetes, expression: 'true', message: m}\n",
		"no message":     "checks:\n- {id: A, target: kubernetes, expression: 'true'}\n",
		"not yaml":       "checks: [",
	}
	for name, src := range cases {
		if _, err := Load("p.yaml", []byte(src)); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "p.yaml") {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
}

// TestCostLimit: an expression that explodes is stopped, not run to the end.
func TestCostLimit(t *testing.T) {
	p, err := Load("p.yaml", []byte(`checks:
- id: A
  target: kubernetes
  message: m
  expression: >
    lists.range(5000).map(i, lists.range(5000).map(j, i * j)).size() > 0
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Checks[0].Eval(map[string]any{"object": map[string]any{}, "kind": "", "apiVersion": "", "isWorkload": false,
		"podSpec": map[string]any{}, "podMeta": map[string]any{}, "podSpecPath": "", "containers": []any{}})
	if err == nil || !strings.Contains(err.Error(), "cost") {
		t.Errorf("want a cost limit error, got %v", err)
	}
}

func TestBuiltin(t *testing.T) {
	p, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Checks {
		if !strings.HasPrefix(c.ID, "BH-K8S-") || c.Target != Kubernetes {
			t.Errorf("built-in %s target %s", c.ID, c.Target)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, p := range []string{"testdata/checks.yaml", "builtin/kubernetes.yaml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("checks:\n- {id: A, target: kubernetes, expression: 'containers.all(c, c.name != \"\")', message: m}\n"))
	vars := map[string]any{"object": map[string]any{"kind": "Pod"}, "kind": "Pod", "apiVersion": "v1", "isWorkload": true,
		"podSpec": map[string]any{"hostPID": true}, "podMeta": map[string]any{}, "podSpecPath": "spec",
		"containers": []any{map[string]any{"name": "c", "path": "spec.containers[0]", "container": map[string]any{"image": "x"}, "securityContext": map[string]any{}}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, c := range p.ForTarget(Kubernetes) {
			_, _ = c.Eval(vars) // errors are fine; panics and hangs are not
		}
	})
}

func BenchmarkLoadBuiltin(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Builtin(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEval(b *testing.B) {
	p, err := Builtin()
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]any{"object": map[string]any{"kind": "Pod"}, "kind": "Pod", "apiVersion": "v1", "isWorkload": true,
		"podSpec": map[string]any{"hostPID": true}, "podMeta": map[string]any{}, "podSpecPath": "spec",
		"containers": []any{map[string]any{"name": "c", "type": "container", "path": "spec.containers[0]",
			"container": map[string]any{"image": "nginx:latest"}, "securityContext": map[string]any{"privileged": true}}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, c := range p.Checks {
			if _, err := c.Eval(vars); err != nil {
				b.Fatal(err)
			}
		}
	}
}
