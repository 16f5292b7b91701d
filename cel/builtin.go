package cel

import (
	_ "embed"
	"fmt"
)

//go:embed builtin/kubernetes.yaml
var builtinKubernetes []byte

// Builtin compiles bulkhead's own checks written in CEL (a subset of the Go
// catalogue, under the same IDs).
func Builtin() (*Policy, error) {
	p, err := Load("builtin/kubernetes.yaml", builtinKubernetes)
	if err != nil {
		return nil, fmt.Errorf("built-in CEL checks: %w", err)
	}
	return p, nil
}
