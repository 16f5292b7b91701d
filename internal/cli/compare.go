package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/compare"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/match"
	htmlreport "github.com/bulkhead-sec/bulkhead/report/html"
)

func newCompareCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		f         imageFlags
		mf        matchFlags
		r         reportFlags
		failOnNew string
		exitCode  exitCode
	)
	cmd := &cobra.Command{
		Use:   "compare [flags] IMAGE_A IMAGE_B",
		Short: "Compare two images: packages, vulnerabilities, configuration and size",
		Long: `Compare two images (typically two versions of one application): packages
added, removed and changed; vulnerabilities fixed and introduced (both matched
with the same database); configuration changes (user, exposed ports,
environment variable names — never values —, entrypoint, cmd, working
directory, volumes); size.

--fail-on-new HIGH exits with --exit-code (default 1) when IMAGE_B introduces
a vulnerability of HIGH or above, for CI.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := r.check(); err != nil {
				return err
			}
			var gate *finding.Severity
			if failOnNew != "" {
				s, err := finding.ParseSeverity(failOnNew)
				if err != nil {
					return fmt.Errorf("--fail-on-new: %w", err)
				}
				gate = &s
			}
			ctx := cmd.Context()
			m, err := mf.open()
			if err != nil {
				return err
			}
			defer m.Close()
			var sides [2]compare.Side
			for i, ref := range args {
				s, err := scanImageRef(ctx, ref, &f, m, stderr)
				if err != nil {
					return err
				}
				sides[i] = compare.Side{Inventory: s.Inventory, Findings: match.Active(s.Findings)}
				if s.Image != nil {
					sides[i].Config = s.Image.Config()
				}
			}
			if err := m.finish(); err != nil {
				return err
			}
			d := compare.Compare(sides[0], sides[1])
			printDiagnostics(stderr, m.Diagnostics()...)
			err = r.write(stdout, func(w io.Writer) error {
				if r.format == "html" {
					return htmlreport.Compare(w, d, m.info, htmlreport.Options{ToolVersion: Version})
				}
				if r.format == "json" {
					return writeJSON(w, struct {
						*compare.Diff
						DB any `json:"vulnerabilityDB"`
					}{d, m.info})
				}
				return compareTable(w, d)
			})
			if err != nil {
				return err
			}
			if gate != nil {
				if bad := d.IntroducedAtLeast(*gate); len(bad) > 0 {
					ids := make([]string, 0, len(bad))
					for _, v := range bad {
						ids = append(ids, v.ID+" ("+v.Package+")")
					}
					return &exitError{code: int(exitCode), err: fmt.Errorf("%s introduces %d vulnerabilities of %s or above: %s", args[1], len(bad), *gate, strings.Join(ids, ", "))}
				}
			}
			return nil
		},
	}
	f.add(cmd, true)
	mf.add(cmd)
	r.add(cmd, "table", "table", "json", "html")
	cmd.Flags().StringVar(&failOnNew, "fail-on-new", "", "exit with --exit-code when IMAGE_B introduces a vulnerability of this severity or above (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN)")
	addExitCode(cmd, &exitCode, 1, "--fail-on-new finds a vulnerability IMAGE_B introduces")
	return cmd
}

func compareTable(w io.Writer, d *compare.Diff) error {
	fmt.Fprintf(w, "A: %s\nB: %s\n", termSafe(d.A), termSafe(d.B))
	fmt.Fprintf(w, "Size: %s -> %s (%s)\n", base.HumanSize(d.SizeA), base.HumanSize(d.SizeB), signedBytes(d.SizeDelta))
	fmt.Fprintf(w, "Packages: %d added, %d removed, %d changed; vulnerabilities: %d fixed, %d introduced; %d configuration changes\n",
		len(d.PackagesAdded), len(d.PackagesRemoved), len(d.PackagesChanged), len(d.VulnsFixed), len(d.VulnsIntroduced), len(d.Config))
	if d.Empty() {
		fmt.Fprintln(w, "\nNo differences.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if n := len(d.PackagesAdded) + len(d.PackagesRemoved) + len(d.PackagesChanged); n > 0 {
		fmt.Fprintln(tw, "\nPACKAGE\tTYPE\tA\tB")
		for _, c := range d.PackagesChanged {
			fmt.Fprintf(tw, "~ %s\t%s\t%s\t%s\n", termSafe(c.Name), c.Type, termSafe(strings.Join(c.Before, ", ")), termSafe(strings.Join(c.After, ", ")))
		}
		for _, p := range d.PackagesAdded {
			fmt.Fprintf(tw, "+ %s\t%s\t-\t%s\n", termSafe(p.Name), p.Type, termSafe(p.Version))
		}
		for _, p := range d.PackagesRemoved {
			fmt.Fprintf(tw, "- %s\t%s\t%s\t-\n", termSafe(p.Name), p.Type, termSafe(p.Version))
		}
	}
	if len(d.VulnsFixed)+len(d.VulnsIntroduced) > 0 {
		fmt.Fprintln(tw, "\nVULNERABILITY\tSEVERITY\tPACKAGE\tVERSION")
		for _, v := range d.VulnsIntroduced {
			fmt.Fprintf(tw, "+ %s\t%s\t%s\t%s\n", termSafe(v.ID), v.Severity, termSafe(v.Package), termSafe(v.Version))
		}
		for _, v := range d.VulnsFixed {
			fmt.Fprintf(tw, "- %s (fixed)\t%s\t%s\t%s\n", termSafe(v.ID), v.Severity, termSafe(v.Package), termSafe(v.Version))
		}
	}
	if len(d.Config) > 0 {
		fmt.Fprintln(tw, "\nCONFIG\tA\tB")
		for _, c := range d.Config {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Field, textOr(c.Before, "-"), textOr(c.After, "-"))
		}
	}
	return tw.Flush()
}
