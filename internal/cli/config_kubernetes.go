package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/finding"
)

// The Kubernetes kind of `bulkhead config PATH...`: manifest streams (YAML,
// JSON, Helm output on stdin: helm template chart | bulkhead config -),
// with --pss and --pss-version; --policy checks of target kubernetes run
// beside the built-in ones.
var _ = registerConfigKind(configKind{Name: "kubernetes", Detect: looksLikeKubernetes, Setup: setupKubernetesKind})

// kubernetesConfigOptions are the flags of the Kubernetes kind.
type kubernetesConfigOptions struct {
	PSS        string
	PSSVersion string
	// MaxObjects bounds the objects of one manifest stream (0: no bound).
	MaxObjects int
}

func (o *kubernetesConfigOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PSS, "pss", "restricted", "Pod Security Standards level pods are held to: baseline or restricted")
	fs.StringVar(&o.PSSVersion, "pss-version", "latest", "Pod Security Standards version (latest or v1.N), as in the pod-security.kubernetes.io/enforce-version label")
	fs.IntVar(&o.MaxObjects, "max-objects", kubernetes.DefaultMaxObjects, "most Kubernetes objects checked in one file or stream (0: no limit); past it the file fails the run (see --skip-unreadable)")
}

func setupKubernetesKind(fl *pflag.FlagSet) func(pol *cel.Policy) (configChecker, error) {
	var o kubernetesConfigOptions
	o.addFlags(fl)
	return func(pol *cel.Policy) (configChecker, error) {
		k, err := newKubernetesConfigScanner(o, pol)
		if err != nil {
			return nil, err
		}
		return k.scan, nil
	}
}

// kubernetesConfigScanner checks manifest streams; build it once.
type kubernetesConfigScanner struct {
	s          *kubernetes.Scanner
	maxObjects int
}

func newKubernetesConfigScanner(o kubernetesConfigOptions, pol *cel.Policy) (*kubernetesConfigScanner, error) {
	lvl, err := kubernetes.ParseLevel(o.PSS)
	if err != nil {
		return nil, fmt.Errorf("--pss: %w", err)
	}
	if o.MaxObjects < 0 {
		return nil, fmt.Errorf("--max-objects %d: give a positive number, or 0 for no limit", o.MaxObjects)
	}
	opts := kubernetes.Options{Level: lvl, Version: o.PSSVersion}
	if pol != nil {
		if c := kubernetes.NewCELChecks(pol); c.Len() > 0 {
			opts.Extra = append(opts.Extra, c)
		}
	}
	s, err := kubernetes.New(opts)
	if err != nil {
		return nil, err
	}
	return &kubernetesConfigScanner{s: s, maxObjects: o.MaxObjects}, nil
}

// scan checks a manifest stream one document at a time, emitting each
// document's findings and dropping the document. A stream that fails to
// parse part-way still has the objects before the bad document checked;
// the error says which document failed. A stream over the object limit
// has its first objects checked and an error wrapping
// kubernetes.ErrTooManyObjects.
func (k *kubernetesConfigScanner) scan(name string, data []byte, emit func([]finding.Finding)) error {
	d := kubernetes.NewDecoder(name, data)
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
		if errors.Is(perr, kubernetes.ErrTooManyObjects) {
			return fmt.Errorf("%w (--max-objects %d; 0 for no limit)", perr, k.maxObjects)
		}
		if perr != nil {
			return perr
		}
	}
}

// scanKubernetesConfig is scan with a scanner made for one call, returning
// the findings.
func scanKubernetesConfig(name string, data []byte, o kubernetesConfigOptions, pol *cel.Policy) ([]finding.Finding, error) {
	k, err := newKubernetesConfigScanner(o, pol)
	if err != nil {
		return nil, err
	}
	var out []finding.Finding
	err = k.scan(name, data, func(fs []finding.Finding) { out = append(out, fs...) })
	kubernetes.SortFindings(out)
	return out, err
}

var (
	k8sKindLine       = regexp.MustCompile(`(?m)^\s*(- )?kind:\s*\S`)
	k8sAPIVersionLine = regexp.MustCompile(`(?m)^\s*(- )?apiVersion:\s*\S`)
	k8sJSON           = regexp.MustCompile(`"apiVersion"\s*:\s*"[^"]+"`)
)

// looksLikeKubernetes says whether a file is a manifest stream: YAML or
// JSON (or stdin, "-") with apiVersion and kind fields. Compose files, CI
// configs and Helm values files have no apiVersion+kind pair.
func looksLikeKubernetes(name string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
	default:
		if name != "-" {
			return false
		}
	}
	if k8sJSON.Match(data) && bytes.Contains(data, []byte(`"kind"`)) {
		return true
	}
	return k8sKindLine.Match(data) && k8sAPIVersionLine.Match(data)
}
