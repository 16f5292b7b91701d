package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/bulkhead-sec/bulkhead"

// Heavy dependencies a checker of files must not pull in: the registry
// client, the rpm database reader and the SQLite it brings.
var heavy = []string{
	"github.com/google/go-containerregistry/pkg/v1/remote",
	"github.com/anchore/go-rpmdb",
	"modernc.org/sqlite",
}

// rules: the packages under a prefix must not depend on any of the
// forbidden ones (each a package or a folder of packages).
var rules = []struct {
	under     string
	forbidden []string
	why       string
}{
	{
		under: module + "/config",
		forbidden: append([]string{
			module + "/policy", module + "/admission", module + "/internal/cli",
			module + "/image", module + "/scan", module + "/catalog",
		}, heavy...),
		why: "config/ checks files; it sits below policy/ and needs no image, registry or package database",
	},
	{
		under: module + "/cel",
		forbidden: append([]string{
			module + "/config", module + "/policy", module + "/admission", module + "/internal/cli",
			module + "/image", module + "/scan", module + "/catalog",
		}, heavy...),
		why: "cel/ is the leaf both config/ and policy/ use",
	},
	{
		under:     module + "/pipeline",
		forbidden: []string{module + "/internal/cli", module + "/policy", module + "/admission"},
		why:       "pipeline/ is the application layer the front ends (commands, policy facts, webhook, server) call",
	},
	{
		under:     module + "/runtime/alert",
		forbidden: []string{module + "/internal/cli"},
		why:       "runtime/alert is the runtime alert pipeline the runtime commands and the server/sensor to come both call",
	},
}

// celAllowed is every package of the module cel/ may depend on (diag
// through inventory: a leaf of the standard library, see TestDiagIsLeaf).
var celAllowed = map[string]bool{module + "/finding": true, module + "/inventory": true, module + "/diag": true}

type pkg struct {
	ImportPath string
	Deps       []string
	Error      *struct{ Err string }
}

// graph lists every package of the module with its transitive
// dependencies (not its tests'), for the host platform.
func graph(t *testing.T) []pkg {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-e", "-json=ImportPath,Deps,Error", module+"/...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	return pkgs
}

// in reports whether path is prefix or a package below it.
func in(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func TestLayers(t *testing.T) {
	pkgs := graph(t)
	used := map[string]bool{} // every package some package depends on, or is
	for _, p := range pkgs {
		used[p.ImportPath] = true
		for _, d := range p.Deps {
			used[d] = true
		}
	}
	for _, r := range rules {
		checked := 0
		for _, p := range pkgs {
			if !in(p.ImportPath, r.under) {
				continue
			}
			checked++
			for _, d := range p.Deps {
				for _, f := range r.forbidden {
					if in(d, f) {
						t.Errorf("%s depends on %s (%s): move the shared code into a lower package", p.ImportPath, d, r.why)
					}
				}
			}
		}
		if checked == 0 {
			t.Errorf("no package under %s: update the rule", r.under)
		}
		// A forbidden name nothing in the module uses would make the rule
		// vacuous (a typo, a moved package): each must exist in the graph.
		for _, f := range r.forbidden {
			found := false
			for u := range used {
				if in(u, f) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("rule for %s: %s is not in the module's import graph; fix the name", r.under, f)
			}
		}
	}
}

// TestCELIsLeaf: of the module, cel/ uses only the finding types.
func TestCELIsLeaf(t *testing.T) {
	for _, p := range graph(t) {
		if !in(p.ImportPath, module+"/cel") {
			continue
		}
		for _, d := range p.Deps {
			if in(d, module) && !in(d, module+"/cel") && !celAllowed[d] {
				t.Errorf("%s depends on %s; cel/ is a leaf (allowed: finding, inventory, diag)", p.ImportPath, d)
			}
		}
	}
}

// TestDiagIsLeaf: diag/ depends on nothing of the module, so every layer,
// the walk and cel/ included, can make and carry diagnostics.
func TestDiagIsLeaf(t *testing.T) {
	found := false
	for _, p := range graph(t) {
		if !in(p.ImportPath, module+"/diag") {
			continue
		}
		found = true
		for _, d := range p.Deps {
			if in(d, module) {
				t.Errorf("%s depends on %s; diag/ is a leaf of the standard library", p.ImportPath, d)
			}
		}
	}
	if !found {
		t.Error("no diag package in the import graph")
	}
}

// TestOnlyMainImportsCLI: internal/cli is the top; only cmd/bulkhead
// builds on it.
func TestOnlyMainImportsCLI(t *testing.T) {
	var users []string
	for _, p := range graph(t) {
		for _, d := range p.Deps {
			if d == module+"/internal/cli" {
				users = append(users, p.ImportPath)
			}
		}
	}
	sort.Strings(users)
	if len(users) == 0 {
		t.Fatal("nothing depends on internal/cli; update the test")
	}
	for _, u := range users {
		if u != module+"/cmd/bulkhead" {
			t.Errorf("%s depends on internal/cli; only cmd/bulkhead may", u)
		}
	}
}
