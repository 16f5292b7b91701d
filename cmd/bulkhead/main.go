// Command bulkhead is a container-security scanner: image inventory and
// SBOMs, vulnerabilities, misconfigurations, secrets, signing and runtime
// detection.
package main

import (
	"os"

	"github.com/bulkhead-sec/bulkhead/internal/cli"
	"github.com/bulkhead-sec/bulkhead/internal/initgc"
)

func main() {
	initgc.Done() // the collector was off during package init
	stop := startProfiles()
	code := cli.Main(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
