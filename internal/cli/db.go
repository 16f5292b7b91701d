package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// dbCmdFlags are shared by the db subcommands.
type dbCmdFlags struct {
	dbFlags
	quiet bool
}

func (f *dbCmdFlags) register(cmd *cobra.Command) {
	f.dbFlags.add(cmd.PersistentFlags(), false)
	cmd.PersistentFlags().BoolVarP(&f.quiet, "quiet", "q", false, helpQuiet)
}

func newDBCmd(stdout, stderr io.Writer) *cobra.Command {
	var f dbCmdFlags
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the vulnerability database (OSV)",
		Long: `Manage the local vulnerability database: OSV records for every ecosystem,
indexed by (ecosystem, package name).

A scan with no database builds one from the snapshot bundled in bulkhead, so it
works offline from the first run; 'db status' says how old the data is.

  bulkhead db update                         fetch from OSV (incremental after the first run)
  bulkhead db update --ecosystems Go,PyPI    only these ecosystems
  bulkhead db import all.zip ./advisories/   import zips, directories or files of OSV JSON
  bulkhead db export bulkhead-db.tar.gz      one checksummed file for an air-gapped network
  bulkhead db import bulkhead-db.tar.gz      install such a file (same as db import-export)
  bulkhead db status                         ecosystems, record counts, age`,
	}
	f.register(cmd)
	cmd.AddCommand(newDBUpdateCmd(&f, stdout, stderr), newDBImportCmd(&f, stdout, stderr), newDBImportExportCmd(&f, stdout, stderr),
		newDBExportCmd(&f, stdout, stderr), newDBStatusCmd(&f, stdout, stderr))
	return cmd
}

// dbProgress draws writer progress on a terminal.
func dbProgress(stderr io.Writer, quiet bool) (func(vulndb.Progress), func()) {
	p := newProgress(stderr, quiet)
	var last time.Time
	return func(ev vulndb.Progress) {
			if time.Since(last) < 100*time.Millisecond && ev.Stage != "write" {
				return
			}
			last = time.Now()
			var s string
			switch ev.Stage {
			case "download":
				s = fmt.Sprintf("%s: downloading %.1f MB", ev.Ecosystem, float64(ev.Done)/1e6)
				if ev.Total > 0 {
					s += fmt.Sprintf(" of %.1f MB", float64(ev.Total)/1e6)
				}
			case "fetch":
				s = fmt.Sprintf("%s: fetching changed records %d/%d", ev.Ecosystem, ev.Done, ev.Total)
			case "import":
				s = fmt.Sprintf("%s records read: %d", strings.TrimSpace(ev.Ecosystem), ev.Done)
			case "write":
				s = fmt.Sprintf("writing database (%d records)", ev.Done)
			}
			p.status(s)
		}, func() {
			p.clear()
		}
}

func newDBUpdateCmd(f *dbCmdFlags, stdout, stderr io.Writer) *cobra.Command {
	var repo, ecosystems string
	var full bool
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Download or refresh OSV records",
		Long: `Download OSV records from the OSV bucket (or a mirror with the same layout:
<base>/ecosystems.txt, <base>/<Ecosystem>/all.zip, <base>/<Ecosystem>/modified_id.csv,
<base>/<Ecosystem>/<ID>.json). Ecosystems already in the database are refreshed
incrementally. A failed or interrupted update leaves the previous database as it was.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			prog, done := dbProgress(stderr, f.quiet)
			opts := vulndb.Options{BaseURL: repo, Full: full, Progress: prog, UserAgent: "bulkhead/" + Version}
			for _, e := range strings.Split(ecosystems, ",") {
				if e = strings.TrimSpace(e); e != "" {
					opts.Ecosystems = append(opts.Ecosystems, e)
				}
			}
			start := time.Now()
			res, err := vulndb.Update(cmd.Context(), f.dbPath(), opts)
			done()
			if err != nil {
				return err
			}
			reportDiscarded(stderr, res)
			for _, fr := range res.Feeds {
				switch {
				case fr.Err != nil:
					printDiagnostics(stderr, diag.Warnf(diag.VulnDBFeedSkipped, "%s skipped: %v", fr.Name, fr.Err).At(diag.Location{Object: fr.Name}))
				case fr.Incremental:
					fmt.Fprintf(stdout, "%-20s %d changed (incremental)\n", fr.Name, fr.Changed)
				default:
					fmt.Fprintf(stdout, "%-20s %d changed (full download)\n", fr.Name, fr.Changed)
				}
			}
			reportSkipped(stderr, res)
			fmt.Fprintf(stdout, "updated %s in %s: %d records read, %d written, %d removed\n",
				f.dbPath(), time.Since(start).Round(time.Millisecond), res.Records, res.Written, res.Deleted)
			return nil
		},
	}
	fl := cmd.Flags()
	addDBRepository(fl, &repo)
	fl.StringVar(&ecosystems, "ecosystems", "", "comma-separated OSV ecosystems to fetch, as named in ecosystems.txt (default: all listed)")
	fl.BoolVar(&full, "full", false, "download every all.zip even when an incremental refresh is possible")
	return cmd
}

func newDBImportCmd(f *dbCmdFlags, stdout, stderr io.Writer) *cobra.Command {
	var replace bool
	var fullEcosystem string
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Import OSV records from zip files, directories or JSON files, or install an export file",
		Long: `Import OSV records into the database: zip files of OSV JSON (such as an OSV
bucket all.zip), directories searched recursively for *.json, or single JSON files
(one record, or an array of records). Records are added to the current database
unless --replace is given.

An import adds records; it does not date the database, since a few fresh
records say nothing about the rest. When the files are a complete OSV export
of one ecosystem (the OSV bucket's <Ecosystem>/all.zip), say so with
--full-ecosystem <Ecosystem>: that ecosystem's records missing from the export
are removed and its data is dated by the newest 'modified' time among its
records (an OSV zip does not carry its export time, so that is a lower bound).

A single file made by 'bulkhead db export' is recognised and installed as with
'bulkhead db import-export', after its checksum is verified.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && vulndb.IsExportFile(args[0]) {
				if replace || fullEcosystem != "" {
					return errors.New("--replace and --full-ecosystem do not apply to an export file: installing one replaces the database, with the data ages it records")
				}
				return importExport(f, args[0], stdout)
			}
			prog, done := dbProgress(stderr, f.quiet)
			start := time.Now()
			res, err := vulndb.Import(cmd.Context(), f.dbPath(), args, vulndb.Options{Replace: replace, FullEcosystem: fullEcosystem, Progress: prog})
			done()
			if res != nil {
				reportDiscarded(stderr, res)
				reportSkipped(stderr, res)
			}
			if err != nil {
				return err
			}
			removed := ""
			if res.Deleted > 0 {
				removed = fmt.Sprintf("; %d removed (no longer in the %s export)", res.Deleted, fullEcosystem)
			}
			fmt.Fprintf(stdout, "imported %d records (%d new or changed, %d withdrawn%s) into %s in %s\n",
				res.Records, res.Written, res.Withdrawn, removed, f.dbPath(), time.Since(start).Round(time.Millisecond))
			for _, fr := range res.Fresh {
				fmt.Fprintf(stdout, "%s data dated %s (newest record in the export)\n", fr.Ecosystem, fr.AsOf.UTC().Format("2006-01-02 15:04 UTC"))
			}
			if fullEcosystem == "" {
				ecos := make([]string, 0, len(res.Ecosystems))
				for e := range res.Ecosystems {
					ecos = append(ecos, e)
				}
				sort.Strings(ecos)
				fmt.Fprintf(stderr, "note: a partial import dates no data: the age of %s data is unchanged (see bulkhead db status); "+
					"if a file is a complete OSV export of one ecosystem (its all.zip), import it with --full-ecosystem NAME\n", strings.Join(ecos, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "start from an empty database instead of adding to the current one")
	cmd.Flags().StringVar(&fullEcosystem, "full-ecosystem", "", "the files are a complete OSV export of this ecosystem (e.g. PyPI from PyPI/all.zip): remove its records the export lacks and date its data by the export's newest record")
	return cmd
}

func newDBImportExportCmd(f *dbCmdFlags, stdout, _ io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "import-export FILE",
		Short: "Install a database exported with 'bulkhead db export' (checksum verified)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return importExport(f, args[0], stdout)
		},
	}
}

func importExport(f *dbCmdFlags, file string, stdout io.Writer) error {
	m, err := vulndb.ImportExport(file, f.dbPath())
	if err != nil {
		return err
	}
	asOf := "unknown"
	if !m.Status.Updated.IsZero() {
		asOf = m.Status.Updated.UTC().Format("2006-01-02 15:04 UTC")
	}
	fmt.Fprintf(stdout, "installed %s: %d records, sha256 %s verified, oldest data as of %s\n",
		f.dbPath(), m.Status.Records, m.DB.SHA256[:16], asOf)
	return nil
}

func newDBExportCmd(f *dbCmdFlags, stdout, _ io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "export FILE",
		Short: "Write the database to one checksummed file (tar.gz) to carry into an air-gapped network",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			m, err := vulndb.Export(f.dbPath(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "exported %d records to %s (database sha256 %s); install it with: bulkhead db import %s\n",
				m.Status.Records, args[0], m.DB.SHA256, args[0])
			return nil
		},
	}
}

func newDBStatusCmd(f *dbCmdFlags, stdout, stderr io.Writer) *cobra.Command {
	var r reportFlags
	var age dbFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the database's ecosystems, record counts and age",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := r.check(); err != nil {
				return err
			}
			path := f.dbPath()
			db, err := vulndb.Open(path)
			if errors.Is(err, vulndb.ErrNotFound) {
				m, berr := vulndb.Bundled()
				if berr != nil {
					return err
				}
				fmt.Fprintf(stdout, "No database at %s.\nThe first scan builds one from the bundled snapshot: %d OSV records as of %s (%s old).\nRun `bulkhead db update` for current data.\n",
					path, m.Records, m.Date.UTC().Format("2006-01-02"), pipeline.HumanDuration(time.Since(m.Date)))
				return nil
			}
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := db.Status()
			if err != nil {
				return err
			}
			if r.format == "json" {
				// age_seconds is null when some ecosystem's data is undated.
				var ageSec *int64
				if st.Data.Known() {
					a := int64(st.Age().Seconds())
					ageSec = &a
				}
				return r.write(stdout, func(w io.Writer) error {
					return writeJSON(w, struct {
						vulndb.Status
						AgeSeconds *int64 `json:"age_seconds"`
					}{st, ageSec})
				})
			}
			if err := r.write(stdout, func(w io.Writer) error { writeStatus(w, st); return nil }); err != nil {
				return err
			}
			if err := st.CheckAge(age.maxAge); err != nil {
				var stale *vulndb.StaleError
				if errors.As(err, &stale) {
					printDiagnostics(stderr, stale.Diagnostic())
				} else {
					warnf(stderr, diag.VulnDBStale, "%v", err)
				}
			}
			return nil
		},
	}
	r.add(cmd, "table", "table", "json")
	age.addMaxAge(cmd.Flags())
	return cmd
}

func writeStatus(w io.Writer, st vulndb.Status) {
	fmt.Fprintf(w, "Database:  %s (%.1f MB, schema %d)\n", st.Path, float64(st.Size)/1e6, st.SchemaVersion)
	o := st.Data.Oldest
	what := "the oldest ecosystem"
	if o.Ecosystem != "" {
		what = o.Ecosystem + ", the oldest ecosystem"
	}
	if o.Known() {
		fmt.Fprintf(w, "Data age:  %s (%s: data as of %s, %s)\n", pipeline.HumanDuration(o.Age()), what, o.AsOf.UTC().Format("2006-01-02 15:04 UTC"), o.Source)
	} else {
		fmt.Fprintf(w, "Data age:  unknown (%s: %s)\n", what, o.Source)
	}
	if o.Kind == vulndb.KindBundled || !o.Known() {
		fmt.Fprintln(w, "           run `bulkhead db update` for current data")
	}
	if !st.Written.IsZero() {
		fmt.Fprintf(w, "Written:   %s by %s\n", st.Written.UTC().Format("2006-01-02 15:04 UTC"), st.Writer)
	}
	fmt.Fprintf(w, "Records:   %d (%d withdrawn)\n\n", st.Records, st.Withdrawn)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS")
	for _, e := range st.Ecosystems {
		fmt.Fprintf(tw, "%s\t%d\n", e.Name, e.Records)
	}
	tw.Flush()
	if len(st.Data.Ecosystems) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DATA OF\tAS OF\tAGE\tDATED BY\tSOURCE")
		for _, e := range st.Data.Ecosystems {
			asOf := "unknown"
			if e.Known() {
				asOf = e.AsOf.UTC().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Ecosystem, asOf, pipeline.AgeText(e), e.Kind, e.Source)
		}
		tw.Flush()
	}
	if len(st.Feeds) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FEED\tRECORDS\tNEWEST RECORD\tFETCHED")
		for _, fd := range st.Feeds {
			newest := "-"
			if !fd.Watermark.IsZero() {
				newest = fd.Watermark.UTC().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", fd.Name, fd.Records, newest, fd.Updated.UTC().Format("2006-01-02 15:04"))
		}
		tw.Flush()
	}
}

func reportDiscarded(stderr io.Writer, res *vulndb.Result) {
	if res.Discarded != nil {
		warnf(stderr, diag.VulnDBRebuilt, "the previous database could not be read and was rebuilt from scratch: %v", res.Discarded)
	}
}

func reportSkipped(stderr io.Writer, res *vulndb.Result) {
	if res.Skipped == 0 {
		return
	}
	warnf(stderr, diag.VulnDBRecordsSkipped, "%d files were not valid OSV records and were skipped:", res.Skipped)
	for _, p := range res.Problems {
		fmt.Fprintln(stderr, "  "+p)
	}
	if res.Skipped > len(res.Problems) {
		fmt.Fprintf(stderr, "  ... and %d more\n", res.Skipped-len(res.Problems))
	}
}

// ageFlag is a duration flag that also takes days ("7d").
type ageFlag time.Duration

func (a *ageFlag) String() string {
	d := time.Duration(*a)
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

func (a *ageFlag) Set(s string) error {
	d, err := parseAge(s)
	if err != nil {
		return err
	}
	*a = ageFlag(d)
	return nil
}

func (a *ageFlag) Type() string { return "duration" }

func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want a number of days like 7d, or a duration like 36h", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a number of days like 7d, or a duration like 36h", s)
	}
	return d, nil
}
