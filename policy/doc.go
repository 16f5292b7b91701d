// Package policy holds bulkhead's policy file (bulkhead-policy.yaml, schema
// bulkhead.dev/v1) and the decision engine that applies it.
//
// One file says what may ship and run: vulnerability limits, required
// signatures and attestations, Pod Security level and workload checks, no
// secrets in images, allowed registries and base images, digest pinning and
// CEL expressions, each rule scoped by image globs and namespaces, in
// enforce or warn mode, with owned, expiring exemptions. The CI gate
// (bulkhead gate) and the admission webhook (package admission) both call
// Engine.Evaluate, so the same image and pod get the same decision in both.
//
// The engine itself does no I/O: what it needs to know about an image
// (its digest, whether its signatures verify, its scan) it asks a Facts,
// and Registry is the Facts that reads a registry, verifies with package
// sign and scans with package scan, caching by digest. A fact that cannot
// be had (registry down, scan over its time budget) makes the rule's
// outcome follow the fail mode: deny when fail-closed, warn when fail-open.
//
// docs/policy.md documents the file.
package policy
