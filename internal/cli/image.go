package cli

import (
	"context"
	"fmt"
	"io"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// scanFlags are the flags shared by the commands that scan a target.
type scanFlags struct {
	reportFlags
	input string
	scope catalog.Scope
	// maxEntries raises or lowers the walk's entry limits (0: defaults).
	maxEntries int
	// policy is a CEL checks file whose imageconfig checks run with the
	// misconfig scanner (image only).
	policy string
	imageFlags
	findingFlags
	attest attestFlags
	// server, when set, matches with bulkhead server (image only).
	server serverClientFlags
}

func (f *scanFlags) register(cmd *cobra.Command, withImage bool) {
	fl := cmd.Flags()
	f.reportFlags.add(cmd, "table", formatNames()...)
	f.imageFlags.add(cmd, withImage)
	fl.IntVar(&f.maxEntries, "max-entries", 0, fmt.Sprintf("most filesystem entries read from the image and from any one layer, against tar bombs (default %d per image, %d per layer)", walk.DefaultMaxImageEntries, walk.DefaultMaxEntries))
	if withImage {
		fl.StringVarP(&f.input, "input", "i", "", "read the image from an archive file (docker-archive or oci-archive, gzip or not) or an OCI layout directory")
		f.attest.register(cmd)
		f.server.add(fl)
		fl.StringVar(&f.policy, "policy", "", "YAML file of custom CEL checks: those of target imageconfig run on the image's configuration with the misconfig scanner (dockerfile and kubernetes ones: bulkhead config --policy)")
	}
	f.findingFlags.register(cmd, []string{scannerVuln})
}

func newImageCmd(stdout, stderr io.Writer) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "image [flags] IMAGE",
		Short: "Scan a container image",
		Long: `Scan a container image and report its inventory.

IMAGE is one of:
  alpine:3.20, registry:5000/app@sha256:...   a registry reference
  docker-archive:FILE, oci-archive:FILE       an image archive (or --input FILE)
  oci:DIR[:TAG]                               an OCI image layout (or --input DIR)
  docker:NAME, podman:NAME                    an image from a Docker Engine API socket
                                              (DOCKER_HOST / CONTAINER_HOST honoured)`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.input != "" && len(args) > 0 {
				return fmt.Errorf("give either --input or an IMAGE argument, not both")
			}
			if f.input == "" && len(args) != 1 {
				return fmt.Errorf("name one image to scan (or use --input FILE)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := f.input
			if ref == "" {
				ref = args[0]
			}
			return runScan(cmd, &f, stdout, stderr, ref)
		},
	}
	f.register(cmd, true)
	return cmd
}

func newRootfsCmd(stdout, stderr io.Writer) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "rootfs [flags] DIR",
		Short: "Scan a root filesystem directory (installed packages, as in an image)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, &f, stdout, stderr, "rootfs:"+args[0])
		},
	}
	f.register(cmd, false)
	return cmd
}

func newFSCmd(stdout, stderr io.Writer) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "fs [flags] DIR",
		Short: "Scan a source tree or build output (lockfiles and manifests as well as installed packages)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.scope = catalog.ScopeAll
			return runScan(cmd, &f, stdout, stderr, "dir:"+args[0])
		},
	}
	f.register(cmd, false)
	return cmd
}

// options turns the image flags into pipeline options, with a progress
// display for opening and walking.
func (f *imageFlags) options(stderr io.Writer) (pipeline.Options, *progress, error) {
	o := pipeline.Options{TempDir: f.tempDir, Insecure: f.insecure}
	if f.platform != "" {
		p, err := v1.ParsePlatform(f.platform)
		if err != nil {
			return o, nil, fmt.Errorf("--platform %q: %w", f.platform, err)
		}
		o.Platform = p
	}
	dec, err := f.decrypter()
	if err != nil {
		return o, nil, err
	}
	o.Decrypter = dec
	prog := newProgress(stderr, f.quiet)
	o.OpenProgress, o.WalkProgress = prog.bytes, prog.layer
	return o, prog, nil
}

// runPipeline runs the scan pipeline on ref, drawing the progress line.
func runPipeline(ctx context.Context, ref string, o pipeline.Options, prog *progress) (*pipeline.Result, error) {
	prog.status("opening " + ref)
	res, err := pipeline.Run(ctx, ref, o)
	prog.clear()
	return res, err
}

func runScan(cmd *cobra.Command, f *scanFlags, stdout, stderr io.Writer, ref string) error {
	ctx := cmd.Context()
	if err := f.check(); err != nil {
		return err
	}
	scanners, err := f.active()
	if err != nil {
		return err
	}
	var celScanner scan.Scanner
	var polNotes []diag.Diagnostic
	if f.policy != "" {
		if !slices.Contains(scanners, "misconfig") {
			return fmt.Errorf("--policy %s: its checks run with the misconfig scanner; add misconfig to --scanners", f.policy)
		}
		p, notes, err := loadCELPolicy(f.policy, "bulkhead image", "an image's configuration", cel.ImageConfig)
		if err != nil {
			return err
		}
		celScanner, polNotes = &celImageScanner{source: f.policy, checks: p.ForTarget(cel.ImageConfig)}, notes
	}
	o, prog, err := f.imageFlags.options(stderr)
	if err != nil {
		return err
	}
	o.Scope, o.MaxEntries = f.scope, f.maxEntries
	for _, s := range scanners {
		if mk, ok := imageScanners[s]; ok {
			o.Scanners = append(o.Scanners, mk(f))
		}
	}
	if celScanner != nil {
		o.Scanners = append(o.Scanners, celScanner)
	}
	if o.Vulns, err = f.matchOptions(scanners); err != nil {
		return err
	}
	// With --server, no local vulnerability database: the server matches.
	vulns := o.Vulns
	if f.server.url != "" {
		o.Vulns = nil
	}
	scanned, err := runPipeline(ctx, ref, o, prog)
	if err != nil {
		return err
	}
	res := scanned.Result
	if f.server.url != "" {
		if err := f.server.match(ctx, res, vulns); err != nil {
			return err
		}
	}
	res.Scanners = scanners
	res.Diagnose(polNotes...)
	if err := writeResultRegion(ctx, stdout, f.format, f.output, res); err != nil {
		return err
	}
	warnOutsideTable(stderr, f.format, f.quiet, res)
	if err := f.attest.attestResult(ctx, stderr, scanned.Image, f.insecure, res); err != nil {
		return fmt.Errorf("--attest: %w", err)
	}
	return f.exit(res)
}

// celImageScanner runs a policy's imageconfig checks on the scanned
// image's configuration.
type celImageScanner struct {
	source string
	checks []*cel.Check
}

func (s *celImageScanner) Name() string          { return "misconfig (--policy " + s.source + ")" }
func (s *celImageScanner) Visitor() walk.Visitor { return nil }
func (s *celImageScanner) Findings(_ context.Context, r *scan.Result) ([]finding.Finding, error) {
	var cfg *v1.ConfigFile
	if r.Image != nil {
		cfg = r.Image.Config()
	}
	target := ""
	if r.Inventory != nil {
		target = r.Inventory.Target.Name
	}
	return cel.ImageConfigFindings(s.checks, cfg, target)
}
