package cli

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/policy/cel"
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
}

func (o *kubernetesConfigOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PSS, "pss", "restricted", "Pod Security Standards level pods are held to: baseline or restricted")
	fs.StringVar(&o.PSSVersion, "pss-version", "latest", "Pod Security Standards version (latest or v1.N), as in the pod-security.kubernetes.io/enforce-version label")
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
	s *kubernetes.Scanner
}

func newKubernetesConfigScanner(o kubernetesConfigOptions, pol *cel.Policy) (*kubernetesConfigScanner, error) {
	lvl, err := kubernetes.ParseLevel(o.PSS)
	if err != nil {
		return nil, fmt.Errorf("--pss: %w", err)
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
	return &kubernetesConfigScanner{s: s}, nil
}

// scan parses one manifest stream and checks every object in it. A stream
// that fails to parse part-way still has the objects before the bad
// document checked; the error says which document failed.
func (k *kubernetesConfigScanner) scan(name string, data []byte) ([]finding.Finding, error) {
	objs, perr := kubernetes.ParseBytes(name, data)
	fs, err := k.s.Scan(objs)
	if err != nil {
		return fs, err
	}
	return fs, perr
}

// scanKubernetesConfig is scan with a scanner made for one call.
func scanKubernetesConfig(name string, data []byte, o kubernetesConfigOptions, pol *cel.Policy) ([]finding.Finding, error) {
	k, err := newKubernetesConfigScanner(o, pol)
	if err != nil {
		return nil, err
	}
	return k.scan(name, data)
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
