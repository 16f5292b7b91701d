// Package cel runs custom checks written in CEL (cel.dev/cel-go) over the
// objects bulkhead parses: Kubernetes manifests, Dockerfiles and image
// configurations.
//
// A policy file is YAML:
//
//	checks:
//	  - id: ORG-K8S-001
//	    title: Pods must set a priority class
//	    severity: MEDIUM
//	    target: kubernetes           # kubernetes | dockerfile | imageconfig
//	    expression: isWorkload && !has(podSpec.priorityClassName)
//	    message: the pod has no priorityClassName
//	    fix: set spec.priorityClassName
//	    link: https://example.com/policy#priority
//
// Expressions are compiled once, when the file is loaded, and evaluated per
// object with a cost limit. An expression yields either a bool (true: the
// object fails, reported on the object) or a list, one finding per element:
// a string is a field path (kubernetes: "spec.containers[0].image"), an int
// a line, a map with startLine (a Dockerfile instruction) its line.
//
// A check runs where its target is scanned: dockerfile and kubernetes
// checks in bulkhead config, imageconfig checks in bulkhead image --policy,
// kubernetes and imageconfig checks in a gate/admission policy's cel rule.
//
// Variables by target:
//
//	kubernetes   object       the object as decoded from its JSON form
//	             kind, apiVersion  strings
//	             isWorkload   bool: the object runs a pod
//	             podSpec      the pod spec (a Pod's spec, a template's spec; {} otherwise)
//	             podMeta      the pod's metadata ({} otherwise)
//	             podSpecPath  string: the pod spec's field path ("spec.template.spec")
//	             containers   list of {name, type ("container", "initContainer",
//	                          "ephemeralContainer"), path, container (as written),
//	                          securityContext (the pod's merged in, as the kubelet does)}
//	dockerfile   file         the model config/dockerfile documents
//	imageconfig  config       the image's v1.ConfigFile as JSON (config.config.User,
//	                          config.config.Env, config.config.Labels, config.history, ...)
package cel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"go.yaml.in/yaml/v3"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// Target is the kind of object a check reads.
type Target string

const (
	Kubernetes  Target = "kubernetes"
	Dockerfile  Target = "dockerfile"
	ImageConfig Target = "imageconfig"
)

// Limits on what a policy may cost.
const (
	// DefaultCostLimit bounds one evaluation (CEL's abstract cost units,
	// about one per visited element): a check that walks every container
	// of a large pod a few times stays far below it.
	DefaultCostLimit = 1_000_000
	maxPolicySize    = 4 << 20
	maxExpression    = 16 << 10
	maxChecks        = 10_000
)

// Check is one check of a policy file.
type Check struct {
	ID         string `yaml:"id"`
	Title      string `yaml:"title"`
	Severity   string `yaml:"severity"`
	Target     Target `yaml:"target"`
	Expression string `yaml:"expression"`
	Message    string `yaml:"message"`
	Fix        string `yaml:"fix"`
	Link       string `yaml:"link"`

	severity finding.Severity
	prog     cel.Program
}

// SeverityLevel is the parsed severity.
func (c *Check) SeverityLevel() finding.Severity { return c.severity }

// Policy is a set of compiled checks.
type Policy struct {
	// Source names the file the checks came from.
	Source string
	Checks []*Check
}

type file struct {
	Checks []*Check `yaml:"checks"`
}

var idPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`) })

// LoadFile reads and compiles a policy file.
func LoadFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return Load(path, data)
}

// Load compiles the checks of a policy file's content. Every problem is
// reported with the check it is in; nothing is half-loaded.
func Load(name string, data []byte) (p *Policy, err error) {
	if len(data) > maxPolicySize {
		return nil, fmt.Errorf("policy %s: larger than %d MiB", name, maxPolicySize>>20)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	func() {
		// the YAML library panics on some pathological input
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("yaml: %v", r)
			}
		}()
		err = dec.Decode(&f)
	}()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("policy %s: %w (expected a YAML mapping with a \"checks\" list)", name, err)
	}
	if len(f.Checks) == 0 {
		return nil, fmt.Errorf("policy %s: no checks (expected a YAML mapping with a \"checks\" list)", name)
	}
	if len(f.Checks) > maxChecks {
		return nil, fmt.Errorf("policy %s: %d checks, more than %d", name, len(f.Checks), maxChecks)
	}
	seen := map[string]bool{}
	var errs []error
	for i, c := range f.Checks {
		if c == nil {
			errs = append(errs, fmt.Errorf("check %d: empty", i+1))
			continue
		}
		if err := c.compile(); err != nil {
			id := c.ID
			if id == "" {
				id = fmt.Sprintf("#%d", i+1)
			}
			errs = append(errs, fmt.Errorf("check %s: %w", id, err))
			continue
		}
		if seen[c.ID] {
			errs = append(errs, fmt.Errorf("check %s: duplicate id", c.ID))
		}
		seen[c.ID] = true
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("policy %s: %w", name, errors.Join(errs...))
	}
	return &Policy{Source: name, Checks: f.Checks}, nil
}

func (c *Check) compile() error {
	if !idPattern().MatchString(c.ID) {
		return fmt.Errorf("id %q: use letters, digits, '-', '_' or '.', at most 64", c.ID)
	}
	sev, err := finding.ParseSeverity(c.Severity)
	if err != nil {
		return err
	}
	if strings.TrimSpace(c.Severity) == "" {
		sev = finding.Medium
	}
	c.severity = sev
	if c.Message == "" && c.Title == "" {
		return errors.New("needs a message or a title")
	}
	if strings.TrimSpace(c.Expression) == "" {
		return errors.New("no expression")
	}
	if len(c.Expression) > maxExpression {
		return fmt.Errorf("expression longer than %d bytes", maxExpression)
	}
	env, err := envFor(c.Target)
	if err != nil {
		return err
	}
	ast, iss := env.Compile(c.Expression)
	if iss.Err() != nil {
		return fmt.Errorf("expression: %w", iss.Err())
	}
	out := ast.OutputType()
	if k := out.Kind(); k != types.BoolKind && k != types.ListKind && k != types.DynKind {
		return fmt.Errorf("expression yields %s; it must yield a bool or a list", out)
	}
	c.prog, err = env.Program(ast,
		cel.CostLimit(DefaultCostLimit),
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return fmt.Errorf("expression: %w", err)
	}
	return nil
}

// Variables each target declares.
var targetVars = map[Target][]string{
	Kubernetes:  {"object", "kind", "apiVersion", "isWorkload", "podSpec", "podMeta", "podSpecPath", "containers"},
	Dockerfile:  {"file"},
	ImageConfig: {"config"},
}

// envs are the CEL environments by target, built on first use: a CEL
// environment with the extension libraries takes about a millisecond to
// build, which every bulkhead command paid at start-up as package init.
var envs = sync.OnceValue(func() map[Target]*cel.Env {
	envs := map[Target]*cel.Env{}
	for t, vars := range targetVars {
		opts := []cel.EnvOption{
			ext.Strings(), ext.Lists(ext.ListsMaxRangeSize(10_000)), ext.Sets(), ext.Encoders(), ext.TwoVarComprehensions(), ext.Bindings(),
			cel.OptionalTypes(),
		}
		for _, v := range vars {
			typ := cel.DynType
			switch v {
			case "kind", "apiVersion", "podSpecPath":
				typ = cel.StringType
			case "isWorkload":
				typ = cel.BoolType
			case "containers":
				typ = cel.ListType(cel.DynType)
			}
			opts = append(opts, cel.Variable(v, typ))
		}
		env, err := cel.NewEnv(opts...)
		if err != nil {
			panic(fmt.Sprintf("cel environment for %s: %v", t, err))
		}
		envs[t] = env
	}
	return envs
})

func envFor(t Target) (*cel.Env, error) {
	env, ok := envs()[t]
	if !ok {
		return nil, fmt.Errorf("target %q: use kubernetes, dockerfile or imageconfig", t)
	}
	return env, nil
}

// Place is where one failure of a check is: a field path, a line, or
// neither (the whole object).
type Place struct {
	Path string
	Line int
}

// Eval runs one check over the variables of its target and returns where it
// fails (nil when it passes).
func (c *Check) Eval(vars map[string]any) ([]Place, error) {
	val, _, err := c.prog.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", c.ID, err)
	}
	return places(c.ID, val)
}

func places(id string, val ref.Val) ([]Place, error) {
	switch v := val.(type) {
	case types.Bool:
		if v {
			return []Place{{}}, nil
		}
		return nil, nil
	case traits.Lister:
		var out []Place
		it := v.Iterator()
		for it.HasNext() == types.True {
			e := it.Next()
			switch x := e.(type) {
			case types.String:
				out = append(out, Place{Path: string(x)})
			case types.Int:
				out = append(out, Place{Line: int(x)})
			case types.Uint:
				out = append(out, Place{Line: int(x)})
			case types.Double:
				out = append(out, Place{Line: int(x)})
			case traits.Mapper:
				p := Place{}
				if l, found := x.Find(types.String("startLine")); found {
					if n, ok := l.(types.Int); ok {
						p.Line = int(n)
					}
				}
				if s, found := x.Find(types.String("path")); found {
					if n, ok := s.(types.String); ok {
						p.Path = string(n)
					}
				}
				out = append(out, p)
			default:
				out = append(out, Place{})
			}
		}
		return out, nil
	case *types.Err:
		return nil, fmt.Errorf("check %s: %v", id, v)
	}
	return nil, fmt.Errorf("check %s: expression yielded %s, not a bool or a list", id, val.Type())
}

// ForTarget lists the checks of a policy that read a target.
func (p *Policy) ForTarget(t Target) []*Check {
	if p == nil {
		return nil
	}
	var out []*Check
	for _, c := range p.Checks {
		if c.Target == t {
			out = append(out, c)
		}
	}
	return out
}
