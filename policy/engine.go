package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/image/imageref"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
)

// Image is one image reference under judgement.
type Image struct {
	// Ref is the reference as written (pod spec, command line).
	Ref string `json:"ref"`
	// Canonical is the reference in canonical form (package imageref):
	// what is judged and pulled ("" when the reference was rejected).
	Canonical string `json:"canonical,omitempty"`
	// Repo is registry/repository in canonical form, what scopes match.
	Repo     string `json:"repository"`
	Registry string `json:"registry"`
	// Digest is the manifest digest the reference points at now.
	Digest string `json:"digest,omitempty"`
}

// Scan is what a scan of an image tells the policy; it is cached by digest.
type Scan struct {
	Digest string `json:"digest"`
	// Findings are the vulnerability and secret findings, none suppressed
	// (suppression is per rule: each rule has its own ignores and VEX).
	Findings []finding.Finding `json:"findings"`
	// Target is the scanned image as reports describe it (VEX products).
	Target inventory.Target `json:"target"`
	// Base is the detected base image ("" when not in the catalog).
	Base       string `json:"base,omitempty"`
	BaseReason string `json:"baseReason,omitempty"`
	// DBUpdated: the oldest vulnerability data the scan used (the
	// ecosystems its packages were looked up in) is at least this
	// current; zero when it cannot be dated.
	DBUpdated time.Time `json:"dbUpdated"`
	// DBEcosystem and DBSource say whose data that is and where it came
	// from.
	DBEcosystem string         `json:"dbEcosystem,omitempty"`
	DBSource    string         `json:"dbSource,omitempty"`
	Config      *v1.ConfigFile `json:"config,omitempty"`
	ScannedAt   time.Time      `json:"scannedAt"`
	// Incomplete names the package files the scan left out, in whole or in
	// part, because they are over a limit for hostile input: vulnerability
	// rules cannot be judged on such an inventory.
	Incomplete []string `json:"incomplete,omitempty"`
}

// Facts finds out what the rules need to know about an image. An error
// means the fact could not be had (the rule follows the fail mode); a
// *Violation means it was had and the requirement is not met.
type Facts interface {
	// Resolve returns the digest a reference points at now.
	Resolve(ctx context.Context, img *Image) (string, error)
	// Verify checks img's signatures and attestations against the rule.
	Verify(ctx context.Context, img *Image, r *SignatureRule) error
	// Scan scans img (at img.Digest).
	Scan(ctx context.Context, img *Image) (*Scan, error)
}

// ManifestFacts reads an image's manifests: for a digest of an image
// index, the manifest of every image in it. No layer is pulled. Facts that
// cannot (nothing in this repository) make encryption rules fail with the
// rule's fail mode.
type ManifestFacts interface {
	Manifests(ctx context.Context, img *Image) ([]ImageManifest, error)
}

// ImageManifest is one image manifest: its digest, platform (for an index
// entry) and layer descriptors.
type ImageManifest struct {
	Digest   string
	Platform string
	Layers   []v1.Descriptor
}

// Violation is a requirement checked and not met.
type Violation struct{ Msg string }

func (v *Violation) Error() string { return v.Msg }

// Outcome of one rule for one image or workload.
type Outcome string

const (
	Allow Outcome = "allow"
	Deny  Outcome = "deny"
	// WarnOutcome is a failed warn rule, or a rule that could not be
	// checked under fail-open: admitted, with a warning.
	WarnOutcome Outcome = "warn"
)

// Result is one rule's verdict on one image (or on the workload).
type Result struct {
	Rule    string  `json:"rule"`
	Kind    string  `json:"kind"`
	Mode    Mode    `json:"mode"`
	Outcome Outcome `json:"outcome"`
	Image   string  `json:"image,omitempty"`
	// Message names the rule and says what failed (or passed).
	Message string `json:"message"`
	// Error is set when the rule could not be checked.
	Error bool `json:"error,omitempty"`
	// Exempted is set when an exemption turned a failure into an allow.
	Exempted *Exemption `json:"exemption,omitempty"`
}

// Decision is the engine's answer.
type Decision struct {
	Allowed bool     `json:"allowed"`
	Results []Result `json:"results"`
	// Warnings are the messages of warn outcomes and notes about the
	// policy itself (expired exemptions): the messages of the Diagnostics
	// of warning severity, in the same order.
	Warnings []string `json:"warnings,omitempty"`
	// Diagnostics are the notes about the policy and the references
	// (policy.exemption-expired, policy.tlog-ignored, policy.tag-ignored),
	// then one per warn outcome (policy.warn-rule) and per exemption
	// applied (policy.exempt, info), or the exempt namespace
	// (policy.exempt-namespace, info).
	Diagnostics []diag.Diagnostic `json:"diagnostics,omitempty"`
	// Exempt says why nothing was judged: the namespace is one of
	// admission.exemptNamespaces (File.Exempt). Allowed is then true and
	// there are no results.
	Exempt string `json:"exempt,omitempty"`
}

// Denials are the results that deny.
func (d *Decision) Denials() []Result {
	var out []Result
	for _, r := range d.Results {
		if r.Outcome == Deny {
			out = append(out, r)
		}
	}
	return out
}

// MaxReasons is how many denials Reason lists; the rest are counted.
const MaxReasons = 10

// Reason is the denials' messages in one string: the first MaxReasons,
// then how many more there are (a workload with many images can fail a
// rule once per image).
func (d *Decision) Reason() string {
	var msgs []string
	for _, r := range d.Denials() {
		msgs = append(msgs, r.Message)
	}
	if len(msgs) > MaxReasons {
		return strings.Join(msgs[:MaxReasons], "; ") + fmt.Sprintf("; and %d more %s", len(msgs)-MaxReasons, plural(len(msgs)-MaxReasons, "denial", "denials"))
	}
	return strings.Join(msgs, "; ")
}

// Input is what is judged: the images of a workload (or of the command
// line), the workload itself when there is one, and its namespace.
type Input struct {
	Namespace string
	Images    []string
	// Object is the workload (Pod, Deployment, ...), nil for bare images.
	Object *kubernetes.Object
	// MaxImages bounds the distinct images whose facts (digest,
	// signatures, scan) are looked up (0: no bound). Beyond it, rules
	// that need facts are not checked image by image: each gives one
	// *TooManyImagesError result, which follows the fail mode; rules that
	// need no registry (digest pinning, registries, workload checks) still
	// run.
	MaxImages int
}

// TooManyImagesError is a workload with more distinct images than
// Input.MaxImages.
type TooManyImagesError struct{ Images, Max int }

func (e *TooManyImagesError) Error() string {
	return fmt.Sprintf("the workload has %d distinct images, over the limit of %d (admission.maxImages): none was looked up; split the workload or raise the limit", e.Images, e.Max)
}

// needsFacts: the rule's per-image check asks the registry.
func (r *Rule) needsFacts() bool { return r.DigestPinning == nil && r.Registries == nil }

// Engine applies a policy file.
type Engine struct {
	File  *File
	Facts Facts
	// Now is the clock exemptions are judged by (time.Now when nil).
	Now func() time.Time
}

// imageState memoises an image's facts within one evaluation.
type imageState struct {
	img     Image
	ref     *imageref.Ref
	refErr  error
	digErr  error
	scan    *Scan
	scanErr error
	scanned bool
	pinned  bool
}

// Evaluate judges the input against every rule that applies to it.
func (e *Engine) Evaluate(ctx context.Context, in Input) Decision {
	if why := e.File.Exempt(in.Namespace); why != "" {
		return Decision{Allowed: true, Exempt: why, Diagnostics: []diag.Diagnostic{
			diag.New(diag.PolicyExemptNamespace, diag.Info, why).At(diag.Location{Object: "namespace " + in.Namespace}),
		}}
	}
	now := time.Now()
	if e.Now != nil {
		now = e.Now()
	}
	failClosed := e.File.FailClosed(in.Namespace)
	ev := &evaluation{e: e, ctx: ctx, in: in, now: now, failClosed: failClosed, warned: map[*Exemption]bool{}}
	seen := map[string]bool{}
	for _, ref := range in.Images {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		// Canonicalised once, here: every scope, message and fact below
		// uses the canonical form, so a reference spelt differently from
		// the repository the registry serves cannot escape a scope.
		st := &imageState{img: Image{Ref: ref}}
		if st.ref, st.refErr = imageref.Parse(ref); st.refErr == nil {
			st.img.Canonical, st.img.Repo, st.img.Registry = st.ref.String(), st.ref.Repo(), st.ref.Registry
			st.pinned = st.ref.Pinned()
			if st.ref.IgnoredTag != "" {
				ev.diags = append(ev.diags, diag.Warnf(diag.PolicyTagIgnored, "%s: the tag %q next to the digest is ignored; %s is what is judged and pulled", ref, st.ref.IgnoredTag, st.img.Canonical).At(diag.Location{Object: st.img.Canonical}))
			}
		}
		ev.images = append(ev.images, st)
	}
	if in.MaxImages > 0 && len(ev.images) > in.MaxImages {
		ev.tooMany = &TooManyImagesError{Images: len(ev.images), Max: in.MaxImages}
	}
	for _, r := range e.File.Rules {
		if !matchNamespace(r.Match.Namespaces, in.Namespace) {
			continue
		}
		ev.rule(r)
	}
	d := Decision{Allowed: true, Results: ev.results, Diagnostics: ev.diags}
	for _, r := range d.Results {
		loc := diag.Location{Object: r.Image}
		if ln := ev.ruleLine(r.Rule); ln > 0 {
			loc.Path, loc.Line = e.File.Source, ln
		}
		switch {
		case r.Outcome == Deny:
			d.Allowed = false
		case r.Outcome == WarnOutcome:
			code := diag.PolicyWarnRule
			if r.Error {
				code = diag.PolicyUnchecked
			}
			d.Diagnostics = append(d.Diagnostics, diag.New(code, diag.Warning, r.Message).At(loc))
		case r.Exempted != nil:
			if r.Exempted.Line > 0 {
				loc.Path, loc.Line = e.File.Source, r.Exempted.Line
			}
			d.Diagnostics = append(d.Diagnostics, diag.New(diag.PolicyExempt, diag.Info, r.Message).At(loc))
		}
	}
	for _, x := range d.Diagnostics {
		if x.Severity != diag.Info {
			d.Warnings = append(d.Warnings, x.Message)
		}
	}
	return d
}

type evaluation struct {
	e          *Engine
	ctx        context.Context
	in         Input
	now        time.Time
	failClosed bool
	images     []*imageState
	results    []Result
	diags      []diag.Diagnostic
	warned     map[*Exemption]bool
	// tlogWarned holds the signature rules whose transparencyLog: ignore
	// has been warned about.
	tlogWarned map[*Rule]bool
	// tooMany is set when the input has more images than allowed.
	tooMany *TooManyImagesError
}

// spent is the error for a fact not asked for because the request's time
// budget ran out: once the deadline has passed, no image costs anything.
func (ev *evaluation) spent(what string) error {
	if err := ev.ctx.Err(); err != nil {
		return fmt.Errorf("%s not checked: the request's time budget ran out (%w)", what, err)
	}
	return nil
}

func (ev *evaluation) digest(st *imageState) error {
	if st.refErr != nil {
		return st.refErr
	}
	if st.img.Digest == "" && st.digErr == nil {
		if st.digErr = ev.spent(st.img.Ref); st.digErr == nil {
			st.img.Digest, st.digErr = ev.e.Facts.Resolve(ev.ctx, &st.img)
		}
	}
	return st.digErr
}

func (ev *evaluation) scan(st *imageState) (*Scan, error) {
	if err := ev.digest(st); err != nil {
		return nil, err
	}
	if !st.scanned {
		st.scanned = true
		if err := ev.spent("scan of " + st.img.Ref); err != nil {
			st.scanErr = err
			return nil, err
		}
		st.scan, st.scanErr = ev.e.Facts.Scan(ev.ctx, &st.img)
		if st.scanErr != nil {
			st.scanErr = fmt.Errorf("scan %s: %w", st.img.Ref, st.scanErr)
		}
	}
	return st.scan, st.scanErr
}

func (ev *evaluation) rule(r *Rule) {
	obj := ev.in.Object
	if r.PodSecurity != nil || r.Workload != nil || (r.CEL != nil && len(r.CEL.policy.ForTarget(cel.Kubernetes)) > 0) {
		if obj != nil && obj.Pod != nil && ev.anyImageInScope(r) {
			ev.record(r, nil, ev.checkObject(r, obj))
		}
		if r.CEL == nil || len(r.CEL.policy.ForTarget(cel.ImageConfig)) == 0 {
			return
		}
	}
	if ev.tooMany != nil && r.needsFacts() {
		if ev.anyImageInScope(r) {
			ev.record(r, nil, ev.tooMany)
		}
		return
	}
	for _, st := range ev.images {
		if st.refErr == nil && !matchImage(r.Match.Images, st.img.Repo) {
			continue
		}
		ev.record(r, st, ev.checkImage(r, st))
	}
}

// anyImageInScope: a workload rule scoped to images applies to workloads
// that run one of them.
func (ev *evaluation) anyImageInScope(r *Rule) bool {
	if len(r.Match.Images) == 0 {
		return true
	}
	for _, st := range ev.images {
		if st.refErr == nil && matchImage(r.Match.Images, st.img.Repo) {
			return true
		}
	}
	return false
}

// record turns a check's error into a result, applying exemptions and the
// fail mode.
func (ev *evaluation) record(r *Rule, st *imageState, err error) {
	res := Result{Rule: r.Name, Kind: r.Kind(), Mode: r.Mode}
	subject := ""
	if st != nil {
		// The canonical form is what was judged; the reference as written
		// follows when it differs.
		res.Image, subject = st.img.Ref, st.img.Ref+": "
		if st.ref != nil {
			res.Image, subject = st.ref.String(), st.ref.Describe()+": "
		}
	}
	var v *Violation
	switch {
	case err == nil:
		res.Outcome = Allow
		res.Message = fmt.Sprintf("rule %q (%s): %spassed", r.Name, res.Kind, subject)
		if r.Signatures != nil && r.Signatures.tlog.Ignored() {
			// An insecure choice written in the policy: every decision it
			// lets through says so.
			res.Message += " (transparency log not checked: transparencyLog: ignore)"
			if !ev.tlogWarned[r] {
				if ev.tlogWarned == nil {
					ev.tlogWarned = map[*Rule]bool{}
				}
				ev.tlogWarned[r] = true
				ev.diags = append(ev.diags, diag.Warnf(diag.PolicyTlogIgnored, "rule %q (line %d) accepts signatures without a transparency-log check (transparencyLog: ignore): insecure, written in the policy", r.Name, r.Line).At(diag.Location{Path: ev.e.File.Source, Line: r.Line, Object: "rule " + r.Name}))
			}
		}
	case errors.As(err, &v):
		res.Message = fmt.Sprintf("rule %q (%s): %s%s", r.Name, res.Kind, subject, v.Msg)
		res.Outcome = Deny
		if r.Mode == Warn {
			res.Outcome = WarnOutcome
		}
		if ex := ev.exemption(r, st); ex != nil {
			res.Outcome = Allow
			res.Exempted = ex
			res.Message += fmt.Sprintf(" [exempted until %s by %s: %s]", ex.Expires, ex.Owner, ex.Reason)
		}
	default:
		res.Error = true
		res.Message = fmt.Sprintf("rule %q (%s): %scould not be checked: %v", r.Name, res.Kind, subject, err)
		switch {
		case r.Mode == Enforce && ev.failClosed:
			res.Outcome = Deny
			res.Message += " (fail-closed)"
		default:
			res.Outcome = WarnOutcome
			if r.Mode == Enforce {
				res.Message += " (fail-open)"
			}
		}
	}
	if st != nil {
		// Longest first: the written reference contains the repository.
		subjects := []string{st.img.Ref, st.img.Repo}
		if st.ref != nil {
			subjects = append(subjects, st.ref.String(), st.ref.Describe())
		}
		sort.Slice(subjects, func(i, j int) bool { return len(subjects[i]) > len(subjects[j]) })
		res.Message = shortenIn(res.Message, subjects...)
	}
	res.Message = diag.Shorten(res.Message, maxMessage)
	ev.results = append(ev.results, res)
}

// maxMessage bounds one result's message.
const maxMessage = 4 << 10

// exemption finds an unexpired exemption of rule r for the image and
// namespace; expired ones stop exempting, with a warning.
func (ev *evaluation) exemption(r *Rule, st *imageState) *Exemption {
	repo := ""
	if st != nil {
		repo = st.img.Repo // canonical; "" when the reference was rejected
	}
	for _, ex := range ev.e.File.Exemptions {
		if ex.Rule != r.Name || !matchNamespace(ex.Namespaces, ev.in.Namespace) {
			continue
		}
		// An exemption for some namespaces does not cover an unknown one
		// (the gate judging a manifest that names none): the workload may
		// go anywhere.
		if len(ex.Namespaces) > 0 && ev.in.Namespace == "" {
			continue
		}
		if len(ex.Images) > 0 && (repo == "" || !matchImage(ex.Images, repo)) {
			continue
		}
		if ev.now.After(ex.expires) {
			if !ev.warned[ex] {
				ev.warned[ex] = true
				ev.diags = append(ev.diags, diag.Warnf(diag.PolicyExemptionExpired, "exemption for rule %q (owner %s, line %d) expired on %s: no longer exempting; renew or remove it", ex.Rule, ex.Owner, ex.Line, ex.Expires).At(diag.Location{Path: ev.e.File.Source, Line: ex.Line, Object: "rule " + ex.Rule}))
			}
			continue
		}
		return ex
	}
	return nil
}

func (ev *evaluation) checkImage(r *Rule, st *imageState) error {
	if st.refErr != nil {
		var rej *imageref.Error
		if errors.As(st.refErr, &rej) {
			// Rejected, not unknown: no fail mode lets it through.
			return &Violation{st.refErr.Error()}
		}
		return st.refErr
	}
	switch {
	case r.DigestPinning != nil:
		if !st.pinned {
			return &Violation{"not pinned by digest: reference it as " + st.img.Repo + "@sha256:..."}
		}
		return nil
	case r.Registries != nil:
		if !matchImage(r.Registries.Allowed, st.img.Registry) {
			return &Violation{fmt.Sprintf("registry %s is not allowed (allowed: %s)", st.img.Registry, strings.Join(r.Registries.Allowed, ", "))}
		}
		return nil
	case r.Encryption != nil:
		return ev.checkEncryption(r.Encryption, st)
	case r.Signatures != nil:
		if err := ev.digest(st); err != nil {
			return err
		}
		if err := ev.spent("signatures of " + st.img.Ref); err != nil {
			return err
		}
		return ev.e.Facts.Verify(ev.ctx, &st.img, r.Signatures)
	}
	sc, err := ev.scan(st)
	if err != nil {
		return err
	}
	switch {
	case r.Vulnerabilities != nil:
		return checkVulns(r.Vulnerabilities, sc, ev.now)
	case r.Secrets != nil:
		return checkSecrets(r.Secrets, sc)
	case r.BaseImages != nil:
		if sc.Base == "" {
			return &Violation{fmt.Sprintf("base image not identified (%s); allowed bases: %s", sc.BaseReason, strings.Join(r.BaseImages.Allowed, ", "))}
		}
		if !matchBase(r.BaseImages.Allowed, sc.Base) {
			return &Violation{fmt.Sprintf("base image %s is not allowed (allowed: %s)", sc.Base, strings.Join(r.BaseImages.Allowed, ", "))}
		}
		return nil
	case r.CEL != nil:
		return checkImageCEL(r.CEL, sc)
	}
	return nil
}

// checkEncryption judges the layer media types of every manifest the
// image's digest names.
func (ev *evaluation) checkEncryption(er *EncryptionRule, st *imageState) error {
	if err := ev.digest(st); err != nil {
		return err
	}
	mf, ok := ev.e.Facts.(ManifestFacts)
	if !ok {
		return fmt.Errorf("encryption of %s not checked: these facts cannot read manifests", st.img.Ref)
	}
	if err := ev.spent("manifest of " + st.img.Ref); err != nil {
		return err
	}
	ms, err := mf.Manifests(ev.ctx, &st.img)
	if err != nil {
		return err
	}
	return checkLayersEncrypted(er, ms)
}

func checkLayersEncrypted(er *EncryptionRule, ms []ImageManifest) error {
	if len(ms) == 0 {
		return &Violation{"no image manifest to check for encrypted layers"}
	}
	var bad []string
	for _, m := range ms {
		var plain []string
		for i, l := range m.Layers {
			if !image.IsEncryptedMediaType(string(l.MediaType)) {
				plain = append(plain, fmt.Sprintf("layer %d %s (%s)", i, l.Digest, l.MediaType))
			}
		}
		what := "image " + m.Digest
		if m.Platform != "" {
			what += " (" + m.Platform + ")"
		}
		switch {
		case len(m.Layers) == 0:
			bad = append(bad, what+" has no layers")
		case er.Layers == "any" && len(plain) == len(m.Layers):
			bad = append(bad, fmt.Sprintf("%s has no encrypted layer", what))
		case er.Layers != "any" && len(plain) > 0:
			bad = append(bad, fmt.Sprintf("%s has %d unencrypted %s: %s", what, len(plain), plural(len(plain), "layer", "layers"), list(plain, 3)))
		}
	}
	if len(bad) > 0 {
		return &Violation{strings.Join(bad, "; ") + "; encrypt it with bulkhead encrypt --key jwe:pub.pem (or skopeo copy --encryption-key)"}
	}
	return nil
}

func checkVulns(vr *VulnerabilityRule, sc *Scan, now time.Time) error {
	if len(sc.Incomplete) > 0 {
		// Not a pass: an image that inflates its package database past
		// the limits would otherwise hide every package it has. Not a
		// violation either (a genuine, very large image is possible): the
		// rule could not be checked, and the fail mode decides.
		more := ""
		if len(sc.Incomplete) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(sc.Incomplete)-1)
		}
		return fmt.Errorf("the image's packages could not all be read, so its vulnerabilities cannot be judged: %s%s", diag.Shorten(sc.Incomplete[0], 1024), more)
	}
	if vr.DBMaxAge > 0 {
		of := ""
		if sc.DBEcosystem != "" {
			of = " for " + sc.DBEcosystem
		}
		if sc.DBUpdated.IsZero() {
			return &Violation{fmt.Sprintf("the age of the vulnerability data%s is unknown (%s), so it cannot be shown to be newer than dbMaxAge %s: run bulkhead db update", of, sc.DBSource, time.Duration(vr.DBMaxAge))}
		}
		if now.Sub(sc.DBUpdated) > time.Duration(vr.DBMaxAge) {
			return &Violation{fmt.Sprintf("the vulnerability data%s is from %s, older than dbMaxAge %s: run bulkhead db update", of, sc.DBUpdated.Format("2006-01-02"), time.Duration(vr.DBMaxAge))}
		}
	}
	var fs []finding.Finding
	for _, f := range sc.Findings {
		if f.Kind == finding.KindVulnerability {
			f.Suppressed = nil
			fs = append(fs, f)
		}
	}
	if len(vr.vex) > 0 {
		match.ApplyVEX(fs, vr.vex, match.ImageIdentifiers(&sc.Target))
	}
	var over []string
	for _, f := range match.Active(fs) {
		if vr.ignored(f) || (vr.OnlyFixed && len(f.FixedVersions) == 0) || f.Severity <= vr.max {
			continue
		}
		s := fmt.Sprintf("%s %s", f.Severity, f.ID)
		if f.Package != nil {
			s += fmt.Sprintf(" in %s %s", f.Package.Name, f.Package.Version)
		}
		if len(f.FixedVersions) > 0 {
			s += " (fixed in " + strings.Join(f.FixedVersions, ", ") + ")"
		}
		over = append(over, s)
	}
	if len(over) == 0 {
		return nil
	}
	sort.Strings(over)
	return &Violation{fmt.Sprintf("%d %s above %s: %s", len(over), plural(len(over), "vulnerability", "vulnerabilities"), vr.max, list(over, 5))}
}

func (vr *VulnerabilityRule) ignored(f finding.Finding) bool {
	if vr.ignore[strings.ToUpper(f.ID)] {
		return true
	}
	for _, a := range f.Aliases {
		if vr.ignore[strings.ToUpper(a)] {
			return true
		}
	}
	return false
}

func checkSecrets(sr *SecretsRule, sc *Scan) error {
	var hits []string
	for _, f := range sc.Findings {
		if f.Kind != finding.KindSecret || contains(sr.Ignore, f.ID) {
			continue
		}
		s := f.ID
		if f.Location != nil {
			s += " in " + f.Location.Path
		}
		hits = append(hits, s)
	}
	if len(hits) == 0 {
		return nil
	}
	sort.Strings(hits)
	return &Violation{fmt.Sprintf("%d %s in the image: %s", len(hits), plural(len(hits), "secret", "secrets"), list(hits, 5))}
}

func checkImageCEL(cr *CELRule, sc *Scan) error {
	checks := cr.policy.ForTarget(cel.ImageConfig)
	if len(checks) == 0 {
		return nil
	}
	if sc.Config == nil {
		return &Violation{"the image has no configuration for the imageconfig checks"}
	}
	vars, err := cel.ImageConfigVars(sc.Config)
	if err != nil {
		return err
	}
	var hits []string
	for _, c := range checks {
		places, err := c.Eval(vars)
		if err != nil {
			return fmt.Errorf("cel check %s: %w", c.ID, err)
		}
		if len(places) > 0 {
			hits = append(hits, c.ID+": "+orElse(c.Message, c.Title))
		}
	}
	if len(hits) == 0 {
		return nil
	}
	return &Violation{list(hits, 5)}
}

func (ev *evaluation) checkObject(r *Rule, o *kubernetes.Object) error {
	var fs []finding.Finding
	var err error
	switch {
	case r.PodSecurity != nil:
		all, e := r.PodSecurity.scanner.Object(o)
		err = e
		for _, f := range all {
			if c := kubernetes.CheckByID(f.ID); c != nil && c.Level != kubernetes.LevelNone {
				fs = append(fs, f)
			}
		}
	case r.Workload != nil:
		all, e := r.Workload.scanner.Object(o)
		err = e
		for _, f := range all {
			if r.Workload.ids[f.ID] {
				fs = append(fs, f)
			}
		}
	case r.CEL != nil:
		fs, err = kubernetes.NewCELChecks(r.CEL.policy).CheckObject(o)
	}
	if err != nil {
		return err
	}
	if len(fs) == 0 {
		return nil
	}
	// One entry per check, naming the containers: "BH-K8S-003 Privileged
	// container: container "app" runs privileged".
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].ID < fs[j].ID })
	var hits []string
	for i := 0; i < len(fs); {
		j := i
		var details []string
		seen := map[string]bool{}
		for ; j < len(fs) && fs[j].ID == fs[i].ID; j++ {
			if d := detail(fs[j]); d != "" && !seen[strings.ToLower(d)] {
				seen[strings.ToLower(d)] = true
				details = append(details, d)
			}
		}
		// A pod can have thousands of containers: name a few.
		if len(details) > maxDetails {
			details = append(details[:maxDetails], fmt.Sprintf("and %d more", len(details)-maxDetails))
		}
		title, _, _ := strings.Cut(fs[i].Title, " (Pod Security Standards")
		h := fs[i].ID + " " + title
		if len(details) > 0 {
			h += ": " + strings.Join(details, ", ")
		}
		hits = append(hits, h)
		i = j
	}
	what := fmt.Sprintf("%s %s", o.Kind, o.Meta.Name)
	if r.PodSecurity != nil {
		what += " violates Pod Security " + string(r.PodSecurity.level)
	} else {
		what += " fails"
	}
	return &Violation{what + ": " + list(hits, 6)}
}

// maxDetails is how many places one workload check's message names.
const maxDetails = 5

// detail is what a workload finding says about where it is: its
// description without the object's name and the admission plugin's
// restatement ("container \"app\" runs privileged").
func detail(f finding.Finding) string {
	d := f.Description
	if _, rest, ok := strings.Cut(d, ": "); ok {
		d = rest
	}
	d, _, _ = strings.Cut(d, "; ")
	if len(d) > 160 {
		d = d[:160] + "..."
	}
	return d
}

func list(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:n], "; ") + fmt.Sprintf("; and %d more", len(items)-n)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ruleLine is the line of the rule named name in the policy file (0 when
// unknown).
func (ev *evaluation) ruleLine(name string) int {
	for _, r := range ev.e.File.Rules {
		if r.Name == name {
			return r.Line
		}
	}
	return 0
}
