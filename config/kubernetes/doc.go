// Package kubernetes checks Kubernetes manifests: every workload kind
// (Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
// ReplicationController, PodTemplate), multi-document YAML, List objects,
// JSON and Helm template output.
//
// Manifests are read once as YAML nodes, which keep the line of every field
// path, then decoded into k8s.io/api types. The Pod Security Standards
// controls are ruled by k8s.io/pod-security-admission/policy, the code the
// API server's admission plugin runs, at the chosen level and version; the
// checks beyond the standards (read-only root filesystem, limits, service
// account tokens, image pinning, literal secrets, committed Secrets) are
// here. Every finding carries the line of the offending field.
//
// The RBAC assessment (AssessRBAC, BH-K8S-201…209) judges the Roles,
// ClusterRoles and bindings of one stream together, resolving roleRefs to
// the stream's roles or the API server's built-in ClusterRoles, and names
// the subjects and workloads that hold each risky permission; committed
// Secrets have their decoded values run through the secret rules,
// redacted; external secret stores are recognised and never flagged
// (docs/kubernetes-rbac-secrets.md).
//
// An object opts out of checks with the annotation
// bulkhead.dev/ignore: "BH-K8S-003,BH-K8S-101".
package kubernetes
