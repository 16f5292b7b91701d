package kubernetes

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/secret"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// IgnoreAnnotation on an object (or its pod template) lists check IDs not
// to report for it: "bulkhead.dev/ignore: BH-K8S-003,BH-K8S-101".
const IgnoreAnnotation = "bulkhead.dev/ignore"

// Options choose what a Scanner checks.
type Options struct {
	// Level is the Pod Security Standards level to hold pods to: baseline
	// reports only baseline controls, restricted (the default) both.
	Level Level
	// Version of the standards ("latest", the default, or "v1.30"), as in
	// the pod-security.kubernetes.io/enforce-version label.
	Version string
	// Extra are more checks to run on each object (CEL policies).
	Extra []ObjectChecker
	// Secrets scans the decoded values of committed Secret objects; nil
	// uses secret.Default().
	Secrets *secret.Scanner
}

// ObjectChecker is a check run beside the built-in ones (the CEL policies
// implement it).
type ObjectChecker interface {
	CheckObject(o *Object) ([]finding.Finding, error)
}

// Scanner runs the checks; build it once, use it for many objects.
type Scanner struct {
	opts  Options
	pss   []pssCheck
	byPSS map[policy.CheckID]*Check
}

// ParseLevel reads a --pss value.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "restricted":
		return LevelRestricted, nil
	case "baseline":
		return LevelBaseline, nil
	}
	return "", fmt.Errorf("unknown Pod Security Standards level %q (use baseline or restricted)", s)
}

// New selects the checks for the options.
func New(opts Options) (*Scanner, error) {
	if opts.Level == LevelNone {
		opts.Level = LevelRestricted
	}
	if opts.Version == "" {
		opts.Version = api.VersionLatest
	}
	lvl, err := api.ParseLevel(string(opts.Level))
	if err != nil || lvl == api.LevelPrivileged {
		return nil, fmt.Errorf("unknown Pod Security Standards level %q (use baseline or restricted)", opts.Level)
	}
	v, err := api.ParseVersion(opts.Version)
	if err != nil {
		return nil, fmt.Errorf("Pod Security Standards version %q: %w (use latest or v1.N)", opts.Version, err)
	}
	s := &Scanner{opts: opts, pss: selectPSS(lvl, v), byPSS: map[policy.CheckID]*Check{}}
	for _, c := range Checks {
		if c.PSS != "" {
			s.byPSS[c.PSS] = c
		}
	}
	return s, nil
}

// streamContext is what the objects of one stream tell about each other:
// a pod's ServiceAccount decides whether its token is mounted, the RBAC
// bindings whether the pod calls the API, and the roles, bindings and
// workloads together make the RBAC assessment.
type streamContext struct {
	automount map[string]*bool // namespace/name of a ServiceAccount -> its automountServiceAccountToken
	rbac      RBACSet
	bound     map[string]map[string]bool // boundServiceAccounts, computed when first needed
	// pending is set for a Stream, whose accounts and bindings are not all
	// known yet; waiting then names the account the last automount
	// finding depends on, and waitingPod says the pod's own field decided
	// that the token is mounted.
	pending    bool
	waiting    string
	waitingPod bool
}

func newStreamContext(objs []*Object) (*streamContext, error) {
	sc := &streamContext{automount: map[string]*bool{}}
	for _, o := range objs {
		if err := sc.add(o); err != nil {
			return sc, err
		}
	}
	return sc, nil
}

// add records a ServiceAccount, an RBAC object or a workload.
func (sc *streamContext) add(o *Object) error {
	if o.Kind == "ServiceAccount" && strings.HasPrefix(o.APIVersion, "v1") {
		var v *bool
		if b, ok := o.Raw["automountServiceAccountToken"].(bool); ok {
			v = &b
		}
		sc.automount[o.Meta.Namespace+"/"+o.Meta.Name] = v
	}
	sc.bound = nil
	return sc.rbac.Add(o)
}

func (sc *streamContext) serviceAccountAutomount(ns, name string) *bool {
	if sc == nil {
		return nil
	}
	a, ok := sc.automount[ns+"/"+name]
	if !ok && sc.pending {
		// the account may come later in the stream: the caller's finding
		// waits for Finish
		sc.waiting = ns + "/" + name
	}
	return a
}

// needsAPI is the heuristic for "the pod calls the API server": the
// manifests bind its service account (namespace/name) to a Role or
// ClusterRole that grants more than discovery. In a Stream the answer
// waits for Finish: it says no, and the caller's finding is held.
func (sc *streamContext) needsAPI(ns, name string, podSet bool) bool {
	if sc == nil {
		return false
	}
	if sc.pending {
		sc.waiting, sc.waitingPod = ns+"/"+name, podSet
		return false
	}
	if sc.bound == nil {
		sc.bound = sc.rbac.boundServiceAccounts()
	}
	return bindsServiceAccount(sc.bound, ns, name)
}

// Scan checks every object and returns the findings, sorted by file, line
// and ID. Objects of one stream see each other (a pod and the
// ServiceAccount it uses).
func (s *Scanner) Scan(objs []*Object) ([]finding.Finding, error) {
	var out []finding.Finding
	sc, err := newStreamContext(objs)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		fs, err := s.object(o, sc)
		if err != nil {
			return out, err
		}
		out = append(out, fs...)
	}
	if !sc.rbac.Empty() {
		out = append(out, AssessRBAC(&sc.rbac).Findings...)
	}
	SortFindings(out)
	return out, nil
}

// Stream checks the objects of one stream as they are decoded, holding
// none of them: Check each document's objects, then Finish. The findings
// are those Scan gives for the whole stream: a pod's automount finding,
// which the stream's ServiceAccounts and bindings decide, is held
// (compactly) until Finish, and the RBAC assessment, which needs every
// role and binding, is made by Finish from the compact RBACSet.
type Stream struct {
	s       *Scanner
	sc      *streamContext
	pending []pendingAutomount
	tmpl    map[string]*finding.Finding // what the held findings share, by title
}

// pendingAutomount is a pod's automount finding waiting on the
// ServiceAccount namespace/name, kept as what differs from pod to pod.
type pendingAutomount struct {
	account string
	podSet  bool // the pod's own field mounts the token
	tmpl    *finding.Finding
	loc     finding.Location
	desc    string
	supp    *finding.Suppression
}

// NewStream starts checking one stream.
func (s *Scanner) NewStream() *Stream {
	return &Stream{s: s, sc: &streamContext{automount: map[string]*bool{}, pending: true}}
}

// Check checks the objects of one document and returns their findings,
// sorted by line and ID.
func (st *Stream) Check(objs []*Object) ([]finding.Finding, error) {
	for _, o := range objs {
		if err := st.sc.add(o); err != nil {
			return nil, err
		}
	}
	var out []finding.Finding
	for _, o := range objs {
		st.sc.waiting, st.sc.waitingPod = "", false
		fs, err := st.s.object(o, st.sc)
		if err != nil {
			return out, err
		}
		if st.sc.waiting != "" {
			kept := fs[:0]
			for _, f := range fs {
				if f.ID == automountCheckID && f.Location != nil {
					st.hold(st.sc.waiting, st.sc.waitingPod, f)
					continue
				}
				kept = append(kept, f)
			}
			fs = kept
		}
		out = append(out, fs...)
	}
	SortFindings(out)
	return out, nil
}

func (st *Stream) hold(account string, podSet bool, f finding.Finding) {
	t := st.tmpl[f.Title+"\x00"+f.Target]
	if t == nil {
		t = &finding.Finding{ID: f.ID, Kind: f.Kind, Severity: f.Severity, SeveritySource: f.SeveritySource, Title: f.Title, Target: f.Target, Fix: f.Fix, References: f.References}
		if st.tmpl == nil {
			st.tmpl = map[string]*finding.Finding{}
		}
		st.tmpl[f.Title+"\x00"+f.Target] = t
	}
	st.pending = append(st.pending, pendingAutomount{account: account, podSet: podSet, tmpl: t, loc: *f.Location, desc: f.Description, supp: f.Suppressed})
}

// Finish returns the held findings the stream's ServiceAccounts and
// bindings did not clear and the RBAC assessment's findings, sorted by
// line.
func (st *Stream) Finish() []finding.Finding {
	var out []finding.Finding
	st.sc.pending = false
	for _, p := range st.pending {
		ns, name, _ := strings.Cut(p.account, "/")
		if st.sc.needsAPI(ns, name, p.podSet) {
			continue
		}
		if a := st.sc.automount[p.account]; p.podSet || a == nil || *a {
			f := *p.tmpl
			loc := p.loc
			f.Location, f.Description, f.Suppressed = &loc, p.desc, p.supp
			out = append(out, f)
		}
	}
	st.pending = nil
	if !st.sc.rbac.Empty() {
		out = append(out, AssessRBAC(&st.sc.rbac).Findings...)
	}
	st.sc.rbac = RBACSet{}
	SortFindings(out)
	return out
}

// Object checks one object on its own (a Role or ClusterRole is
// assessed as a set of one).
func (s *Scanner) Object(o *Object) ([]finding.Finding, error) {
	fs, err := s.object(o, nil)
	if err != nil {
		return fs, err
	}
	var set RBACSet
	if err := set.Add(o); err != nil {
		return fs, err
	}
	if !set.Empty() {
		fs = append(fs, AssessRBAC(&set).Findings...)
	}
	return fs, nil
}

func (s *Scanner) object(o *Object, sc *streamContext) ([]finding.Finding, error) {
	var out []finding.Finding
	if o.Pod != nil {
		for id, hits := range pssHits(o, s.pss) {
			c := s.byPSS[id]
			if c == nil {
				// a control newer than this catalogue: report it under its own name
				c = &Check{ID: "BH-K8S-PSS-" + string(id), Title: "Pod Security Standards: " + string(id), Severity: finding.Medium, Level: LevelBaseline, Link: pssLink}
			}
			out = append(out, s.findings(o, c, hits)...)
		}
	}
	for _, c := range Checks {
		if c.run != nil {
			out = append(out, s.findings(o, c, c.run(o, sc))...)
		}
	}
	if o.Kind == "Secret" && o.APIVersion == "v1" {
		out = append(out, SecretValueFindings(o, s.opts.Secrets)...)
	}
	for _, x := range s.opts.Extra {
		fs, err := x.CheckObject(o)
		if err != nil {
			return out, err
		}
		out = append(out, fs...)
	}
	applyIgnores(o, out)
	return out, nil
}

func (s *Scanner) findings(o *Object, c *Check, hits []Hit) []finding.Finding {
	var out []finding.Finding
	seen := map[string]bool{}
	for _, h := range hits {
		if seen[h.Path] {
			continue
		}
		seen[h.Path] = true
		out = append(out, NewFinding(o, c.ID, c.Severity, c.Title, c.Level, h.Path, describe(o, h), c.Fix, c.Link))
	}
	return out
}

func describe(o *Object, h Hit) string {
	msg := fmt.Sprintf("%s %s: %s", o.Kind, objectName(o), h.Message)
	if h.Detail != "" {
		// The admission library's detail names every offending container,
		// and each container's finding repeats it: cap it, or a pod with
		// thousands of containers costs quadratic time and memory.
		msg += "; pod-security-admission: " + diag.Shorten(h.Detail, maxDetail)
	}
	return msg
}

// maxDetail bounds the pod-security-admission detail repeated in each
// finding.
const maxDetail = 1 << 10

func objectName(o *Object) string {
	if o.Meta.Namespace != "" {
		return o.Meta.Namespace + "/" + o.Meta.Name
	}
	if o.Meta.Name == "" {
		return "(unnamed)"
	}
	return o.Meta.Name
}

// NewFinding builds a misconfiguration finding on the field at path.
func NewFinding(o *Object, id string, sev finding.Severity, title string, level Level, path, desc, fix, link string) finding.Finding {
	if level != LevelNone {
		title = fmt.Sprintf("%s (Pod Security Standards: %s)", title, level)
	}
	f := finding.Finding{
		ID:             id,
		Kind:           finding.KindMisconfiguration,
		Severity:       sev,
		SeveritySource: "bulkhead",
		Title:          title,
		Description:    desc,
		Target:         o.File,
		Location:       &finding.Location{Path: o.File, StartLine: o.LineOf(path)},
		Fix:            fix,
	}
	if link != "" {
		f.References = []string{link}
	}
	return f
}

// applyIgnores marks the findings the object's annotation names.
func applyIgnores(o *Object, fs []finding.Finding) {
	ids := ignored(o.Meta.Annotations)
	if o.Pod != nil {
		for k := range ignored(o.Pod.Meta.Annotations) {
			ids[k] = true
		}
	}
	if len(ids) == 0 {
		return
	}
	for i := range fs {
		if ids[fs[i].ID] || ids["*"] {
			fs[i].Suppressed = &finding.Suppression{Kind: "ignore", Statement: "annotation " + IgnoreAnnotation, Source: o.File}
		}
	}
}

func ignored(ann map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, id := range strings.Split(ann[IgnoreAnnotation], ",") {
		if id = strings.TrimSpace(id); id != "" {
			out[strings.ToUpper(id)] = true
		}
	}
	return out
}

// SortFindings orders findings by file, line and ID.
func SortFindings(fs []finding.Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		la, lb := 0, 0
		if a.Location != nil {
			la = a.Location.StartLine
		}
		if b.Location != nil {
			lb = b.Location.StartLine
		}
		if la != lb {
			return la < lb
		}
		return a.ID < b.ID
	})
}

func sortStrings(s []string) { sort.Strings(s) }
