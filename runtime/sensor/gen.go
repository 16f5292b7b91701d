package sensor

// The eBPF object and its Go bindings are generated from bpf/sensor.bpf.c
// and committed, so building bulkhead needs no clang. Regenerate (as root,
// with clang, llvm, libbpf-dev and bpftool installed) after editing the C:
//
//	go generate ./runtime/sensor
//
// vmlinux.h is dumped from the running kernel's BTF and not committed; the
// program uses CO-RE relocations, so the object loads on other kernels with
// BTF whatever kernel it was compiled against.

//go:generate sh -c "bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h"
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -Wno-incompatible-pointer-types-discards-qualifiers" -target amd64 -type hdr sensor bpf/sensor.bpf.c -- -I./bpf
