package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles writes CPU, block and heap profiles of the run when
// BULKHEAD_CPUPROFILE, BULKHEAD_BLOCKPROFILE or BULKHEAD_MEMPROFILE name
// files (for benchmarks: bench/archive.sh). The returned function writes
// them out.
func startProfiles() func() {
	cpu, block, mem := os.Getenv("BULKHEAD_CPUPROFILE"), os.Getenv("BULKHEAD_BLOCKPROFILE"), os.Getenv("BULKHEAD_MEMPROFILE")
	if cpu == "" && block == "" && mem == "" {
		return func() {}
	}
	var cf *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "BULKHEAD_CPUPROFILE:", err)
		} else {
			cf = f
		}
	}
	if block != "" {
		runtime.SetBlockProfileRate(1)
	}
	return func() {
		if cf != nil {
			pprof.StopCPUProfile()
			cf.Close()
		}
		write := func(name, file string) {
			f, err := os.Create(file)
			if err == nil {
				err = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s profile: %v\n", name, err)
			}
		}
		if block != "" {
			write("block", block)
		}
		if mem != "" {
			write("allocs", mem)
		}
	}
}
