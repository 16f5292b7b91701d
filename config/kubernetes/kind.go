package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/config"
	"github.com/bulkhead-sec/bulkhead/finding"
)

// The kubernetes kind of config.Scan: manifest streams (YAML, JSON, Helm
// output on stdin: helm template chart | bulkhead config -), with --pss,
// --pss-version and --max-objects; --policy checks of target kubernetes
// run beside the built-in ones.
func init() {
	config.Register(config.Kind{Name: "kubernetes", Detect: LooksLikeManifest, Setup: setupKind})
}

// kindOptions are the flags of the kubernetes kind.
type kindOptions struct {
	PSS        string
	PSSVersion string
	// MaxObjects bounds the objects of one manifest stream (0: no bound).
	MaxObjects int
}

func (o *kindOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PSS, "pss", "restricted", "Pod Security Standards level pods are held to: baseline or restricted")
	fs.StringVar(&o.PSSVersion, "pss-version", "latest", "Pod Security Standards version (latest or v1.N), as in the pod-security.kubernetes.io/enforce-version label")
	fs.IntVar(&o.MaxObjects, "max-objects", DefaultMaxObjects, "most Kubernetes objects checked in one file or stream (0: no limit); past it the file fails the run (see --skip-unreadable)")
}

func setupKind(fl *pflag.FlagSet) func(pol *cel.Policy) (config.Checker, error) {
	var o kindOptions
	o.addFlags(fl)
	return func(pol *cel.Policy) (config.Checker, error) {
		k, err := newKindScanner(o, pol)
		if err != nil {
			return nil, err
		}
		return k.scan, nil
	}
}

// kindScanner checks manifest streams; build it once.
type kindScanner struct {
	s          *Scanner
	maxObjects int
}

func newKindScanner(o kindOptions, pol *cel.Policy) (*kindScanner, error) {
	lvl, err := ParseLevel(o.PSS)
	if err != nil {
		return nil, fmt.Errorf("--pss: %w", err)
	}
	if o.MaxObjects < 0 {
		return nil, fmt.Errorf("--max-objects %d: give a positive number, or 0 for no limit", o.MaxObjects)
	}
	opts := Options{Level: lvl, Version: o.PSSVersion}
	if pol != nil {
		if c := NewCELChecks(pol); c.Len() > 0 {
			opts.Extra = append(opts.Extra, c)
		}
	}
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	return &kindScanner{s: s, maxObjects: o.MaxObjects}, nil
}

// scan checks a manifest stream one document at a time, emitting each
// document's findings and dropping the document. A stream that fails to
// parse part-way still has the objects before the bad document checked;
// the error says which document failed. A stream over the object limit
// has its first objects checked and an error wrapping ErrTooManyObjects.
func (k *kindScanner) scan(name string, data []byte, emit func([]finding.Finding)) error {
	d := NewDecoder(name, data)
	d.MaxObjects = k.maxObjects
	st := k.s.NewStream()
	defer func() { emit(st.Finish()) }()
	for {
		objs, perr := d.Next()
		fs, err := st.Check(objs)
		emit(fs)
		if err != nil {
			return err
		}
		if errors.Is(perr, io.EOF) {
			return nil
		}
		if errors.Is(perr, ErrTooManyObjects) {
			return fmt.Errorf("%w (--max-objects %d; 0 for no limit)", perr, k.maxObjects)
		}
		if perr != nil {
			return perr
		}
	}
}

var (
	k8sKindLine       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*(- )?kind:\s*\S`) })
	k8sAPIVersionLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*(- )?apiVersion:\s*\S`) })
	k8sJSON           = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`"apiVersion"\s*:\s*"[^"]+"`) })
)

// LooksLikeManifest says whether a file is a manifest stream: YAML or JSON
// (or stdin, "-") with apiVersion and kind fields. Compose files, CI
// configs and Helm values files have no apiVersion+kind pair.
func LooksLikeManifest(name string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
	default:
		if name != "-" {
			return false
		}
	}
	if k8sJSON().Match(data) && bytes.Contains(data, []byte(`"kind"`)) {
		return true
	}
	return k8sKindLine().Match(data) && k8sAPIVersionLine().Match(data)
}
