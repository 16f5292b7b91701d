package dockerfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// MaxSize is the largest Dockerfile Parse reads; real ones are a few KB, so
// anything this big is not a Dockerfile and must not cost unbounded memory.
const MaxSize = 1 << 20

// File is a parsed Dockerfile (see the package doc for the field meanings).
type File struct {
	Path         string        `json:"path"`
	Dockerignore bool          `json:"dockerignore"`
	MetaArgs     []Instruction `json:"metaArgs"`
	Stages       []Stage       `json:"stages"`

	// dockerignoreKnown is false when nobody could look (stdin).
	dockerignoreKnown bool
}

// Stage is one FROM and what follows it.
type Stage struct {
	Index        int           `json:"index"`
	Name         string        `json:"name"`
	Base         string        `json:"base"`
	Image        string        `json:"image"`
	Resolved     bool          `json:"resolved"`
	BaseStage    int           `json:"baseStage"`
	Platform     string        `json:"platform"`
	Final        bool          `json:"final"`
	From         Instruction   `json:"from"`
	Instructions []Instruction `json:"instructions"`
}

// Instruction is one Dockerfile instruction.
type Instruction struct {
	Cmd       string            `json:"cmd"`
	Args      []string          `json:"args"`
	JSON      bool              `json:"json"`
	Flags     map[string]string `json:"flags"`
	KeyValues []KeyValue        `json:"keyValues"`
	Heredocs  []Heredoc         `json:"heredocs"`
	Commands  []Command         `json:"commands"`
	StartLine int               `json:"startLine"`
	EndLine   int               `json:"endLine"`
	Original  string            `json:"original"`
	Ignore    []string          `json:"ignore"`
}

// KeyValue is one ENV, LABEL or ARG pair.
type KeyValue struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	HasValue bool   `json:"hasValue"`
}

// Heredoc is a here-document attached to RUN, COPY or ADD.
type Heredoc struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ParseFile reads and parses a Dockerfile from disk and notes whether the
// build context beside it has a .dockerignore.
func ParseFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open Dockerfile: %w", err)
	}
	defer fh.Close()
	f, err := Parse(path, fh)
	if err != nil {
		return nil, err
	}
	f.SetDockerignore(DockerignoreBeside(path))
	return f, nil
}

// DockerignoreBeside reports whether the build context of a Dockerfile at
// path (its directory) has an ignore file: BuildKit reads
// <Dockerfile name>.dockerignore first, then .dockerignore.
func DockerignoreBeside(path string) bool {
	dir := filepath.Dir(path)
	for _, name := range []string{filepath.Base(path) + ".dockerignore", ".dockerignore"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// Parse parses a Dockerfile. path only names it in findings. Whether a
// .dockerignore exists is unknown to Parse (see ParseFile, SetDockerignore).
func Parse(path string, r io.Reader) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("parse %s: over %d bytes; this is not a Dockerfile bulkhead will read", path, MaxSize)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("parse %s: binary content (NUL bytes); pass a Dockerfile", path)
	}
	res, err := parseSafe(data)
	if err != nil && strings.Contains(err.Error(), "file with no instructions") {
		// Empty or comments only: nothing to check, not an error.
		return build(path, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return build(path, res)
}

// parseSafe runs buildkit's parser, turning a panic on hostile input into an
// error: a linter must never crash on the file it lints.
func parseSafe(data []byte) (res *parser.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("dockerfile parser failed: %v", r)
		}
	}()
	return parser.Parse(bytes.NewReader(data))
}

// SetDockerignore records whether the build context has a .dockerignore
// (for input that did not come from ParseFile).
func (f *File) SetDockerignore(present bool) {
	f.Dockerignore = present
	f.dockerignoreKnown = true
}

// Final returns the last stage, or nil when the file has no FROM.
func (f *File) Final() *Stage {
	if len(f.Stages) == 0 {
		return nil
	}
	return &f.Stages[len(f.Stages)-1]
}

// Map returns the model as plain maps and lists (the form CEL reads).
func (f *File) Map() map[string]any {
	b, err := json.Marshal(f)
	if err != nil {
		// The model holds only strings, ints, bools, maps and slices.
		panic(fmt.Sprintf("dockerfile: marshal model: %v", err))
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		panic(fmt.Sprintf("dockerfile: unmarshal model: %v", err))
	}
	return normalizeNumbers(m).(map[string]any)
}

// normalizeNumbers turns json.Number into int64, CEL's int.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeNumbers(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = normalizeNumbers(e)
		}
		return t
	case json.Number:
		n, err := t.Int64()
		if err != nil {
			return t.String()
		}
		return n
	}
	return v
}

type argEnv map[string]string

func (a argEnv) Get(k string) (string, bool) { v, ok := a[k]; return v, ok }
func (a argEnv) Keys() []string {
	ks := make([]string, 0, len(a))
	for k := range a {
		ks = append(ks, k)
	}
	return ks
}

func build(path string, res *parser.Result) (*File, error) {
	f := &File{Path: path, MetaArgs: []Instruction{}, Stages: []Stage{}}
	if res == nil || res.AST == nil {
		return f, nil
	}
	lex := shell.NewLex(res.EscapeToken)
	meta := argEnv{}
	names := map[string]int{}
	for _, n := range res.AST.Children {
		in := instruction(n, lex)
		if in.Cmd == "from" {
			st := Stage{Index: len(f.Stages), BaseStage: -1, From: in, Instructions: []Instruction{}}
			st.Platform = in.Flags["platform"]
			if len(in.Args) > 0 {
				st.Base = in.Args[0]
			}
			if len(in.Args) >= 3 && strings.EqualFold(in.Args[1], "as") {
				st.Name = strings.ToLower(in.Args[2])
			}
			st.Image, st.Resolved = expand(lex, st.Base, meta)
			// A stage name refers only to stages defined earlier.
			if i, ok := names[strings.ToLower(st.Image)]; ok && st.Resolved {
				st.BaseStage = i
			}
			if st.Name != "" {
				names[st.Name] = st.Index
			}
			f.Stages = append(f.Stages, st)
			continue
		}
		if len(f.Stages) == 0 {
			if in.Cmd == "arg" {
				for _, kv := range in.KeyValues {
					if kv.HasValue {
						if v, ok := expand(lex, kv.Value, meta); ok {
							meta[kv.Key] = v
							continue
						}
					}
					meta[kv.Key] = ""
				}
			}
			// Only ARG may precede FROM; anything else is kept with the
			// meta ARGs so a check can still see it.
			f.MetaArgs = append(f.MetaArgs, in)
			continue
		}
		st := &f.Stages[len(f.Stages)-1]
		st.Instructions = append(st.Instructions, in)
	}
	if len(f.Stages) > 0 {
		f.Stages[len(f.Stages)-1].Final = true
	}
	return f, nil
}

// expand substitutes meta ARG defaults into a word; ok is false when a
// variable stayed unresolved.
func expand(lex *shell.Lex, word string, env argEnv) (string, bool) {
	if !strings.ContainsAny(word, "$\"'\\`") {
		return word, true
	}
	out, unmatched, err := lex.ProcessWord(word, env)
	if err != nil {
		return word, false
	}
	for k := range unmatched {
		if v, ok := env[k]; !ok || v == "" {
			return out, false
		}
	}
	return out, true
}

func instruction(n *parser.Node, lex *shell.Lex) Instruction {
	in := Instruction{
		Cmd:       strings.ToLower(n.Value),
		Args:      []string{},
		JSON:      n.Attributes["json"],
		Flags:     map[string]string{},
		KeyValues: []KeyValue{},
		Heredocs:  []Heredoc{},
		Commands:  []Command{},
		StartLine: n.StartLine,
		EndLine:   n.EndLine,
		Original:  n.Original,
		Ignore:    []string{},
	}
	for _, fl := range n.Flags {
		fl = strings.TrimLeft(fl, "-")
		k, v, _ := strings.Cut(fl, "=")
		in.Flags[strings.ToLower(k)] = v
	}
	for _, h := range n.Heredocs {
		in.Heredocs = append(in.Heredocs, Heredoc{Name: h.Name, Content: h.Content})
	}
	for _, c := range n.PrevComment {
		in.Ignore = append(in.Ignore, ignoreIDs(c)...)
	}
	switch in.Cmd {
	case "env", "label":
		// Triples of key, value, separator.
		for x := n.Next; x != nil; {
			kv := KeyValue{Key: unquote(lex, x.Value), HasValue: true}
			if x.Next != nil {
				kv.Value = unquote(lex, x.Next.Value)
				x = x.Next.Next
			} else {
				x = nil
			}
			if x != nil {
				x = x.Next
			}
			in.KeyValues = append(in.KeyValues, kv)
			in.Args = append(in.Args, kv.Key+"="+kv.Value)
		}
	case "onbuild":
		// The trigger instruction is the child; keep it as text.
		if n.Next != nil && len(n.Next.Children) > 0 {
			c := n.Next.Children[0]
			in.Args = append(in.Args, strings.TrimSpace(c.Original))
		}
	default:
		for x := n.Next; x != nil; x = x.Next {
			in.Args = append(in.Args, x.Value)
		}
	}
	if in.Cmd == "arg" {
		for _, a := range in.Args {
			k, v, has := strings.Cut(a, "=")
			if has {
				v = unquote(lex, v)
			}
			in.KeyValues = append(in.KeyValues, KeyValue{Key: k, Value: v, HasValue: has})
		}
	}
	switch in.Cmd {
	case "run", "cmd", "entrypoint":
		in.Commands = commandsOf(in.Args, in.JSON, in.Heredocs)
	case "healthcheck":
		// HEALTHCHECK CMD ... : the parser nests the CMD.
		if n.Next != nil && len(n.Next.Children) > 0 {
			c := n.Next.Children[0]
			var args []string
			for x := c.Next; x != nil; x = x.Next {
				args = append(args, x.Value)
			}
			in.Args = append([]string{strings.ToUpper(c.Value)}, args...)
			in.Commands = commandsOf(args, c.Attributes["json"], nil)
		}
	}
	return in
}

// unquote removes shell quoting from an ENV/LABEL/ARG value without
// expanding variables (they stay as written).
func unquote(lex *shell.Lex, s string) string {
	if !strings.ContainsAny(s, "\"'\\") {
		return s
	}
	out, err := lex.ProcessWordWithMatches(s, keepEnv{})
	if err != nil {
		return s
	}
	return out.Result
}

// keepEnv expands every variable to itself, so unquoting keeps "$X".
type keepEnv struct{}

func (keepEnv) Get(k string) (string, bool) { return "${" + k + "}", true }
func (keepEnv) Keys() []string              { return nil }

const ignorePrefix = "bulkhead:ignore:"

func ignoreIDs(comment string) []string {
	i := strings.Index(comment, ignorePrefix)
	if i < 0 {
		return nil
	}
	rest := comment[i+len(ignorePrefix):]
	if j := strings.IndexAny(rest, " \t"); j >= 0 {
		rest = rest[:j]
	}
	var ids []string
	for _, id := range strings.Split(rest, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, strings.ToUpper(id))
		}
	}
	return ids
}
