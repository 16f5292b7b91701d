package cli

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/flags.md from the command tree")

const flagsDocPath = "../../docs/flags.md"

// TestFlagsDoc: docs/flags.md is what the command tree says. When it
// fails, run: go test ./internal/cli -run TestFlagsDoc -update
func TestFlagsDoc(t *testing.T) {
	// The defaults that name the cache follow $BULKHEAD_CACHE_DIR: show
	// the usual place, not this machine's.
	t.Setenv("BULKHEAD_CACHE_DIR", "~/.cache/bulkhead")
	var buf bytes.Buffer
	writeFlagsDoc(&buf, newRoot(io.Discard, io.Discard))
	if *updateDocs {
		if err := os.WriteFile(flagsDocPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(flagsDocPath)
	if err != nil {
		t.Fatalf("%v; generate it: go test ./internal/cli -run TestFlagsDoc -update", err)
	}
	if !bytes.Equal(have, buf.Bytes()) {
		hl, wl := strings.Split(string(have), "\n"), strings.Split(buf.String(), "\n")
		for i := 0; i < len(hl) || i < len(wl); i++ {
			var h, w string
			if i < len(hl) {
				h = hl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if h != w {
				t.Fatalf("%s is stale from line %d:\n  file: %s\n  code: %s\nregenerate it: go test ./internal/cli -run TestFlagsDoc -update", filepath.Clean(flagsDocPath), i+1, h, w)
			}
		}
	}
}

// writeFlagsDoc writes a Markdown page of every command's flags.
func writeFlagsDoc(w io.Writer, root *cobra.Command) {
	fmt.Fprintf(w, "# bulkhead command-line flags\n\n")
	fmt.Fprintf(w, "Generated from the code (`go test ./internal/cli -run TestFlagsDoc -update`); do not edit by hand.\n")
	fmt.Fprintf(w, "Flags shared by several commands are declared once (`internal/cli/flags.go`) and mean the same everywhere.\n")
	fmt.Fprintf(w, "Exit codes: README.md, \"Exit codes\". Deprecated spellings still work, hidden, with a warning on standard error:\n")
	fmt.Fprintf(w, "they are listed under their command.\n")
	eachCommand(root, func(c *cobra.Command) {
		if c.Hidden || c == root {
			return
		}
		fmt.Fprintf(w, "\n## %s\n\n%s\n\n```\n%s\n```\n", c.CommandPath(), c.Short, c.UseLine())
		var rows, old []string
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			if f.Hidden {
				old = append(old, fmt.Sprintf("`--%s` (%s)", f.Name, f.Usage))
				return
			}
			typ, usage := pflag.UnquoteUsage(f)
			name := "--" + f.Name
			if f.Shorthand != "" {
				name = "-" + f.Shorthand + ", " + name
			}
			if typ != "" {
				name += " " + typ
			}
			def := f.DefValue
			switch def {
			case "", "[]", "false":
				def = ""
			default:
				def = "`" + def + "`"
			}
			rows = append(rows, fmt.Sprintf("| `%s` | %s | %s |", name, def, strings.ReplaceAll(usage, "|", `\|`)))
		})
		if len(rows) > 0 {
			fmt.Fprintf(w, "\n| Flag | Default | Meaning |\n|---|---|---|\n%s\n", strings.Join(rows, "\n"))
		}
		var inherited []string
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && f.Name != "help" {
				inherited = append(inherited, "`--"+f.Name+"`")
			}
		})
		if len(inherited) > 0 {
			fmt.Fprintf(w, "\nAlso %s, from `%s`.\n", strings.Join(inherited, ", "), c.Parent().CommandPath())
		}
		if len(old) > 0 {
			fmt.Fprintf(w, "\nDeprecated: %s.\n", strings.Join(old, "; "))
		}
	})
}
