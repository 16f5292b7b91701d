package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// EngineVersion is the Falco rule-engine version whose rule format and
// fields bulkhead implements; required_engine_version is checked against it.
const EngineVersion = "0.57.0"

// MaxRulesFileSize bounds one rules file; Falco's whole stable ruleset is
// under 300 KB.
const MaxRulesFileSize = 16 << 20

// The sources bulkhead can evaluate. Rules for other sources (k8s_audit,
// aws_cloudtrail, ... which Falco serves with plugins) are skipped with a
// warning, as Falco does when the plugin is not loaded.
const SourceSyscall = "syscall"

// providedPlugins are Falco plugins whose fields bulkhead supplies natively.
var providedPlugins = map[string]bool{"container": true}

// Loader reads Falco rules files in order (later files append to and
// override earlier ones) and compiles them into a Ruleset.
type Loader struct {
	col      collector
	warnings []Diagnostic
	opts     options
}

type options struct {
	minPriority Priority
	hostname    string
}

// Option configures a Loader.
type Option func(*options)

// WithMinPriority drops rules less severe than p (Falco's -o priority=).
func WithMinPriority(p Priority) Option { return func(o *options) { o.minPriority = p } }

// WithHostname sets the hostname reported in alerts and evt.hostname.
func WithHostname(h string) Option { return func(o *options) { o.hostname = h } }

// NewLoader returns an empty loader.
func NewLoader(opts ...Option) *Loader {
	l := &Loader{opts: options{minPriority: PriorityDebug}}
	for _, o := range opts {
		o(&l.opts)
	}
	return l
}

// LoadFiles loads rules files in order and compiles them.
func LoadFiles(paths []string, opts ...Option) (*Ruleset, error) {
	l := NewLoader(opts...)
	for _, p := range paths {
		if err := l.LoadFile(p); err != nil {
			return nil, err
		}
	}
	return l.Ruleset()
}

// LoadFile reads one rules file into the loader. A directory loads each
// of its .yaml/.yml files in name order, as Falco does.
func (l *Loader) LoadFile(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return fmt.Errorf("read rules directory: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				continue
			}
			if err := l.LoadFile(filepath.Join(path, n)); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open rules file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRulesFileSize+1))
	if err != nil {
		return fmt.Errorf("read rules file %s: %w", path, err)
	}
	if len(data) > MaxRulesFileSize {
		return fmt.Errorf("rules file %s is larger than %d bytes; split it into several files", path, MaxRulesFileSize)
	}
	return l.Load(path, data)
}

// Warnings returns the warnings of the reads so far.
func (l *Loader) Warnings() []Diagnostic { return l.warnings }

func (l *Loader) warn(d Diagnostic) { l.warnings = append(l.warnings, d) }

// Load reads one rules file's content. Like Falco it stops at the first
// error in the file; the items before it stay loaded.
func (l *Loader) Load(name string, content []byte) error {
	root := ctxInfo{file: name, itemType: "rules content"}
	var docs []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d := root.diag(ErrYAMLParse, err.Error())
			d.Line = yamlErrLine(err)
			return &LoadError{d}
		}
		docs = append(docs, &n)
	}
	for _, doc := range docs {
		n := doc
		if n.Kind == yaml.DocumentNode {
			if len(n.Content) == 0 {
				continue
			}
			n = n.Content[0]
		}
		if isNull(n) {
			continue
		}
		c := root
		c.line, c.col = n.Line, n.Column
		if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
			return c.err(ErrYAMLValidate, "Rules content is not yaml")
		}
		if n.Kind != yaml.SequenceNode {
			return c.err(ErrYAMLValidate, "Rules content is not yaml array of objects")
		}
		for _, item := range n.Content {
			if isNull(item) {
				continue
			}
			if err := l.readItem(name, resolveAlias(item)); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlErrLine pulls the line number out of a yaml.v3 error message.
func yamlErrLine(err error) int {
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		j := i + 5
		k := j
		for k < len(msg) && msg[k] >= '0' && msg[k] <= '9' {
			k++
		}
		n, _ := strconv.Atoi(msg[j:k])
		return n
	}
	return 0
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// get returns the value node for key in a mapping, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return resolveAlias(m.Content[i+1])
		}
	}
	return nil
}

func has(m *yaml.Node, key string) bool {
	if m == nil || m.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

func at(c ctxInfo, n *yaml.Node) ctxInfo {
	if n != nil {
		c.line, c.col = n.Line, n.Column
	}
	return c
}

// decodeStr reads a required (or optional) non-empty scalar, with Falco's
// messages.
func decodeStr(item *yaml.Node, key string, c ctxInfo, optional bool) (string, bool, error) {
	if !has(item, key) {
		if optional {
			return "", false, nil
		}
		return "", false, c.err(ErrYAMLValidate, "Item has no mapping for key '"+key+"'")
	}
	v := get(item, key)
	if isNull(v) {
		return "", false, c.err(ErrYAMLValidate, "Mapping for key '"+key+"' is empty")
	}
	if v.Kind != yaml.ScalarNode {
		return "", false, at(c, v).err(ErrYAMLValidate, "Value is not a scalar value")
	}
	if v.Value == "" {
		return "", false, at(c, v).err(ErrYAMLValidate, "Value must be non-empty")
	}
	return v.Value, true, nil
}

// parseYAMLBool accepts the spellings yaml-cpp (Falco's parser) accepts.
func parseYAMLBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "y":
		return true, true
	case "false", "no", "off", "n":
		return false, true
	}
	return false, false
}

func decodeBool(item *yaml.Node, key string, c ctxInfo, optional bool) (bool, bool, error) {
	s, ok, err := decodeStr(item, key, c, optional)
	if err != nil || !ok {
		return false, ok, err
	}
	b, valid := parseYAMLBool(s)
	if !valid {
		return false, false, at(c, get(item, key)).err(ErrYAMLValidate, "Can't decode YAML scalar value")
	}
	return b, true, nil
}

// decodeSeq reads a sequence of scalars (items, tags).
func decodeSeq(item *yaml.Node, key string, c ctxInfo, optional bool) ([]string, bool, error) {
	if !has(item, key) {
		if optional {
			return nil, false, nil
		}
		return nil, false, c.err(ErrYAMLValidate, "Item has no mapping for key '"+key+"'")
	}
	v := get(item, key)
	if v.Kind != yaml.SequenceNode {
		if isNull(v) && optional {
			return nil, true, nil
		}
		return nil, false, at(c, v).err(ErrYAMLValidate, "Value is not a sequence")
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		e = resolveAlias(e)
		if e.Kind != yaml.ScalarNode {
			return nil, false, at(c, e).err(ErrYAMLValidate, "sequence value is not scalar")
		}
		out = append(out, e.Value)
	}
	return out, true, nil
}

func decodeOverrides(item *yaml.Node, appendable, replaceable map[string]bool, c ctxInfo) (app, rep map[string]bool, err error) {
	app, rep = map[string]bool{}, map[string]bool{}
	v := get(item, "override")
	if v == nil {
		return app, rep, nil
	}
	if v.Kind != yaml.MappingNode {
		return nil, nil, at(c, v).err(ErrYAMLValidate, "Value of override must be a mapping of key: append|replace")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		key, op := v.Content[i].Value, resolveAlias(v.Content[i+1]).Value
		kc := at(c, v.Content[i])
		switch op {
		case "append":
			if !appendable[key] {
				return nil, nil, kc.err(ErrYAMLValidate, "Key '"+key+"' cannot be appended to, use 'replace' instead")
			}
			app[key] = true
		case "replace":
			if !replaceable[key] {
				return nil, nil, kc.err(ErrYAMLValidate, "Key '"+key+"' cannot be replaced")
			}
			rep[key] = true
		default:
			msg := "Invalid override operation for key '" + key + "': '" + op + "'. Allowed values are: "
			if appendable[key] {
				msg += "append "
			}
			if replaceable[key] {
				msg += "replace "
			}
			return nil, nil, kc.err(ErrYAMLValidate, msg)
		}
	}
	return app, rep, nil
}

const errOverrideAppend = "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead."

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func (l *Loader) readItem(file string, item *yaml.Node) error {
	base := at(ctxInfo{file: file, itemType: "rules content item"}, item)
	if item.Kind != yaml.MappingNode {
		return base.err(ErrYAMLValidate, "Unexpected element type. Each element should be a yaml associative array.")
	}
	switch {
	case has(item, "required_engine_version"):
		return l.readEngineVersion(item, at(ctxInfo{file: file, itemType: "required_engine_version"}, item))
	case has(item, "required_plugin_versions"):
		return l.readPluginVersions(item, at(ctxInfo{file: file, itemType: "required_plugin_versions"}, item))
	case has(item, "list"):
		return l.readList(item, at(ctxInfo{file: file, itemType: "list"}, item))
	case has(item, "macro"):
		return l.readMacro(item, at(ctxInfo{file: file, itemType: "macro"}, item))
	case has(item, "rule"):
		return l.readRule(item, at(ctxInfo{file: file, itemType: "rule"}, item))
	}
	l.warn(base.diag(WarnUnknownItem, "Unknown top level item"))
	return nil
}

func (l *Loader) readEngineVersion(item *yaml.Node, c ctxInfo) error {
	s, _, err := decodeStr(item, "required_engine_version", c, false)
	if err != nil {
		return err
	}
	var req semver
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		// A bare number N is the pre-semver engine version, i.e. 0.N.0.
		req = semver{0, int(n), 0}
	} else if req, err = parseSemver(s); err != nil {
		return c.err(ErrYAMLValidate, "Unable to parse engine version '"+s+"' as a semver string. Expected \"x.y.z\" semver format.")
	}
	have, _ := parseSemver(EngineVersion)
	if !have.compatibleWith(req) {
		return c.err(ErrValidate, fmt.Sprintf("Rules require engine version %s, but engine version is %s", s, EngineVersion))
	}
	return nil
}

func (l *Loader) readPluginVersions(item *yaml.Node, c ctxInfo) error {
	v := get(item, "required_plugin_versions")
	if v.Kind != yaml.SequenceNode {
		return at(c, v).err(ErrYAMLValidate, "Value of required_plugin_versions must be a sequence")
	}
	for _, p := range v.Content {
		p = resolveAlias(p)
		pc := at(c, p)
		if p.Kind != yaml.MappingNode {
			return pc.err(ErrYAMLValidate, "Plugin version must be a mapping")
		}
		name, _, err := decodeStr(p, "name", pc, false)
		if err != nil {
			return err
		}
		pc.itemName = name
		ver, _, err := decodeStr(p, "version", pc, false)
		if err != nil {
			return err
		}
		if _, err := parseSemver(ver); err != nil {
			return pc.err(ErrValidate, "Invalid required version '"+ver+"' for plugin '"+name+"'")
		}
		ok := providedPlugins[name]
		if alts := get(p, "alternatives"); alts != nil {
			if alts.Kind != yaml.SequenceNode {
				return pc.err(ErrYAMLValidate, "Value of plugin version alternatives must be a sequence")
			}
			for _, a := range alts.Content {
				a = resolveAlias(a)
				ac := at(pc, a)
				if a.Kind != yaml.MappingNode {
					return ac.err(ErrYAMLValidate, "Plugin version alternative must be a mapping")
				}
				an, _, err := decodeStr(a, "name", ac, false)
				if err != nil {
					return err
				}
				if _, _, err := decodeStr(a, "version", ac, false); err != nil {
					return err
				}
				ok = ok || providedPlugins[an]
			}
		}
		if !ok {
			// Falco refuses to start without the plugin; bulkhead has no
			// plugins, so it loads the file and skips the rules of sources
			// it cannot serve (each gets its own warning).
			l.warn(pc.diag(WarnMissingPlugin, "plugin '"+name+"' "+ver+" is required by these rules but bulkhead does not run Falco plugins; rules that need it are skipped"))
		}
	}
	return nil
}

func isIdentifier(s string) bool { return s != "" && identLen(s) == len(s) }
func isBareStr(s string) bool    { return s != "" && bareLen(s) == len(s) }

func (l *Loader) readList(item *yaml.Node, c ctxInfo) error {
	name, _, err := decodeStr(item, "list", c, false)
	if err != nil {
		return err
	}
	c.itemName = name
	if !isBareStr(name) {
		l.warn(c.diag(WarnInvalidName, "List has an invalid name. List names should match a regular expression: ([^()\"'[:space:]=,]+)"))
	}
	items, _, err := decodeSeq(item, "items", c, false)
	if err != nil {
		return err
	}
	app, _, err := decodeBool(item, "append", c, true)
	if err != nil {
		return err
	}
	if app {
		l.warn(c.diag(WarnDeprecatedItem, "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead."))
	}
	oa, or, err := decodeOverrides(item, set("items"), set("items"), c)
	if err != nil {
		return err
	}
	if app && (len(oa) > 0 || len(or) > 0) {
		return c.err(ErrYAMLValidate, errOverrideAppend)
	}
	if app || oa["items"] {
		prev := l.col.list(name)
		if prev == nil {
			return c.err(ErrValidate, "List has 'append' key but no list by that name already exists")
		}
		prev.items = append(prev.items, items...)
		prev.visibility = l.col.next()
		return nil
	}
	l.col.defineList(&listInfo{name: name, items: items, ctx: c})
	return nil
}

func (l *Loader) readMacro(item *yaml.Node, c ctxInfo) error {
	name, _, err := decodeStr(item, "macro", c, false)
	if err != nil {
		return err
	}
	c.itemName = name
	if !isIdentifier(name) {
		l.warn(c.diag(WarnInvalidName, "Macro has an invalid name. Macro names should match a regular expression: ([a-zA-Z]+[a-zA-Z0-9_]*)"))
	}
	cond, _, err := decodeStr(item, "condition", c, false)
	if err != nil {
		return err
	}
	condCtx := at(c, get(item, "condition"))
	app, _, err := decodeBool(item, "append", c, true)
	if err != nil {
		return err
	}
	if app {
		l.warn(c.diag(WarnDeprecatedItem, "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead."))
	}
	oa, or, err := decodeOverrides(item, set("condition"), set("condition"), c)
	if err != nil {
		return err
	}
	if app && (len(oa) > 0 || len(or) > 0) {
		return c.err(ErrYAMLValidate, errOverrideAppend)
	}
	if app || oa["condition"] {
		prev := l.col.macro(name)
		if prev == nil {
			return c.err(ErrValidate, "Macro has 'append' key but no macro by that name already exists")
		}
		prev.cond += " " + cond
		prev.visibility = l.col.next()
		return nil
	}
	l.col.defineMacro(&macroInfo{name: name, cond: cond, ctx: c, condCtx: condCtx})
	return nil
}

// entry is an exception's fields/comps/values element: a string or a list.
type entry struct {
	isList bool
	item   string
	items  []entry
}

func (e entry) valid() bool {
	if e.isList {
		return len(e.items) > 0
	}
	return e.item != ""
}

func decodeEntry(v *yaml.Node, c ctxInfo) (entry, error) {
	v = resolveAlias(v)
	var e entry
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Value == "" {
			return e, at(c, v).err(ErrYAMLValidate, "Value must be non-empty")
		}
		e.item = v.Value
	case yaml.SequenceNode:
		e.isList = true
		for _, x := range v.Content {
			sub, err := decodeEntry(x, c)
			if err != nil {
				return e, err
			}
			e.items = append(e.items, sub)
		}
	}
	return e, nil
}

type exceptionInfo struct {
	name   string
	fields entry
	comps  entry
	values []entry
	ctx    ctxInfo
}

func readExceptions(l *Loader, item *yaml.Node, c ctxInfo, appending bool) ([]exceptionInfo, error) {
	exs := get(item, "exceptions")
	if exs == nil || isNull(exs) {
		return nil, nil
	}
	ec := at(c, exs)
	ec.itemType, ec.itemName = "exceptions", ""
	if exs.Kind != yaml.SequenceNode {
		return nil, ec.err(ErrYAMLValidate, "Rule exceptions must be a sequence")
	}
	var out []exceptionInfo
	for _, ex := range exs.Content {
		ex = resolveAlias(ex)
		xc := at(c, ex)
		xc.itemType, xc.itemName = "exception", ""
		if ex.Kind != yaml.MappingNode {
			return nil, xc.err(ErrYAMLValidate, "Rule exception must be a mapping")
		}
		name, _, err := decodeStr(ex, "name", xc, false)
		if err != nil {
			return nil, err
		}
		xc.itemName = name
		for _, prev := range out {
			if prev.name == name {
				return nil, xc.err(ErrYAMLValidate, "Exceptions names in the same object must be unique")
			}
		}
		info := exceptionInfo{name: name, ctx: xc}
		if f := get(ex, "fields"); f != nil {
			if info.fields, err = decodeEntry(f, xc); err != nil {
				return nil, err
			}
		} else if !has(ex, "fields") && !appending {
			return nil, xc.err(ErrYAMLValidate, "Item has no mapping for key 'fields'")
		}
		if cm := get(ex, "comps"); cm != nil {
			if info.comps, err = decodeEntry(cm, xc); err != nil {
				return nil, err
			}
		}
		if vals := get(ex, "values"); vals != nil && !isNull(vals) {
			if vals.Kind != yaml.SequenceNode {
				return nil, at(xc, vals).err(ErrYAMLValidate, "Rule exception values must be a sequence")
			}
			for _, v := range vals.Content {
				e, err := decodeEntry(v, xc)
				if err != nil {
					return nil, err
				}
				info.values = append(info.values, e)
			}
		} else if appending {
			l.warn(xc.diag(WarnAppendNoValues, "Overriding/appending exception with no values"))
		}
		out = append(out, info)
	}
	return out, nil
}

var allOperators = set("exists", "<=", "<", ">=", ">", "==", "=", "!=", "glob", "iglob", "contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith", "regex", "intersects", "in", "pmatch")

func isListOp(op string) bool { return op == "in" || op == "intersects" || op == "pmatch" }

// fieldDefined reports whether Falco knows the field (supplied or not).
func fieldDefined(name string) bool {
	loadFields()
	if _, ok := fieldTable[name]; ok || unsupportedFields[name] {
		return true
	}
	if strings.HasPrefix(name, "evt.arg.") || strings.HasPrefix(name, "evt.rawarg.") {
		return true
	}
	// A field with an argument: proc.aname[2], proc.env[HOME].
	if i := strings.IndexByte(name, '['); i > 0 && strings.HasSuffix(name, "]") {
		_, ok := fieldTable[name[:i]]
		return ok || unsupportedFields[name[:i]]
	}
	return false
}

func validateException(ex *exceptionInfo, checkFields bool) error {
	c := ex.ctx
	if ex.fields.isList {
		if !ex.comps.valid() {
			ex.comps = entry{isList: true}
			for range ex.fields.items {
				ex.comps.items = append(ex.comps.items, entry{item: "="})
			}
		}
		if len(ex.fields.items) != len(ex.comps.items) {
			return c.err(ErrValidate, "Fields and comps lists must have equal length")
		}
		for _, cm := range ex.comps.items {
			if !allOperators[cm.item] {
				return c.err(ErrValidate, "'"+cm.item+"' is not a supported comparison operator")
			}
		}
		if checkFields {
			for _, f := range ex.fields.items {
				if !fieldDefined(f.item) {
					return c.err(ErrValidate, "'"+f.item+"' is not a supported filter field")
				}
			}
		}
		return nil
	}
	if !ex.comps.valid() {
		ex.comps = entry{item: "in"}
	}
	if ex.comps.isList {
		return c.err(ErrValidate, "Fields and comps must both be strings")
	}
	if !isListOp(ex.comps.item) {
		return c.err(ErrValidate, "When fields is a single value, comps must be one of (in, pmatch, intersects)")
	}
	if checkFields && !fieldDefined(ex.fields.item) {
		return c.err(ErrValidate, "'"+ex.fields.item+"' is not a supported filter field")
	}
	return nil
}

func (l *Loader) readRule(item *yaml.Node, c ctxInfo) error {
	name, _, err := decodeStr(item, "rule", c, false)
	if err != nil {
		return err
	}
	c.itemName = name
	appendFlag, _, err := decodeBool(item, "append", c, true)
	if err != nil {
		return err
	}
	if appendFlag {
		l.warn(c.diag(WarnDeprecatedItem, "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead."))
	}
	appendable := set("condition", "output", "desc", "tags", "exceptions")
	replaceable := set("condition", "output", "desc", "priority", "tags", "exceptions", "enabled", "warn_evttypes", "skip-if-unknown-filter")
	oa, or, err := decodeOverrides(item, appendable, replaceable, c)
	if err != nil {
		return err
	}
	if appendFlag && (len(oa) > 0 || len(or) > 0) {
		return c.err(ErrYAMLValidate, errOverrideAppend)
	}
	switch {
	case len(oa) > 0 || len(or) > 0:
		expected := map[string]bool{}
		for k := range appendable {
			if has(item, k) {
				expected[k] = true
			}
		}
		for k := range replaceable {
			if has(item, k) {
				expected[k] = true
			}
		}
		if len(oa) > 0 {
			u, err := l.readUpdate(item, c, oa, expected, "append")
			if err != nil {
				return err
			}
			if err := l.appendRule(u, c); err != nil {
				return err
			}
		}
		if len(or) > 0 {
			u, err := l.readUpdate(item, c, or, expected, "replace")
			if err != nil {
				return err
			}
			if err := l.replaceRule(u, c); err != nil {
				return err
			}
		}
		keys := make([]string, 0, len(expected))
		for k := range expected {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			return at(c, get(item, k)).err(ErrYAMLValidate, "Unexpected key '"+k+"': no corresponding entry under 'override' is defined.")
		}
		return nil
	case appendFlag:
		u := &ruleUpdate{name: name}
		if has(item, "condition") {
			s, _, err := decodeStr(item, "condition", c, false)
			if err != nil {
				return err
			}
			u.cond = &s
		}
		if has(item, "exceptions") {
			exs, err := readExceptions(l, item, c, true)
			if err != nil {
				return err
			}
			u.exceptions = &exs
		}
		return l.appendRule(u, c)
	}
	if !has(item, "condition") && !has(item, "output") && !has(item, "desc") && !has(item, "priority") {
		enabled, _, err := decodeBool(item, "enabled", c, false)
		if err != nil {
			return err
		}
		prev := l.col.rule(name)
		if prev == nil {
			return c.err(ErrValidate, "Rule has 'enabled' key but no rule by that name already exists")
		}
		prev.enabled = enabled
		return nil
	}
	r := &ruleInfo{name: name, enabled: true, warnEvttypes: true, source: SourceSyscall, ctx: c}
	if r.cond, _, err = decodeStr(item, "condition", c, false); err != nil {
		return err
	}
	r.condCtx = at(c, get(item, "condition"))
	if r.output, _, err = decodeStr(item, "output", c, false); err != nil {
		return err
	}
	r.output = strings.TrimSpace(r.output)
	r.outputCtx = at(c, get(item, "output"))
	if r.desc, _, err = decodeStr(item, "desc", c, false); err != nil {
		return err
	}
	pri, _, err := decodeStr(item, "priority", c, false)
	if err != nil {
		return err
	}
	p, ok := ParsePriority(pri)
	if !ok {
		return at(c, get(item, "priority")).err(ErrYAMLValidate, "Invalid priority")
	}
	r.priority = p
	if s, ok, err := decodeStr(item, "source", c, true); err != nil {
		return err
	} else if ok {
		r.source = s
	}
	if b, ok, err := decodeBool(item, "enabled", c, true); err != nil {
		return err
	} else if ok {
		r.enabled = b
	}
	if b, ok, err := decodeBool(item, "warn_evttypes", c, true); err != nil {
		return err
	} else if ok {
		r.warnEvttypes = b
	}
	if b, ok, err := decodeBool(item, "skip-if-unknown-filter", c, true); err != nil {
		return err
	} else if ok {
		r.skipUnknown = b
	}
	tags, _, err := decodeSeq(item, "tags", c, true)
	if err != nil {
		return err
	}
	r.tags = addTags(nil, tags)
	if r.exceptions, err = readExceptions(l, item, c, false); err != nil {
		return err
	}
	return l.defineRule(r)
}

func addTags(have, more []string) []string {
	for _, t := range more {
		dup := false
		for _, h := range have {
			if h == t {
				dup = true
				break
			}
		}
		if !dup {
			have = append(have, t)
		}
	}
	sort.Strings(have)
	return have
}

// ruleUpdate is an append or a replace of some keys of an existing rule.
type ruleUpdate struct {
	name                               string
	cond, output, desc                 *string
	tags                               *[]string
	exceptions                         *[]exceptionInfo
	priority                           *Priority
	enabled, warnEvttypes, skipUnknown *bool
}

func (u *ruleUpdate) hasAny() bool {
	return u.cond != nil || u.output != nil || u.desc != nil || u.tags != nil || u.exceptions != nil ||
		u.priority != nil || u.enabled != nil || u.warnEvttypes != nil || u.skipUnknown != nil
}

func (l *Loader) readUpdate(item *yaml.Node, c ctxInfo, keys, expected map[string]bool, kind string) (*ruleUpdate, error) {
	u := &ruleUpdate{name: c.itemName}
	order := []string{"condition", "exceptions", "output", "desc", "tags", "priority", "enabled", "warn_evttypes", "skip-if-unknown-filter"}
	for _, k := range order {
		if !keys[k] {
			continue
		}
		if !expected[k] {
			return nil, c.err(ErrYAMLValidate, "An "+kind+" override for '"+k+"' was specified but '"+k+"' is not defined")
		}
		delete(expected, k)
		switch k {
		case "condition", "output", "desc", "priority":
			s, _, err := decodeStr(item, k, c, false)
			if err != nil {
				return nil, err
			}
			switch k {
			case "condition":
				u.cond = &s
			case "output":
				s = strings.TrimSpace(s)
				u.output = &s
			case "desc":
				u.desc = &s
			case "priority":
				p, ok := ParsePriority(s)
				if !ok {
					return nil, at(c, get(item, k)).err(ErrYAMLValidate, "Invalid priority")
				}
				u.priority = &p
			}
		case "tags":
			t, _, err := decodeSeq(item, k, c, true)
			if err != nil {
				return nil, err
			}
			u.tags = &t
		case "exceptions":
			exs, err := readExceptions(l, item, c, true)
			if err != nil {
				return nil, err
			}
			u.exceptions = &exs
		default:
			b, _, err := decodeBool(item, k, c, false)
			if err != nil {
				return nil, err
			}
			switch k {
			case "enabled":
				u.enabled = &b
			case "warn_evttypes":
				u.warnEvttypes = &b
			case "skip-if-unknown-filter":
				u.skipUnknown = &b
			}
		}
	}
	return u, nil
}

func (l *Loader) defineRule(r *ruleInfo) error {
	prev := l.col.rule(r.name)
	if prev != nil && prev.source != r.source {
		return r.ctx.err(ErrValidate, "Rule has been re-defined with a different source")
	}
	known := r.source == SourceSyscall
	if !known {
		r.unknownSource = true
		l.warn(r.ctx.diag(WarnUnknownSource, "Unknown source "+r.source+", skipping"))
	}
	for i := range r.exceptions {
		ex := &r.exceptions[i]
		if !ex.fields.valid() {
			return ex.ctx.err(ErrValidate, "Rule exception item must have fields property with a list of fields")
		}
		if err := validateException(ex, known); err != nil {
			return err
		}
	}
	l.col.defineRule(r)
	return nil
}

func (l *Loader) appendRule(u *ruleUpdate, c ctxInfo) error {
	prev := l.col.rule(u.name)
	if prev == nil {
		return c.err(ErrValidate, "Rule has 'append' key but no rule by that name already exists")
	}
	if !u.hasAny() {
		return c.err(ErrValidate, "Appended rule must have exceptions or condition property")
	}
	if u.cond != nil && *u.cond != "" {
		prev.cond += " " + *u.cond
	}
	if u.output != nil && *u.output != "" {
		prev.output += " " + *u.output
	}
	if u.desc != nil && *u.desc != "" {
		prev.desc += " " + *u.desc
	}
	if u.tags != nil {
		prev.tags = addTags(prev.tags, *u.tags)
	}
	if u.exceptions != nil {
		for _, ex := range *u.exceptions {
			found := -1
			for i := range prev.exceptions {
				if prev.exceptions[i].name == ex.name {
					found = i
					break
				}
			}
			if found < 0 {
				if !ex.fields.valid() {
					return ex.ctx.err(ErrValidate, "Rule exception must have fields property with a list of fields")
				}
				if len(ex.values) == 0 {
					return ex.ctx.err(ErrValidate, "Rule exception must have values property with a list of values")
				}
				if err := validateException(&ex, !prev.unknownSource); err != nil {
					return err
				}
				prev.exceptions = append(prev.exceptions, ex)
				continue
			}
			if ex.fields.valid() {
				return ex.ctx.err(ErrValidate, "Can not append exception fields to existing exception, only values")
			}
			if ex.comps.valid() {
				return ex.ctx.err(ErrValidate, "Can not append exception comps to existing exception, only values")
			}
			prev.exceptions[found].values = append(prev.exceptions[found].values, ex.values...)
		}
	}
	prev.visibility = l.col.next()
	return nil
}

func (l *Loader) replaceRule(u *ruleUpdate, c ctxInfo) error {
	prev := l.col.rule(u.name)
	if prev == nil {
		return c.err(ErrValidate, "An replace to a rule was requested but no rule by that name already exists")
	}
	if !u.hasAny() {
		return c.err(ErrValidate, "The rule must have at least one field that can be replaced")
	}
	if u.cond != nil {
		prev.cond = *u.cond
	}
	if u.output != nil {
		prev.output = *u.output
	}
	if u.desc != nil {
		prev.desc = *u.desc
	}
	if u.tags != nil {
		prev.tags = addTags(nil, *u.tags)
	}
	if u.exceptions != nil {
		for i := range *u.exceptions {
			ex := &(*u.exceptions)[i]
			if !ex.fields.valid() {
				return ex.ctx.err(ErrValidate, "Rule exception must have fields property with a list of fields")
			}
			if err := validateException(ex, !prev.unknownSource); err != nil {
				return err
			}
		}
		prev.exceptions = *u.exceptions
	}
	if u.priority != nil {
		prev.priority = *u.priority
	}
	if u.enabled != nil {
		prev.enabled = *u.enabled
	}
	if u.warnEvttypes != nil {
		prev.warnEvttypes = *u.warnEvttypes
	}
	if u.skipUnknown != nil {
		prev.skipUnknown = *u.skipUnknown
	}
	prev.visibility = l.col.next()
	return nil
}

// semver is a major.minor.patch version.
type semver [3]int

func parseSemver(s string) (semver, error) {
	var v semver
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("not x.y.z")
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("not x.y.z")
		}
		v[i] = n
	}
	return v, nil
}

func (v semver) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// compatibleWith is Falco's rule: same major, and at least the required
// minor.patch.
func (v semver) compatibleWith(req semver) bool {
	if v[0] != req[0] {
		return false
	}
	if v[1] != req[1] {
		return v[1] > req[1]
	}
	return v[2] >= req[2]
}
