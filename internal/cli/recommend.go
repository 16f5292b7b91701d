package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/diag"
)

func newRecommendCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		f          imageFlags
		mf         matchFlags
		catalog    string
		r          reportFlags
		baseRef    string
		detectOnly bool
	)
	cmd := &cobra.Command{
		Use:   "recommend [flags] IMAGE",
		Short: "Detect an image's base and rank the catalog's other bases by what moving gains",
		Long: `Detect the base image of IMAGE from the base catalog (` + "`bulkhead base index`" + `): by
its org.opencontainers.image.base.name/digest annotations when they name a
catalog entry, otherwise by the longest run of leading layers equal to a
catalog entry's layers. An image whose base is not in the catalog is said to
be so; nothing is guessed.

Then rank the catalog's other bases by what moving to each gains:
vulnerabilities removed and added by severity (both bases matched with the
same database now), size, packages, non-root default user, no shell, no
package manager. Candidates that need changes to the application are marked:
a different C library, a different or missing package manager for the OS
packages the application installs, a runtime its packages need.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := r.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			cat, err := base.Load(catalog)
			if err != nil {
				return err
			}
			s, err := scanImageRef(ctx, args[0], &f, nil, stderr)
			if err != nil {
				return err
			}
			diffIDs := s.Inventory.Target.DiffIDs()
			det := base.Detect(cat, diffIDs, s.Annotations)
			if baseRef != "" {
				e, ok := cat.Get(baseRef)
				if !ok {
					return fmt.Errorf("--base %s is not in the catalog (see `bulkhead base list`)", baseRef)
				}
				n := 0
				for n < len(e.DiffIDs) && n < len(diffIDs) && e.DiffIDs[n] == diffIDs[n] {
					n++
				}
				det = base.Detection{Method: "flag", Base: e, BaseRef: e.Ref, Layers: n, Of: len(diffIDs),
					Reason: fmt.Sprintf("named with --base; %d of its %d layers start the image", n, len(e.DiffIDs))}
			}
			if det.Base == nil || detectOnly {
				err := r.write(stdout, func(w io.Writer) error {
					if r.format == "json" {
						return writeJSON(w, map[string]any{"image": args[0], "detection": det})
					}
					_, err := fmt.Fprintf(w, "Image: %s\nBase:  %s\nHow:   %s\n", termSafe(args[0]), textOr(det.BaseRef, "not in the catalog"), termSafe(det.Reason))
					return err
				})
				if err != nil {
					return err
				}
				if det.Base == nil {
					return &exitError{code: 2, err: fmt.Errorf("%w: %s", base.ErrNoBase, det.Reason)}
				}
				return nil
			}
			m, err := mf.open()
			if err != nil {
				return err
			}
			defer m.Close()
			rec, err := base.Recommend(ctx, cat, det, s.Inventory, m.Active)
			if err != nil {
				if errors.Is(err, base.ErrNoBase) {
					return &exitError{code: 2, err: err}
				}
				return err
			}
			if err := m.finish(); err != nil {
				return err
			}
			if r.format == "json" {
				return r.write(stdout, func(w io.Writer) error {
					return writeJSON(w, struct {
						*base.Recommendation
						DB          any               `json:"vulnerabilityDB"`
						Warnings    []string          `json:"warnings,omitempty"`
						Diagnostics []diag.Diagnostic `json:"diagnostics,omitempty"`
					}{rec, m.info, m.Warnings(), m.Diagnostics()})
				})
			}
			printDiagnostics(stderr, m.Diagnostics()...)
			return r.write(stdout, func(w io.Writer) error { return recommendTable(w, rec, m) })
		},
	}
	f.add(cmd, true)
	mf.add(cmd)
	r.add(cmd, "table", "table", "json")
	fl := cmd.Flags()
	fl.StringVar(&catalog, "catalog", "", "catalog file (default "+base.DefaultPath()+")")
	fl.StringVar(&baseRef, "base", "", "take this catalog entry as the image's base instead of detecting it")
	fl.BoolVar(&detectOnly, "detect-only", false, "only say which base the image was built from (exit 2 when it is not in the catalog)")
	return cmd
}

// dateOrEmpty formats t as a date, or "" when zero.
func dateOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02")
}

func textOr(s, d string) string {
	if s == "" {
		return d
	}
	return termSafe(s)
}

func sevSlashes(m map[string]int) string {
	return fmt.Sprintf("%d/%d/%d/%d/%d", m["CRITICAL"], m["HIGH"], m["MEDIUM"], m["LOW"], m["UNKNOWN"])
}

func signedInt(n int) string {
	if n > 0 {
		return fmt.Sprintf("+%d", n)
	}
	return fmt.Sprint(n)
}

func signedBytes(n int64) string {
	if n > 0 {
		return "+" + base.HumanSize(n)
	}
	return base.HumanSize(n)
}

func recommendTable(w io.Writer, rec *base.Recommendation, m *vulnMatcher) error {
	d := rec.Detection
	cur := rec.Current
	fmt.Fprintf(w, "Image:        %s\n", termSafe(rec.Image))
	fmt.Fprintf(w, "Base:         %s (%s)\n", termSafe(cur.Ref), termSafe(d.Reason))
	if len(d.Aliases) > 0 {
		fmt.Fprintf(w, "              same layers as %s\n", termSafe(strings.Join(d.Aliases, ", ")))
	}
	fmt.Fprintf(w, "Current base: %s, libc %s, %s, %d packages, vulnerabilities C/H/M/L/U %s, user %s, shell %s, package manager %s\n",
		termSafe(cur.OS), cur.Libc, base.HumanSize(cur.Size), cur.Packages, sevSlashes(cur.Vulns), textOr(cur.User, "root"), listOrNone(cur.Shells), listOrNone(cur.PackageManagers))
	if m.info != nil {
		fmt.Fprintf(w, "Vuln DB:      %s, data as of %s\n", termSafe(m.info.Source), textOr(dateOrEmpty(m.info.UpdatedAt), "unknown"))
	}
	if len(rec.Candidates) == 0 {
		fmt.Fprintln(w, "\nNo other base in the catalog to compare with: index candidates with `bulkhead base index REF...`.")
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tCANDIDATE\tOS\tVULNS -REMOVED/+ADDED (C/H/M/L/U)\tSIZE\tPKGS\tNON-ROOT\tSHELL\tPKG MGR\tDROP-IN")
	for i, c := range rec.Candidates {
		vul := fmt.Sprintf("-%s +%s", sevSlashes(c.VulnsRemoved), sevSlashes(c.VulnsAdded))
		dropIn := "yes"
		if len(c.NeedsChanges) > 0 {
			dropIn = fmt.Sprintf("no (%d)", len(c.NeedsChanges))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", i+1, termSafe(c.Ref), termSafe(c.OS), vul, signedBytes(c.SizeDelta), signedInt(c.PackagesDelta),
			yesOrNo(c.NonRoot), listOrNone(c.Shells), listOrNone(c.PackageManagers), dropIn)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, c := range rec.Candidates {
		if len(c.Gains) == 0 && len(c.NeedsChanges) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%d. %s\n", i+1, termSafe(c.Ref))
		for _, g := range c.Gains {
			fmt.Fprintf(w, "   + %s\n", g)
		}
		for _, n := range c.NeedsChanges {
			fmt.Fprintf(w, "   ! needs change: %s\n", n)
		}
	}
	return nil
}

func yesOrNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
