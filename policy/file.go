package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image/imageref"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// The schema this package reads.
const (
	APIVersion = "bulkhead.dev/v1"
	Kind       = "Policy"
	// FileName is the policy file's conventional name.
	FileName = "bulkhead-policy.yaml"
	// MaxFileSize bounds a policy file: policies are hand-written, a few KB.
	MaxFileSize = 1 << 20
)

// Mode says what a failed rule does.
type Mode string

const (
	// Enforce denies (the gate fails, the webhook rejects).
	Enforce Mode = "enforce"
	// Warn reports and allows (webhook warnings, gate summary).
	Warn Mode = "warn"
)

// File is a parsed, validated bulkhead-policy.yaml.
type File struct {
	APIVersion string       `yaml:"apiVersion"`
	Kind       string       `yaml:"kind"`
	Metadata   Metadata     `yaml:"metadata"`
	Admission  Admission    `yaml:"admission"`
	Rules      []*Rule      `yaml:"rules"`
	Exemptions []*Exemption `yaml:"exemptions"`

	// Source is the file's name, for messages.
	Source string `yaml:"-"`

	deps []string
}

// Dependencies are the files the policy loaded besides itself (keys, VEX
// documents, CEL files): a reload must notice when one of them changes.
func (f *File) Dependencies() []string { return f.deps }

// Metadata names the policy.
type Metadata struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Admission holds the fail mode, the namespaces never judged and the
// webhook's limits; the gate applies all of it too (only scanBudget is the
// webhook's alone), so that both decide alike.
type Admission struct {
	// FailurePolicy is what happens when a fact cannot be had (registry
	// down, scan over budget): "closed" (deny; the default) or "open".
	FailurePolicy string `yaml:"failurePolicy"`
	// Namespaces override the failure policy per namespace glob; the
	// first match wins.
	Namespaces []NamespacePolicy `yaml:"namespaces"`
	// ExemptNamespaces are never judged (default: kube-system).
	ExemptNamespaces []string `yaml:"exemptNamespaces"`
	// ScanBudget bounds how long an admission request waits for a scan of
	// an image not yet in the cache (default 20s); the scan carries on in
	// the background and fills the cache.
	ScanBudget Duration `yaml:"scanBudget"`
	// MaxImages bounds the distinct images of one request whose facts are
	// looked up (default DefaultMaxImages). Kubernetes sets no limit on a
	// pod's containers (only the object's size), so a pod can name
	// thousands of images; beyond this many, the rules that need the
	// registry give one "too many images" result that follows the fail
	// mode.
	MaxImages int `yaml:"maxImages"`
}

// DefaultMaxImages is admission.maxImages when unset: far above real pods
// (a few containers, init containers and sidecars), far below what one
// scan budget can look up.
const DefaultMaxImages = 64

// NamespacePolicy is a per-namespace fail mode.
type NamespacePolicy struct {
	Match         string `yaml:"match"`
	FailurePolicy string `yaml:"failurePolicy"`
}

// Rule is one requirement; it holds exactly one kind of check.
type Rule struct {
	Name  string `yaml:"name"`
	Mode  Mode   `yaml:"mode"`
	Match Scope  `yaml:"match"`

	Vulnerabilities *VulnerabilityRule `yaml:"vulnerabilities"`
	Signatures      *SignatureRule     `yaml:"signatures"`
	PodSecurity     *PodSecurityRule   `yaml:"podSecurity"`
	Workload        *WorkloadRule      `yaml:"workload"`
	Secrets         *SecretsRule       `yaml:"secrets"`
	Registries      *RegistriesRule    `yaml:"registries"`
	BaseImages      *BaseImagesRule    `yaml:"baseImages"`
	DigestPinning   *DigestPinningRule `yaml:"digestPinning"`
	CEL             *CELRule           `yaml:"cel"`
	Encryption      *EncryptionRule    `yaml:"encryption"`

	// Line is where the rule starts in the file.
	Line int `yaml:"-"`
}

// Scope says which images and namespaces a rule applies to; empty lists
// match everything.
type Scope struct {
	// Images are registry/repository globs ("ghcr.io/acme/**",
	// "127.0.0.1:*/app"): "*" stays within a path segment, "**" spans
	// segments. They match the canonical reference (package imageref):
	// Docker Hub names are index.docker.io/library/NAME, hosts lower case,
	// no :443 or :80.
	Images []string `yaml:"images"`
	// Namespaces are namespace globs (path.Match syntax).
	Namespaces []string `yaml:"namespaces"`
}

// VulnerabilityRule limits the vulnerabilities an image may have.
type VulnerabilityRule struct {
	// MaxSeverity is the highest severity allowed (CRITICAL, HIGH, MEDIUM,
	// LOW): a finding above it fails the rule. Default: HIGH (no
	// CRITICAL).
	MaxSeverity string `yaml:"maxSeverity"`
	// OnlyFixed counts only vulnerabilities that have a fixed version.
	OnlyFixed bool `yaml:"onlyFixed"`
	// Ignore lists advisory IDs (or aliases) that never count.
	Ignore []string `yaml:"ignore"`
	// VEX are OpenVEX documents whose not_affected/fixed statements
	// suppress findings (paths relative to the policy file).
	VEX []string `yaml:"vex"`
	// DBMaxAge fails the rule when the vulnerability database is older
	// ("7d", "36h"; 0: no limit).
	DBMaxAge Duration `yaml:"dbMaxAge"`

	max    finding.Severity
	vex    []*match.VEXDocument
	ignore map[string]bool
}

// SignatureRule requires signatures (and attestations) by trusted keys.
type SignatureRule struct {
	// Keys are public keys (PEM paths relative to the policy file,
	// env://NAME, or KMS URIs such as awskms:///alias/NAME); a signature
	// by any one of them counts.
	Keys []string `yaml:"keys"`
	// Layouts to look in: legacy (.sig tags), bundle (Sigstore bundle
	// referrers); both when empty.
	Layouts []string `yaml:"layouts"`
	// Annotations every accepted signature's payload must carry.
	Annotations map[string]string `yaml:"annotations"`
	// Attestations are predicate types (cyclonedx, spdxjson, slsaprovenance,
	// vuln, ... or a URI) each of which one of the keys must have attested.
	Attestations []string `yaml:"attestations"`
	// TransparencyLog is required (the default: bulkhead cannot check
	// Rekor entries yet, so nothing passes) or ignore (accept key-based
	// signatures without one; insecure, and every decision says so).
	TransparencyLog string `yaml:"transparencyLog"`

	verifiers  []*key.Verifier
	layouts    []sign.Layout
	predicates []string
	tlog       sign.TLogPolicy
}

// TLog is the rule's transparency-log choice.
func (sr *SignatureRule) TLog() sign.TLogPolicy { return sr.tlog }

// PodSecurityRule holds pods to a Pod Security Standards level.
type PodSecurityRule struct {
	Level   string `yaml:"level"`   // baseline | restricted
	Version string `yaml:"version"` // latest (default) or v1.N

	scanner *kubernetes.Scanner
	level   kubernetes.Level
}

// WorkloadRule runs bulkhead's workload checks beyond the standards.
type WorkloadRule struct {
	// Checks are BH-K8S-1xx IDs; empty means all of them.
	Checks []string `yaml:"checks"`

	scanner *kubernetes.Scanner
	ids     map[string]bool
}

// SecretsRule forbids secrets in image files and configuration.
type SecretsRule struct {
	// Ignore lists secret rule IDs that never count.
	Ignore []string `yaml:"ignore"`
}

// RegistriesRule allows images only from these registries.
type RegistriesRule struct {
	// Allowed are registry host globs ("ghcr.io", "127.0.0.1:*").
	Allowed []string `yaml:"allowed"`
}

// BaseImagesRule allows only images built on these bases.
type BaseImagesRule struct {
	// Allowed are base reference globs as the base catalog names them
	// ("alpine:3.*", "gcr.io/distroless/**").
	Allowed []string `yaml:"allowed"`
}

// EncryptionRule requires encrypted layers (OCI image encryption) in the
// images the rule's match.images name. It is judged from the manifest's
// layer media types alone ("...+encrypted"): no layer is pulled and no key
// is needed.
type EncryptionRule struct {
	// Required must be true (a rule that requires nothing is a mistake).
	Required bool `yaml:"required"`
	// Layers is all (the default: every layer encrypted) or any (at least
	// one layer encrypted, as with skopeo --encrypt-layer).
	Layers string `yaml:"layers"`
}

// DigestPinningRule requires image references by digest.
type DigestPinningRule struct{}

// CELRule runs CEL checks (package cel) on the workload (target
// kubernetes) and the image configuration (target imageconfig).
type CELRule struct {
	// File is a CEL checks file (package cel format), relative to the policy file.
	File string `yaml:"file"`
	// Checks are the same checks written inline.
	Checks yaml.Node `yaml:"checks"`

	policy *cel.Policy
}

// Exemption lifts one rule for some images or namespaces until it expires.
type Exemption struct {
	Rule       string   `yaml:"rule"`
	Images     []string `yaml:"images"`
	Namespaces []string `yaml:"namespaces"`
	Owner      string   `yaml:"owner"`
	Reason     string   `yaml:"reason"`
	// Expires is a date (2026-12-31, the end of that day UTC) or an
	// RFC 3339 time.
	Expires string `yaml:"expires"`

	Line    int       `yaml:"-"`
	expires time.Time `yaml:"-"`
}

// ExpiresAt is when the exemption stops applying.
func (e *Exemption) ExpiresAt() time.Time { return e.expires }

// Duration is a YAML duration that also takes days ("7d").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration reads "7d", "36h", "90m" or "0".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("duration %q: want a number of days like 7d, or 36h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("duration %q: want 7d, 36h or 90m", s)
	}
	return v, nil
}

// ValidationError lists every problem found in a policy file, each with
// its line.
type ValidationError struct {
	Source   string
	Problems []string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("policy %s is not valid:\n  %s", e.Source, strings.Join(e.Problems, "\n  "))
}

// Load reads and validates a policy file; relative paths in it (keys, VEX,
// CEL files) are taken from its directory.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w (write one as described in docs/policy.md)", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	return Parse(path, data, filepath.Dir(path))
}

// Parse decodes and validates a policy. Unknown fields are errors: a
// misspelt requirement must never be silently dropped.
func Parse(name string, data []byte, dir string) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("policy %s: larger than %d bytes; a policy is a short hand-written file", name, MaxFileSize)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ValidationError{Source: name, Problems: []string{yamlProblem(err)}}
	}
	if len(root.Content) == 0 {
		return nil, &ValidationError{Source: name, Problems: []string{"the file is empty; start it with apiVersion: " + APIVersion}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, &ValidationError{Source: name, Problems: []string{yamlProblem(err)}}
	}
	f.Source = name
	lines(&root, &f)
	v := &validator{file: name, dir: dir}
	v.validate(&f)
	if len(v.problems) > 0 {
		return nil, &ValidationError{Source: name, Problems: v.problems}
	}
	f.deps = v.deps
	return &f, nil
}

// yamlProblem turns yaml.v3's errors ("yaml: unmarshal errors:\n  line 7:
// field foo not found in type policy.Rule") into one line per problem with
// the Go type names replaced by what the user wrote.
func yamlProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	for goName, yamlName := range map[string]string{
		"policy.File": "the policy", "policy.Rule": "a rule", "policy.Scope": "match",
		"policy.VulnerabilityRule": "vulnerabilities", "policy.SignatureRule": "signatures",
		"policy.PodSecurityRule": "podSecurity", "policy.WorkloadRule": "workload",
		"policy.SecretsRule": "secrets", "policy.RegistriesRule": "registries",
		"policy.BaseImagesRule": "baseImages", "policy.DigestPinningRule": "digestPinning",
		"policy.CELRule": "cel", "policy.Exemption": "an exemption", "policy.Admission": "admission",
		"policy.Metadata": "metadata", "policy.NamespacePolicy": "admission.namespaces",
	} {
		msg = strings.ReplaceAll(msg, "in type "+goName, "in "+yamlName)
	}
	return msg
}

// lines records where each rule and exemption starts.
func lines(root *yaml.Node, f *File) {
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if v.Kind != yaml.SequenceNode {
			continue
		}
		switch k.Value {
		case "rules":
			for j, n := range v.Content {
				if j < len(f.Rules) && f.Rules[j] != nil {
					f.Rules[j].Line = n.Line
				}
			}
		case "exemptions":
			for j, n := range v.Content {
				if j < len(f.Exemptions) && f.Exemptions[j] != nil {
					f.Exemptions[j].Line = n.Line
				}
			}
		}
	}
}

type validator struct {
	file, dir string
	problems  []string
	deps      []string
}

func (v *validator) add(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	v.problems = append(v.problems, msg)
}

func (v *validator) path(p string) string {
	if strings.HasPrefix(p, "env://") || key.IsKMS(p) {
		return p
	}
	if !filepath.IsAbs(p) && v.dir != "" {
		p = filepath.Join(v.dir, p)
	}
	v.deps = append(v.deps, p)
	return p
}

// KeyLoadTimeout bounds asking a KMS for a policy key's public half while
// the policy is read (file and env:// keys need no network).
var KeyLoadTimeout = 30 * time.Second

// loadPolicyKey resolves a signatures rule's key: a public key file,
// env://NAME, or a KMS URI (its public key asked of the KMS now, once).
func loadPolicyKey(ref string) (*key.Verifier, error) {
	ctx, cancel := context.WithTimeout(context.Background(), KeyLoadTimeout)
	defer cancel()
	return key.LoadPublic(ctx, ref, nil)
}

func (v *validator) validate(f *File) {
	if f.APIVersion != APIVersion {
		v.add(0, "apiVersion is %q; this bulkhead reads apiVersion: %s", f.APIVersion, APIVersion)
	}
	if f.Kind != Kind {
		v.add(0, "kind is %q; want kind: %s", f.Kind, Kind)
	}
	v.admission(&f.Admission)
	if len(f.Rules) == 0 {
		v.add(0, "no rules: a policy needs at least one entry under rules")
	}
	names := map[string]bool{}
	for i, r := range f.Rules {
		if r == nil {
			v.add(0, "rules[%d] is empty", i)
			continue
		}
		if r.Name == "" {
			v.add(r.Line, "rule without a name: every rule needs one (decisions name it)")
		} else if names[r.Name] {
			v.add(r.Line, "rule %q: the name is used twice", r.Name)
		}
		names[r.Name] = true
		v.rule(r)
	}
	for _, e := range f.Exemptions {
		if e == nil {
			continue
		}
		v.exemption(e, names)
	}
}

func (v *validator) admission(a *Admission) {
	check := func(what, fp string) {
		switch fp {
		case "", "closed", "open":
		default:
			v.add(0, "%s failurePolicy %q: use closed (deny when a check cannot run) or open", what, fp)
		}
	}
	check("admission", a.FailurePolicy)
	for _, n := range a.Namespaces {
		if n.Match == "" {
			v.add(0, "admission.namespaces: an entry without match")
		}
		if n.FailurePolicy == "" {
			v.add(0, "admission.namespaces %q: failurePolicy is required", n.Match)
		}
		check("admission.namespaces "+n.Match, n.FailurePolicy)
		v.globs(0, "admission.namespaces", []string{n.Match}, false)
	}
	v.globs(0, "admission.exemptNamespaces", a.ExemptNamespaces, false)
	if a.ExemptNamespaces == nil {
		a.ExemptNamespaces = []string{"kube-system"}
	}
	if a.ScanBudget == 0 {
		a.ScanBudget = Duration(20 * time.Second)
	}
	switch {
	case a.MaxImages < 0:
		v.add(0, "admission.maxImages %d: use a positive number (default %d)", a.MaxImages, DefaultMaxImages)
	case a.MaxImages == 0:
		a.MaxImages = DefaultMaxImages
	}
}

func (v *validator) globs(line int, what string, gs []string, image bool) {
	for _, g := range gs {
		if g == "" {
			v.add(line, "%s: an empty pattern", what)
			continue
		}
		var err error
		if image {
			_, err = compileImageGlob(g)
		} else {
			_, err = matchName(g, "")
		}
		if err != nil {
			v.add(line, "%s: pattern %q: %v", what, g, err)
		}
	}
}

func (v *validator) rule(r *Rule) {
	at := r.Line
	switch r.Mode {
	case "":
		r.Mode = Enforce
	case Enforce, Warn:
	default:
		v.add(at, "rule %q: mode %q; use enforce or warn", r.Name, r.Mode)
	}
	v.globs(at, fmt.Sprintf("rule %q match.images", r.Name), r.Match.Images, true)
	canonicalPatterns(r.Match.Images, imageref.ImagePattern)
	v.globs(at, fmt.Sprintf("rule %q match.namespaces", r.Name), r.Match.Namespaces, false)
	kinds := r.kinds()
	switch len(kinds) {
	case 0:
		v.add(at, "rule %q has no check: give it one of %s", r.Name, strings.Join(ruleKinds, ", "))
		return
	case 1:
	default:
		v.add(at, "rule %q has %s: one check per rule (split it so each decision names what failed)", r.Name, strings.Join(kinds, " and "))
		return
	}
	switch {
	case r.Encryption != nil:
		er := r.Encryption
		if !er.Required {
			v.add(at, "rule %q: encryption: required is false, so the rule checks nothing; write required: true (or remove the rule)", r.Name)
		}
		switch er.Layers {
		case "":
			er.Layers = "all"
		case "all", "any":
		default:
			v.add(at, "rule %q: encryption: layers %q; use all (every layer encrypted, the default) or any", r.Name, er.Layers)
		}
	case r.Vulnerabilities != nil:
		vr := r.Vulnerabilities
		vr.max = finding.High
		if vr.MaxSeverity != "" {
			s, err := finding.ParseSeverity(vr.MaxSeverity)
			if err != nil {
				v.add(at, "rule %q: maxSeverity: %v", r.Name, err)
			}
			vr.max = s
		}
		vr.ignore = map[string]bool{}
		for _, id := range vr.Ignore {
			vr.ignore[strings.ToUpper(id)] = true
		}
		for _, p := range vr.VEX {
			doc, err := match.LoadVEX(v.path(p))
			if err != nil {
				v.add(at, "rule %q: vex: %v", r.Name, err)
				continue
			}
			vr.vex = append(vr.vex, doc)
		}
	case r.Signatures != nil:
		sr := r.Signatures
		if len(sr.Keys) == 0 {
			v.add(at, "rule %q: signatures needs keys (public key files, as bulkhead generate-key-pair or cosign writes them)", r.Name)
		}
		for _, k := range sr.Keys {
			ver, err := loadPolicyKey(v.path(k))
			if err != nil {
				v.add(at, "rule %q: key %s: %v", r.Name, k, err)
				continue
			}
			sr.verifiers = append(sr.verifiers, ver)
		}
		for _, l := range sr.Layouts {
			switch sign.Layout(l) {
			case sign.Legacy, sign.Bundle:
				sr.layouts = append(sr.layouts, sign.Layout(l))
			default:
				v.add(at, "rule %q: layout %q; use legacy or bundle", r.Name, l)
			}
		}
		for _, a := range sr.Attestations {
			pt, err := sign.PredicateType(a)
			if err != nil {
				v.add(at, "rule %q: attestation %q: %v", r.Name, a, err)
				continue
			}
			sr.predicates = append(sr.predicates, pt)
		}
		tl, err := sign.ParseTLogPolicy(sr.TransparencyLog)
		if err != nil {
			v.add(at, "rule %q: %v", r.Name, err)
		}
		sr.tlog = tl
	case r.PodSecurity != nil:
		pr := r.PodSecurity
		lvl, err := kubernetes.ParseLevel(pr.Level)
		if err != nil || lvl == kubernetes.LevelNone {
			v.add(at, "rule %q: podSecurity level %q; use baseline or restricted", r.Name, pr.Level)
			return
		}
		pr.level = lvl
		s, err := kubernetes.New(kubernetes.Options{Level: lvl, Version: pr.Version})
		if err != nil {
			v.add(at, "rule %q: %v", r.Name, err)
			return
		}
		pr.scanner = s
	case r.Workload != nil:
		wr := r.Workload
		wr.ids = map[string]bool{}
		for _, id := range wr.Checks {
			c := kubernetes.CheckByID(id)
			if c == nil || c.Level != kubernetes.LevelNone {
				v.add(at, "rule %q: workload check %q: not one of bulkhead's workload checks (%s); Pod Security controls belong in podSecurity", r.Name, id, strings.Join(workloadCheckIDs(), ", "))
				continue
			}
			wr.ids[id] = true
		}
		if len(wr.Checks) == 0 {
			for _, id := range workloadCheckIDs() {
				wr.ids[id] = true
			}
		}
		s, err := kubernetes.New(kubernetes.Options{Level: kubernetes.LevelRestricted})
		if err != nil {
			v.add(at, "rule %q: %v", r.Name, err)
			return
		}
		wr.scanner = s
	case r.Registries != nil:
		if len(r.Registries.Allowed) == 0 {
			v.add(at, "rule %q: registries.allowed is empty (no image could run)", r.Name)
		}
		v.globs(at, fmt.Sprintf("rule %q registries.allowed", r.Name), r.Registries.Allowed, true)
		canonicalPatterns(r.Registries.Allowed, imageref.HostPattern)
	case r.BaseImages != nil:
		if len(r.BaseImages.Allowed) == 0 {
			v.add(at, "rule %q: baseImages.allowed is empty (no image could run)", r.Name)
		}
		v.globs(at, fmt.Sprintf("rule %q baseImages.allowed", r.Name), r.BaseImages.Allowed, true)
		canonicalPatterns(r.BaseImages.Allowed, imageref.ImagePattern)
	case r.CEL != nil:
		cr := r.CEL
		inline := cr.Checks.Kind != 0
		if (cr.File == "") == !inline {
			v.add(at, "rule %q: cel needs either file or checks (not both)", r.Name)
			return
		}
		var p *cel.Policy
		var err error
		if inline {
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			err = enc.Encode(map[string]*yaml.Node{"checks": &cr.Checks})
			if err == nil {
				p, err = cel.Load(fmt.Sprintf("%s (rule %s)", v.file, r.Name), buf.Bytes())
			}
		} else {
			p, err = cel.LoadFile(v.path(cr.File))
		}
		if err != nil {
			v.add(at, "rule %q: cel: %v", r.Name, err)
			return
		}
		if len(p.ForTarget(cel.Kubernetes))+len(p.ForTarget(cel.ImageConfig)) == 0 {
			v.add(at, "rule %q: cel: no check of target kubernetes or imageconfig (the ones the gate and the webhook run)", r.Name)
		}
		cr.policy = p
	}
}

var ruleKinds = []string{"vulnerabilities", "signatures", "podSecurity", "workload", "secrets", "registries", "baseImages", "digestPinning", "cel", "encryption"}

func (r *Rule) kinds() []string {
	var out []string
	for i, set := range []bool{r.Vulnerabilities != nil, r.Signatures != nil, r.PodSecurity != nil, r.Workload != nil,
		r.Secrets != nil, r.Registries != nil, r.BaseImages != nil, r.DigestPinning != nil, r.CEL != nil, r.Encryption != nil} {
		if set {
			out = append(out, ruleKinds[i])
		}
	}
	return out
}

// Kind names the rule's check ("vulnerabilities", "signatures", ...).
func (r *Rule) Kind() string {
	if k := r.kinds(); len(k) == 1 {
		return k[0]
	}
	return ""
}

func workloadCheckIDs() []string {
	var ids []string
	for _, c := range kubernetes.Checks {
		if c.Level == kubernetes.LevelNone {
			ids = append(ids, c.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

func (v *validator) exemption(e *Exemption, rules map[string]bool) {
	at := e.Line
	if e.Rule == "" {
		v.add(at, "exemption without rule: name the rule it lifts")
	} else if !rules[e.Rule] {
		v.add(at, "exemption for rule %q: no rule has that name", e.Rule)
	}
	if strings.TrimSpace(e.Owner) == "" {
		v.add(at, "exemption for rule %q: owner is required (who answers for it)", e.Rule)
	}
	if strings.TrimSpace(e.Reason) == "" {
		v.add(at, "exemption for rule %q: reason is required", e.Rule)
	}
	if e.Expires == "" {
		v.add(at, "exemption for rule %q: expires is required (a date like 2026-12-31): exemptions must end", e.Rule)
	} else {
		t, err := parseExpiry(e.Expires)
		if err != nil {
			v.add(at, "exemption for rule %q: %v", e.Rule, err)
		}
		e.expires = t
	}
	v.globs(at, fmt.Sprintf("exemption for rule %q images", e.Rule), e.Images, true)
	canonicalPatterns(e.Images, imageref.ImagePattern)
	v.globs(at, fmt.Sprintf("exemption for rule %q namespaces", e.Rule), e.Namespaces, false)
}

// canonicalPatterns puts the registry part of image and host globs in the
// canonical form references are matched in (package imageref), so that
// "docker.io/library/*" matches alpine and "Registry.Local:05000/**"
// matches registry.local:5000/app.
func canonicalPatterns(gs []string, canon func(string) string) {
	for i, g := range gs {
		gs[i] = canon(g)
	}
}

func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Add(24*time.Hour - time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("expires " + strconv.Quote(s) + ": use a date (2026-12-31) or an RFC 3339 time")
}

// FailClosed reports whether a rule whose facts cannot be had denies in
// namespace ns.
func (f *File) FailClosed(ns string) bool {
	for _, n := range f.Admission.Namespaces {
		if ok, _ := matchName(n.Match, ns); ok {
			return n.FailurePolicy != "open"
		}
	}
	return f.Admission.FailurePolicy != "open"
}

// ExemptNamespace reports whether the gate and the webhook leave
// namespace ns alone (see Exempt).
func (f *File) ExemptNamespace(ns string) bool { return f.Exempt(ns) != "" }
