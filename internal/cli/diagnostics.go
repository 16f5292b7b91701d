package cli

import (
	"io"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/report"
)

// printDiagnostics is the one way every command shows diagnostics on the
// terminal (stderr): one line each, "warning: message [code]", with
// control characters masked.
func printDiagnostics(stderr io.Writer, ds ...diag.Diagnostic) {
	diag.Fprint(stderr, ds)
}

// warnf prints one warning of code made on the spot by a command.
func warnf(stderr io.Writer, code diag.Code, format string, args ...any) {
	printDiagnostics(stderr, diag.Warnf(code, format, args...))
}

// warnOutsideTable prints a result's diagnostics on stderr for the formats
// that do not show them themselves (all but the table), unless quiet.
func warnOutsideTable(stderr io.Writer, format string, quiet bool, res *report.Result) {
	if quiet || format == "table" {
		return
	}
	printDiagnostics(stderr, res.AllDiagnostics()...)
}
