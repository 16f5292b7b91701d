// Package cli builds bulkhead's command tree. Each command is one file:
// flags become an options struct, the work happens in the packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "0.1.0-dev"

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintln(stderr, "bulkhead:", ee.err)
			}
			return ee.code
		}
		fmt.Fprintln(stderr, "bulkhead:", err)
		return 1
	}
	return 0
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "bulkhead",
		Short:         "Container security: inventory, SBOMs, vulnerabilities, misconfigurations, secrets, signing, runtime",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, mk := range commands {
		root.AddCommand(mk(stdout, stderr))
	}
	return root
}

// commands are bulkhead's subcommands; a new command is one entry here.
var commands = []func(stdout, stderr io.Writer) *cobra.Command{
	newImageCmd,
	newRootfsCmd,
	newFSCmd,
	newSBOMCmd,
	newDBCmd,
	newConfigCmd,
	newBaseCmd, newRecommendCmd, newCompareCmd,
	newGenerateKeyPairCmd, newSignCmd, newVerifyCmd, newAttestCmd, newVerifyAttestationCmd,
	newEncryptCmd, newDecryptCmd,
	newRuntimeCmd,
	newGateCmd,
	newAdmissionCmd,
	newServerCmd,
	newOperatorCmd, newK8sCmd,
}
