package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles writes CPU, block and heap profiles and an execution trace
// of the run when BULKHEAD_CPUPROFILE, BULKHEAD_BLOCKPROFILE,
// BULKHEAD_MEMPROFILE or BULKHEAD_TRACE name files (for benchmarks:
// bench/archive.sh; read a trace with go tool trace). The returned function
// writes them out.
func startProfiles() func() {
	cpu, block, mem, tr := os.Getenv("BULKHEAD_CPUPROFILE"), os.Getenv("BULKHEAD_BLOCKPROFILE"), os.Getenv("BULKHEAD_MEMPROFILE"), os.Getenv("BULKHEAD_TRACE")
	if cpu == "" && block == "" && mem == "" && tr == "" {
		return func() {}
	}
	var cf, tf *os.File
	if tr != "" {
		f, err := os.Create(tr)
		if err == nil {
			err = trace.Start(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "BULKHEAD_TRACE:", err)
		} else {
			tf = f
		}
	}
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
		if tf != nil {
			trace.Stop()
			tf.Close()
		}
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
