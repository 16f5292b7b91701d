// Package initgc keeps the garbage collector off while the bulkhead
// command's packages initialize, and turns it back on (to GOGC, 100 when
// unset) when main starts.
//
// Package init of the libraries the command links (Kubernetes API schemes,
// JSON-schema meta-schemas, Sigstore's and AWS's tables, protobuf
// registries) allocates about 9 MB, nearly all of it kept; with the default
// 4 MB first goal the collector ran three cycles during it, about a quarter
// of the start-up time of every command (bulkhead --version: 40 ms, 30 ms
// with GOGC=off; issue 18). Go initializes a package as soon as its imports
// are, taking the lowest import path first among those ready, so this
// package (it imports only runtime/debug) runs before most of them: the
// inittrace (GODEBUG=inittrace=1) shows the order.
package initgc

import "runtime/debug"

// percent is the GC percent before init turned the collector off: GOGC's
// value, or -1 for GOGC=off.
var percent = debug.SetGCPercent(-1)

// Done turns the collector back on as GOGC says. main calls it first.
func Done() { debug.SetGCPercent(percent) }
