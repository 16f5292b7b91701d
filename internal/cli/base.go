package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
)

// scanImageRef opens and scans one image (any source image.Open reads);
// m, when set, matches its inventory.
func scanImageRef(ctx context.Context, ref string, f *imageFlags, m *vulnMatcher, stderr io.Writer) (*pipeline.Result, error) {
	o, prog, err := f.options(stderr)
	if err != nil {
		return nil, err
	}
	if m != nil {
		o.Matcher = m.Matcher
	}
	return runPipeline(ctx, ref, o, prog)
}

// vulnMatcher is the pipeline's matcher, opened once: every inventory is
// matched with it, so counts compare like with like.
type vulnMatcher struct {
	*pipeline.Matcher
	// info describes the data all the matches used (finish).
	info *report.DBInfo
}

func (f *matchFlags) open() (*vulnMatcher, error) {
	m, err := pipeline.OpenMatcher(f.options())
	if err != nil {
		return nil, err
	}
	return &vulnMatcher{Matcher: m}, nil
}

// counts dates one image's counts by the data its packages used (used:
// the ecosystems looked up; none: the whole database).
func (m *vulnMatcher) counts(used []string) (*base.VulnCounts, error) {
	age, err := m.Age(used)
	if err != nil {
		return nil, err
	}
	return &base.VulnCounts{DBSource: age.Oldest.Source, DBUpdated: age.Oldest.AsOf}, nil
}

// finish describes the data all the matches used and warns when it is
// stale; call it once, after the last match.
func (m *vulnMatcher) finish() error {
	info, err := m.Info(m.Used())
	m.info = info
	return err
}

func newBaseCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "base",
		Short: "Keep a local catalog of candidate base images (index, list, remove)",
		Long: `Keep a local catalog of candidate base images: what each holds, its
vulnerabilities, size, default user, shell and package manager, C library
and layers. The catalog lives next to the vulnerability database
(` + base.DefaultPath() + `; BULKHEAD_CACHE_DIR honoured). ` + "`bulkhead recommend`" + ` uses it
to detect an image's base and rank alternatives.`,
	}
	cmd.AddCommand(newBaseIndexCmd(stdout, stderr), newBaseListCmd(stdout), newBaseRemoveCmd(stdout))
	return cmd
}

func newBaseIndexCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		f        imageFlags
		mf       matchFlags
		catalog  string
		defaults bool
	)
	cmd := &cobra.Command{
		Use:   "index [flags] REF...",
		Short: "Scan candidate base images into the catalog",
		Long: `Scan candidate base images into the catalog. REF is any image bulkhead
reads (registry reference, docker-archive:FILE, oci-archive:FILE, oci:DIR,
docker:NAME, podman:NAME) or "scratch" (the empty image).

--defaults indexes a list of common minimal and hardened bases (Alpine,
Debian slim, Ubuntu, distroless, Chainguard/Wolfi, Red Hat UBI micro and
minimal, BusyBox, scratch) from their public registries; offline, index the
images you have instead.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			refs := args
			if defaults {
				refs = append(refs, base.Defaults()...)
			}
			if len(refs) == 0 {
				return fmt.Errorf("name the images to index, or use --defaults")
			}
			cat, err := base.Load(catalog)
			if err != nil {
				return err
			}
			m, err := mf.open()
			if err != nil {
				return err
			}
			defer m.Close()
			var failed []string
			indexed := 0
			for _, ref := range refs {
				e, err := indexOne(cmd.Context(), ref, &f, m, stderr)
				if err != nil {
					if errors.Is(err, context.Canceled) {
						return err
					}
					failed = append(failed, ref)
					fmt.Fprintf(stderr, "bulkhead: index %s: %v\n", ref, err)
					continue
				}
				cat.Put(*e)
				indexed++
				// Save after each image: a long --defaults run keeps what it did.
				if err := cat.Save(); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "indexed %s: %s, %s, %d packages, %s vulnerabilities, libc %s\n",
					ref, e.OSName(), base.HumanSize(e.Size), len(e.Packages), vulnWords(e.Vulns), e.Libc)
			}
			if err := m.finish(); err != nil {
				return err
			}
			printDiagnostics(stderr, m.Diagnostics()...)
			switch {
			case indexed == 0 && defaults && len(args) == 0:
				return fmt.Errorf("no default base could be indexed (no registry reachable?); offline, index the images you have: bulkhead base index oci-archive:FILE")
			case len(failed) > 0:
				return fmt.Errorf("%d of %d images could not be indexed: %s", len(failed), len(refs), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	f.add(cmd, true)
	mf.add(cmd)
	cmd.Flags().StringVar(&catalog, "catalog", "", "catalog file (default "+base.DefaultPath()+")")
	cmd.Flags().BoolVar(&defaults, "defaults", false, "also index the built-in list of common minimal and hardened bases (needs their registries)")
	return cmd
}

func vulnWords(v *base.VulnCounts) string {
	if v == nil {
		return "no"
	}
	var parts []string
	for _, s := range base.Severities {
		if n := v.BySev[s.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(s.String())))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", v.Total, strings.Join(parts, ", "))
}

// indexOne scans one candidate into a catalog entry.
func indexOne(ctx context.Context, ref string, f *imageFlags, m *vulnMatcher, stderr io.Writer) (*base.Entry, error) {
	if ref == base.Scratch {
		// The empty image: nothing to pull, nothing in it.
		inv := &inventory.Inventory{Target: inventory.Target{Name: base.Scratch, Source: "scratch"}}
		counts, err := m.counts(nil)
		if err != nil {
			return nil, err
		}
		e := base.Profile(ref, inv, nil, nil, counts)
		return &e, nil
	}
	s, err := scanImageRef(ctx, ref, f, m, stderr)
	if err != nil {
		return nil, err
	}
	fs := match.Active(s.Findings)
	counts, err := m.counts(s.Used)
	if err != nil {
		return nil, err
	}
	e := base.Profile(ref, s.Inventory, s.Tree, fs, counts)
	return &e, nil
}

func newBaseListCmd(stdout io.Writer) *cobra.Command {
	var catalog string
	var r reportFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the indexed base images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := base.Load(catalog)
			if err != nil {
				return err
			}
			if err := r.check(); err != nil {
				return err
			}
			return r.write(stdout, func(w io.Writer) error { return baseList(w, cat, r.format) })
		},
	}
	cmd.Flags().StringVar(&catalog, "catalog", "", "catalog file (default "+base.DefaultPath()+")")
	r.add(cmd, "table", "table", "json")
	return cmd
}

func baseList(stdout io.Writer, cat *base.Catalog, format string) error {
	if format == "json" {
		entries := cat.Entries
		if entries == nil {
			entries = []base.Entry{}
		}
		return writeJSON(stdout, entries)
	}
	if len(cat.Entries) == 0 {
		fmt.Fprintf(stdout, "The base catalog (%s) is empty: index bases with `bulkhead base index REF...` or `--defaults`.\n", cat.Path())
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REF\tOS\tLIBC\tSIZE\tLAYERS\tPACKAGES\tVULNS (C/H/M/L/U)\tUSER\tSHELL\tPKG MANAGER\tDB DATE")
	for _, e := range cat.Entries {
		vulns, date := "-", "-"
		if e.Vulns != nil {
			v := e.Vulns.BySev
			vulns = fmt.Sprintf("%d/%d/%d/%d/%d", v["CRITICAL"], v["HIGH"], v["MEDIUM"], v["LOW"], v["UNKNOWN"])
			date = "unknown"
			if !e.Vulns.DBUpdated.IsZero() {
				date = e.Vulns.DBUpdated.Format("2006-01-02")
			}
		}
		user := e.User
		if user == "" {
			user = "root"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", termSafe(e.Ref), termSafe(e.OSName()), e.Libc, base.HumanSize(e.Size),
			len(e.DiffIDs), len(e.Packages), vulns, termSafe(user), listOrNone(e.Shells), listOrNone(e.PackageManagers), date)
	}
	return tw.Flush()
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return termSafe(strings.Join(s, ","))
}

// clean keeps terminal control characters out of what image metadata says.
func termSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func newBaseRemoveCmd(stdout io.Writer) *cobra.Command {
	var catalog string
	cmd := &cobra.Command{
		Use:   "remove REF...",
		Short: "Remove images from the catalog",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := base.Load(catalog)
			if err != nil {
				return err
			}
			var missing []string
			for _, ref := range args {
				if cat.Remove(ref) {
					fmt.Fprintf(stdout, "removed %s\n", ref)
				} else {
					missing = append(missing, ref)
				}
			}
			if err := cat.Save(); err != nil {
				return err
			}
			if len(missing) > 0 {
				return fmt.Errorf("not in the catalog: %s (see `bulkhead base list`)", strings.Join(missing, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&catalog, "catalog", "", "catalog file (default "+base.DefaultPath()+")")
	return cmd
}
