package sign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gobwas/glob"
	"gopkg.in/yaml.v3"

	"github.com/bulkhead-sec/bulkhead/image/imageref"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// Policy maps image repositories to the keys that must have signed them
// and the attestations they must carry, so CI can say "only images signed
// by our release key, with an SBOM attestation":
//
//	policies:
//	  - name: release
//	    images: ["registry.example.com/release/**"]
//	    keys: [release.pub]              # any one of them; paths relative to the policy file, env://NAME or a KMS URI
//	    annotations: {env: prod}         # the signature's payload must carry these
//	    attestations: [cyclonedx, vuln]  # each must be attested by one of the keys
//	    transparencyLog: required        # or ignore: accept signatures without a Rekor entry (insecure)
//
// Images are matched as registry/repository in canonical form (package
// imageref: index.docker.io/library/alpine for alpine or docker.io/alpine,
// registry.local:5000 for Registry.Local:05000); the registry part of a
// glob is put in the same form. "*" stays within one path segment, "**"
// spans segments.
// Every policy whose images match applies; an image no policy matches is
// rejected. transparencyLog is required when absent; bulkhead cannot check
// Rekor entries yet, so a rule passes only with transparencyLog: ignore
// (or --insecure-ignore-tlog on the command line, which ignores the log for
// every rule).
type Policy struct {
	Rules []*Rule `yaml:"policies"`
}

// Rule is one entry of a policy.
type Rule struct {
	Name         string            `yaml:"name"`
	Images       []string          `yaml:"images"`
	Keys         []string          `yaml:"keys"`
	Annotations  map[string]string `yaml:"annotations"`
	Attestations []string          `yaml:"attestations"`
	// TransparencyLog is required (default) or ignore.
	TransparencyLog string `yaml:"transparencyLog"`

	globs []glob.Glob
	tlog  TLogPolicy
	// predicateTypes are Attestations as URIs.
	predicateTypes []string
}

// maxPolicy bounds a policy file.
const maxPolicy = 1 << 20

// LoadPolicy reads a policy file; relative key paths are taken from its
// directory.
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPolicy+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	if len(b) > maxPolicy {
		return nil, fmt.Errorf("policy %s is over %d KiB", path, maxPolicy>>10)
	}
	p, err := ParsePolicy(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy decodes a policy (YAML or JSON); unknown fields are errors
// so that a misspelt requirement is never silently dropped.
func ParsePolicy(b []byte, dir string) (*Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty policy; it needs a policies: list")
		}
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(p.Rules) == 0 {
		return nil, errors.New("no policies: list; nothing would be allowed")
	}
	for i, r := range p.Rules {
		if r == nil {
			return nil, fmt.Errorf("policy %d is empty", i+1)
		}
		if r.Name == "" {
			r.Name = fmt.Sprintf("#%d", i+1)
		}
		if len(r.Images) == 0 {
			return nil, fmt.Errorf("policy %s: no images globs", r.Name)
		}
		if len(r.Keys) == 0 {
			return nil, fmt.Errorf("policy %s: no keys (keyless verification is not supported yet)", r.Name)
		}
		for _, g := range r.Images {
			cg, err := glob.Compile(imageref.ImagePattern(g), '/')
			if err != nil {
				return nil, fmt.Errorf("policy %s: image glob %q: %w", r.Name, g, err)
			}
			r.globs = append(r.globs, cg)
		}
		for j, k := range r.Keys {
			if !strings.Contains(k, "://") && !filepath.IsAbs(k) && dir != "" {
				r.Keys[j] = filepath.Join(dir, k)
			}
		}
		tl, err := ParseTLogPolicy(r.TransparencyLog)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", r.Name, err)
		}
		r.tlog = tl
		for _, a := range r.Attestations {
			pt, err := PredicateType(a)
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", r.Name, err)
			}
			r.predicateTypes = append(r.predicateTypes, pt)
		}
	}
	return &p, nil
}

// Match returns the rules whose image globs match repo
// (registry/repository).
func (p *Policy) Match(repo string) []*Rule {
	var out []*Rule
	for _, r := range p.Rules {
		for _, g := range r.globs {
			if g.Match(repo) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// RuleResult is what satisfied one rule.
type RuleResult struct {
	Rule         string     `json:"policy"`
	Key          string     `json:"key"`
	Signatures   []Verified `json:"signatures"`
	Attestations []Verified `json:"attestations,omitempty"`
	// TransparencyLog is the choice applied: required or ignore.
	TransparencyLog string `json:"transparencyLog"`
}

// Verify applies every matching rule to t: one of the rule's keys must
// have signed it (with the annotations), and each required attestation
// must verify with one of the keys. The transparency log is ignored for a
// rule that says transparencyLog: ignore, or for all of them when o.TLog is
// TLogInsecureIgnore (the command line's explicit choice).
func (p *Policy) Verify(ctx context.Context, t *Target, o VerifyOptions, pass key.PassFunc) ([]RuleResult, error) {
	// The repository is judged in canonical form whatever built the
	// target (Resolve gives it already).
	c, err := imageref.Parse(t.Digest.String())
	if err != nil {
		return nil, err
	}
	repo := c.Repo()
	rules := p.Match(repo)
	if len(rules) == 0 {
		return nil, fmt.Errorf("%s: no policy covers this repository; add its registry/repository to a policy's images", repo)
	}
	var out []RuleResult
	for _, r := range rules {
		res, err := r.verify(ctx, t, o, pass)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", r.Name, err)
		}
		out = append(out, *res)
	}
	return out, nil
}

func (r *Rule) verify(ctx context.Context, t *Target, o VerifyOptions, pass key.PassFunc) (*RuleResult, error) {
	verifiers := make([]*key.Verifier, 0, len(r.Keys))
	for _, k := range r.Keys {
		v, err := key.LoadPublic(ctx, k, pass)
		if err != nil {
			return nil, err
		}
		verifiers = append(verifiers, v)
	}
	if r.tlog.Ignored() {
		o.TLog = TLogInsecureIgnore
	}
	so := o
	so.Annotations = mergeAnnotations(o.Annotations, r.Annotations)
	so.PredicateType = ""
	res := &RuleResult{Rule: r.Name, TransparencyLog: o.TLog.String()}
	var errs []string
	for i, v := range verifiers {
		sigs, err := VerifySignatures(ctx, t, v, so)
		if err != nil {
			var verr *VerifyError
			if !errors.As(err, &verr) {
				return nil, err // registry failure: never try the next key over it
			}
			errs = append(errs, fmt.Sprintf("key %s: %v", r.Keys[i], err))
			continue
		}
		res.Key, res.Signatures = r.Keys[i], sigs
		break
	}
	if res.Signatures == nil {
		return nil, fmt.Errorf("not signed by any of its keys:\n%s", strings.Join(errs, "\n"))
	}
	for j, pt := range r.predicateTypes {
		ao := o
		ao.PredicateType = pt
		var found []Verified
		var aerrs []string
		for i, v := range verifiers {
			atts, err := VerifyAttestations(ctx, t, v, ao)
			if err != nil {
				var verr *VerifyError
				if !errors.As(err, &verr) {
					return nil, err
				}
				aerrs = append(aerrs, fmt.Sprintf("key %s: %v", r.Keys[i], err))
				continue
			}
			found = atts
			break
		}
		if found == nil {
			return nil, fmt.Errorf("required %s attestation missing or invalid:\n%s", r.Attestations[j], strings.Join(aerrs, "\n"))
		}
		res.Attestations = append(res.Attestations, found...)
	}
	return res, nil
}

func mergeAnnotations(a, b map[string]string) map[string]string {
	if len(a) == 0 {
		return b
	}
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
