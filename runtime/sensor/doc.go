// Package sensor is bulkhead's eBPF system-call sensor. Raw tracepoints on
// sys_enter/sys_exit and sched_process_exec/exit feed a ring buffer; user
// space decodes each record, keeps a process table (seeded from /proc) for
// parent and ancestor fields, attributes the process to a container from
// its cgroup (podman/libpod, docker, containerd/CRI, cri-o; cgroup v1 and
// v2) and, when a Docker-compatible API socket answers, the container's
// name and image, and delivers runtime/event.Event values ready for the
// rule engine.
package sensor
