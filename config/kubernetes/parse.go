package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Limits that keep hostile input from costing unbounded memory or time.
const (
	// MaxInputSize is the largest manifest stream read (Helm output of a big
	// chart is a few MB).
	MaxInputSize = 32 << 20
	// maxNodes bounds the values one document expands to, aliases included
	// (a "billion laughs" document is small but expands exponentially).
	maxNodes = 1 << 20
	// maxAliasNodes bounds the values aliases expand to: manifests use
	// anchors for a few shared blocks, never for thousands of values.
	maxAliasNodes = 100_000
	// maxDepth bounds nesting.
	maxDepth = 200
	// maxListDepth bounds List-in-List nesting.
	maxListDepth = 8
)

// Object is one Kubernetes object of a manifest stream.
type Object struct {
	// File is the name the stream was read under ("-" for stdin).
	File string
	// Doc is the 0-based index of the YAML document in the stream.
	Doc        int
	APIVersion string
	Kind       string
	// Path is the object's position inside its document: "" for a top-level
	// object, "items[3]" for an item of a List.
	Path string
	// Line is the 1-based line the object starts on.
	Line int
	Meta metav1.ObjectMeta
	// Raw is the object as decoded from its JSON form (map[string]any,
	// []any, string, float64/int64, bool, nil); CEL checks see this.
	Raw map[string]any
	// Pod is the pod template of workload kinds and the spec of a Pod; nil
	// for other kinds.
	Pod *PodTemplate

	lines map[string]int
}

// PodTemplate is the pod an object runs, with where it sits.
type PodTemplate struct {
	// SpecPath is the field path of the PodSpec ("spec",
	// "spec.template.spec", "spec.jobTemplate.spec.template.spec").
	SpecPath string
	// MetaPath is the field path of the pod's metadata.
	MetaPath string
	Meta     metav1.ObjectMeta
	Spec     corev1.PodSpec
}

// LineOf returns the line of the field at path, or of its nearest ancestor
// present in the manifest when the field itself is absent (a missing
// securityContext is reported on the container that lacks it).
func (o *Object) LineOf(path string) int {
	for p := path; ; {
		if l, ok := o.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	if l, ok := o.lines[o.Path]; ok {
		return l
	}
	return o.Line
}

// HasField reports whether the manifest spells out the field at path.
func (o *Object) HasField(path string) bool {
	_, ok := o.lines[path]
	return ok
}

// Field joins a field path and a key, quoting keys that hold path syntax.
func Field(path, key string) string {
	if strings.ContainsAny(key, ".[]\"") || key == "" {
		key = "[" + strconv.Quote(key) + "]"
		return path + key
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index joins a field path and a list index.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// podSpecPaths says where each workload kind keeps its pod, in every
// apiVersion these kinds have had (extensions/v1beta1, apps/v1beta2, ...).
var podSpecPaths = map[string]string{
	"Pod":                   "",
	"PodTemplate":           "template",
	"Deployment":            "spec.template",
	"ReplicaSet":            "spec.template",
	"StatefulSet":           "spec.template",
	"DaemonSet":             "spec.template",
	"Job":                   "spec.template",
	"ReplicationController": "spec.template",
	"CronJob":               "spec.jobTemplate.spec.template",
}

// knativePodPaths are Knative Serving's workloads: their RevisionSpec is a
// PodSpec with a few fields more, and runs as a pod the same way.
var knativePodPaths = map[string]string{
	"Service":       "spec.template",
	"Configuration": "spec.template",
	"Revision":      "",
}

// WorkloadKinds lists the kinds whose pods are checked.
func WorkloadKinds() []string {
	return []string{"Pod", "PodTemplate", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}
}

// Parse reads a stream of manifests: multi-document YAML, JSON, Helm
// template output, List objects. Documents that are empty or not
// Kubernetes objects (no kind) are skipped; a document that fails to parse
// ends the stream with an error that names it, and the objects read before
// it are returned with the error.
func Parse(name string, r io.Reader) ([]*Object, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("read %s: larger than %d MiB; split the manifests into smaller files", name, MaxInputSize>>20)
	}
	return ParseBytes(name, data)
}

// ParseBytes is Parse over bytes in memory.
func ParseBytes(name string, data []byte) ([]*Object, error) {
	d := NewDecoder(name, data)
	var objs []*Object
	for {
		got, err := d.Next()
		objs = append(objs, got...)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return objs, err
		}
	}
}

// DefaultMaxObjects is the Decoder's default bound on the objects of one
// stream: Helm output of a large chart is a few thousand.
const DefaultMaxObjects = 10_000

// ErrTooManyObjects is wrapped by the error of a stream with more objects
// than its Decoder allows.
var ErrTooManyObjects = errors.New("too many objects")

// Decoder reads a manifest stream one YAML document at a time, so a long
// stream costs the memory of its largest document, not of all of them.
type Decoder struct {
	name string
	data []byte
	dec  *yaml.Decoder
	doc  int
	objs int
	done error
	// MaxObjects bounds the objects returned over the stream (List items
	// count one each); 0 means no bound. Past it Next returns an error
	// wrapping ErrTooManyObjects.
	MaxObjects int
}

// NewDecoder reads the stream in data under name ("-" for stdin), with
// MaxObjects set to 0 (no bound).
func NewDecoder(name string, data []byte) *Decoder {
	return &Decoder{name: name, data: data, dec: yaml.NewDecoder(bytes.NewReader(data))}
}

// Objects is how many objects Next has returned so far.
func (d *Decoder) Objects() int { return d.objs }

// Next returns the objects of the next document that has any (none for an
// empty document or one that is not a Kubernetes object; several for a
// List). It returns io.EOF after the last document. A document that fails
// to parse ends the stream with an error that names it; objects decoded
// from it before the error are returned with the error.
func (d *Decoder) Next() ([]*Object, error) {
	if d.done != nil {
		return nil, d.done
	}
	for {
		got, err := d.next()
		if d.MaxObjects > 0 && d.objs+len(got) > d.MaxObjects {
			got = got[:d.MaxObjects-d.objs]
			err = fmt.Errorf("%s: document %d: more than %d objects in one stream (%w); split the stream into smaller files, or raise the limit if the stream is trusted", d.name, d.doc, d.MaxObjects, ErrTooManyObjects)
		}
		d.objs += len(got)
		if err != nil {
			d.done = err
			return got, err
		}
		if len(got) > 0 {
			return got, nil
		}
	}
}

// next decodes one document.
func (d *Decoder) next() ([]*Object, error) {
	doc := d.doc
	d.doc++
	var n yaml.Node
	err := decodeDoc(d.dec, &n)
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("%s: document %d: %w (is it YAML or JSON?%s)", d.name, doc+1, err, templateHint(d.data))
	}
	if n.Kind == 0 || len(n.Content) == 0 {
		return nil, nil
	}
	c := &converter{lines: map[string]int{}}
	v, err := c.value(n.Content[0], "", 0)
	if err != nil {
		return nil, fmt.Errorf("%s: document %d: %w%s", d.name, doc+1, err, templateHint(d.data))
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil // a scalar or a list: not an object (comments-only docs land here too)
	}
	return objects(d.name, doc, "", m, c.lines, 0)
}

// templateHint suggests rendering when the text looks like an unrendered
// template.
func templateHint(data []byte) string {
	if bytes.Contains(data, []byte("{{")) {
		return "; it looks like an unrendered template: render it first (helm template ... | bulkhead config -)"
	}
	return ""
}

// decodeDoc decodes one document, turning the YAML library's panics on
// pathological input into errors.
func decodeDoc(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

// objects turns one decoded document (or List item) into Objects.
func objects(file string, doc int, path string, m map[string]any, lines map[string]int, depth int) ([]*Object, error) {
	kind, _ := m["kind"].(string)
	apiVersion, _ := m["apiVersion"].(string)
	if kind == "" {
		return nil, nil
	}
	if items, ok := m["items"].([]any); ok && (kind == "List" || strings.HasSuffix(kind, "List")) {
		if depth >= maxListDepth {
			return nil, fmt.Errorf("%s: document %d: Lists nested deeper than %d", file, doc+1, maxListDepth)
		}
		var out []*Object
		for i, it := range items {
			im, ok := it.(map[string]any)
			if !ok {
				continue
			}
			got, err := objects(file, doc, Index(Field(path, "items"), i), im, lines, depth+1)
			out = append(out, got...)
			if err != nil {
				return out, err
			}
		}
		return out, nil
	}
	o := &Object{File: file, Doc: doc, APIVersion: apiVersion, Kind: kind, Path: path, Raw: m, lines: lines}
	o.Line = lines[path]
	if o.Line == 0 {
		o.Line = 1
	}
	where := fmt.Sprintf("%s: document %d: %s", file, doc+1, kind)
	if md, ok := m["metadata"]; ok {
		if err := remarshal(md, &o.Meta); err != nil {
			return nil, fmt.Errorf("%s: metadata: %w", where, err)
		}
	}
	if o.Meta.Name != "" {
		where += " " + o.Meta.Name
	}
	tp, ok := podSpecPaths[kind]
	if strings.HasPrefix(apiVersion, "serving.knative.dev/") {
		tp, ok = knativePodPaths[kind]
	}
	if !ok {
		return []*Object{o}, nil
	}
	tmpl := m
	for _, k := range splitPlain(tp) {
		next, _ := tmpl[k].(map[string]any)
		tmpl = next
	}
	if tmpl == nil {
		return []*Object{o}, nil // a workload without a pod template: nothing to check
	}
	spec, _ := tmpl["spec"].(map[string]any)
	if spec == nil {
		return []*Object{o}, nil
	}
	base := path
	if tp != "" {
		base = joinPlain(path, tp)
	}
	p := &PodTemplate{SpecPath: joinPlain(base, "spec"), MetaPath: joinPlain(base, "metadata")}
	if md, ok := tmpl["metadata"]; ok {
		if err := remarshal(md, &p.Meta); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, p.MetaPath, err)
		}
	}
	if err := remarshal(spec, &p.Spec); err != nil {
		return nil, fmt.Errorf("%s: %s: %w; fix the field's type (kubectl apply --dry-run=server shows the same error)", where, p.SpecPath, err)
	}
	defaultPodSpec(&p.Spec)
	o.Pod = p
	return []*Object{o}, nil
}

// defaultPodSpec applies the API server's defaulting that changes what the
// admission checks see: a volume without a source becomes an emptyDir
// (SetDefaults_Volume), so the check judges the pod the cluster stores.
func defaultPodSpec(s *corev1.PodSpec) {
	for i := range s.Volumes {
		if s.Volumes[i].VolumeSource == (corev1.VolumeSource{}) {
			s.Volumes[i].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}
	}
}

func splitPlain(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

func joinPlain(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// remarshal decodes a generic value into a k8s.io/api type through its
// JSON form: the types' json tags and custom unmarshalers (Quantity,
// IntOrString) are the API's own.
func remarshal(v any, into any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// converter turns YAML nodes into JSON-compatible values and records the
// line of every field path.
type converter struct {
	lines map[string]int
	nodes int
	// inAlias is set while expanding an alias: the lines are the anchor's,
	// already recorded, and paths under an alias are not stored (that would
	// cost memory exponential in the nesting of aliases).
	inAlias    int
	aliasNodes int
}

func (c *converter) value(n *yaml.Node, path string, depth int) (any, error) {
	c.nodes++
	if c.nodes > maxNodes {
		return nil, fmt.Errorf("more than %d values; split the stream", maxNodes)
	}
	if c.inAlias > 0 {
		c.aliasNodes++
		if c.aliasNodes > maxAliasNodes {
			return nil, fmt.Errorf("aliases expand to more than %d values; refusing (a \"billion laughs\" document?)", maxAliasNodes)
		}
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	if c.inAlias == 0 {
		if _, ok := c.lines[path]; !ok {
			c.lines[path] = n.Line
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], path, depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, nil
		}
		c.inAlias++
		defer func() { c.inAlias-- }()
		return c.value(n.Alias, path, depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				// "<<: *anchor" merges the anchor's keys (YAML 1.1 merge keys).
				if err := c.merge(m, v, path, depth); err != nil {
					return nil, err
				}
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping key is not a scalar", k.Line)
			}
			var kp string
			if c.inAlias == 0 {
				kp = Field(path, k.Value)
			}
			val, err := c.value(v, kp, depth+1)
			if err != nil {
				return nil, err
			}
			if c.inAlias == 0 {
				// the key's line, not the value's, is where a reader looks
				c.lines[kp] = k.Line
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, it := range n.Content {
			var ip string
			if c.inAlias == 0 {
				ip = Index(path, i)
			}
			val, err := c.value(it, ip, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		return s, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

func (c *converter) merge(m map[string]any, v *yaml.Node, path string, depth int) error {
	val, err := c.value(v, path, depth+1)
	if err != nil {
		return err
	}
	add := func(x any) {
		if mm, ok := x.(map[string]any); ok {
			for k, vv := range mm {
				if _, set := m[k]; !set {
					m[k] = vv
				}
			}
		}
	}
	if s, ok := val.([]any); ok {
		for _, x := range s {
			add(x)
		}
		return nil
	}
	add(val)
	return nil
}

// scalar resolves a scalar the way YAML 1.2's core schema (and the API
// server's YAML reader) does.
func scalar(n *yaml.Node) (any, error) {
	// fast paths for what manifests are made of; the rest goes through the
	// library's own resolution
	switch n.ShortTag() {
	case "!!str":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		switch n.Value {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			return i, nil
		}
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case uint64:
		return float64(x), nil
	case []byte:
		return string(x), nil
	case nil, string, bool, int64, float64:
		return v, nil
	}
	// timestamps and other tags: keep the text, as the JSON form would
	return n.Value, nil
}
