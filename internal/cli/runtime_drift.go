package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/runtime/alert"
	"github.com/bulkhead-sec/bulkhead/runtime/drift"
	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/profile"
	"github.com/bulkhead-sec/bulkhead/runtime/sensor"
)

// imageRuntimeFlags are `runtime`'s drift and learned-behaviour flags.
type imageRuntimeFlags struct {
	drift       bool
	indexDir    string
	autoIndex   bool
	profiles    string
	learnWindow time.Duration
	server      serverClientFlags
}

func (f *imageRuntimeFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.drift, "drift", false, "alert on executables not from the container's image and on package managers in containers (bundled bulkhead rules)")
	addImageIndex(cmd, &f.indexDir)
	fl.BoolVar(&f.autoIndex, "drift-auto-index", true, "with --drift, build a missing image file list by exporting the image from the container runtime's socket")
	fl.StringVar(&f.profiles, "profiles", "", "learn per-image behaviour profiles into this directory (one YAML file per image id; with --server, into the server and a local copy here) and alert on what is new after the window")
	fl.DurationVar(&f.learnWindow, "learn-window", 24*time.Hour, "how long a new image's profile learns before it enforces")
	addRuntimeServer(fl, &f.server)
}

// enrichers builds the image id resolver (always: container.image.id is
// what promoted allow-list rules test), and the drift detector and the
// learner the flags ask for; close releases them (saving the profiles).
func (f *imageRuntimeFlags) enrichers(stderr io.Writer) (es []alert.Enricher, close func(), err error) {
	var closers []func()
	close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if f.profiles != "" && f.learnWindow <= 0 {
		return nil, close, fmt.Errorf("--learn-window %s: give a positive duration (e.g. 10m, 24h)", f.learnWindow)
	}
	res := sensor.NewResolver(sensor.DefaultSockets())
	es = append(es, resolverEnricher{res})
	if f.drift {
		st, err := f.server.indexStore(f.indexDir, stderr)
		if err != nil {
			return nil, close, err
		}
		d := drift.New(drift.Options{Store: st, Resolver: res, AutoIndex: f.autoIndex,
			TempDir: os.TempDir(), Stderr: stderr})
		closers = append(closers, d.Close)
		es = append(es, d)
	}
	if f.profiles != "" {
		st, err := f.server.profileStore(f.profiles, stderr)
		if err != nil {
			return nil, close, err
		}
		l := profile.New(profile.Options{Dir: f.profiles, Window: f.learnWindow, Stderr: stderr, Store: st})
		closers = append(closers, func() { l.Close() })
		es = append(es, l)
	}
	return es, close, nil
}

type resolverEnricher struct{ r *sensor.Resolver }

func (e resolverEnricher) Enrich(ev *event.Event) {
	if ct := ev.Container; ct != nil && ct.ImageID == "" {
		ct.ImageID = e.r.ImageID(ct.ID)
	}
}

func (resolverEnricher) EventTypes() []string { return nil }

func newRuntimeIndexCmd(stdout, stderr io.Writer) *cobra.Command {
	var dir string
	var insecure bool
	var srv serverClientFlags
	cmd := &cobra.Command{
		Use:   "index IMAGE...",
		Short: "List an image's files with their SHA-256 for drift detection, kept by image id",
		Long: `Read each image (any reference bulkhead scan reads: a registry, podman:NAME,
docker:NAME, docker-archive:FILE, oci-archive:FILE, oci:DIR) and write the list of its
files with their SHA-256 into --image-index, named by the image id. ` + "`bulkhead runtime --drift`" + `
compares every executable a container runs with that list.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			store, err := srv.indexStore(dir, stderr)
			if err != nil {
				return err
			}
			for _, ref := range args {
				if err := indexImage(ctx, store, ref, insecure, stdout); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addImageIndex(cmd, &dir)
	addInsecure(cmd, &insecure)
	addRuntimeServer(cmd.Flags(), &srv)
	return cmd
}

func indexImage(ctx context.Context, store drift.IndexStore, ref string, insecure bool, stdout io.Writer) error {
	tmp, err := os.MkdirTemp("", "bulkhead-index-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img, err := image.Open(ctx, ref, image.Options{TempDir: tmp, Insecure: insecure})
	if err != nil {
		return err
	}
	defer img.Close()
	ix, err := drift.Build(ctx, img, tmp)
	if err != nil {
		return err
	}
	file, err := store.Save(ix)
	if err != nil {
		return err
	}
	for _, w := range ix.Warnings {
		fmt.Fprintf(stdout, "warning: %s: %s\n", ref, w)
	}
	fmt.Fprintf(stdout, "%s: image %s, %d files -> %s\n", ref, ix.Image, len(ix.Files), file)
	return nil
}

func newRuntimeProfileCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Check learned behaviour profiles and promote them to allow-list rules",
		Long: `A behaviour profile (written by ` + "`bulkhead runtime --profiles DIR`" + `, one YAML file per
image id) lists what the image's containers did during the learning window:

  apiVersion: bulkhead.dev/v1
  kind: RuntimeProfile
  image: sha256:...
  state: enforcing          # learning until learningEnds
  executables: [/usr/bin/app, /usr/lib/app/*]       # paths, path.Match globs, /dir/**
  outbound: [10.0.0.5:5432/tcp, 10.0.0.0/8:*/udp]  # ADDR:PORT/PROTO, CIDR and * allowed
  dns: [db.internal, "*.example.com"]
  listening: [8080/tcp]
  writes: [/var/log/app.log, /data/**]

Edit it freely; the sensor reads it when it first sees the image.`,
	}
	var out string
	promote := &cobra.Command{
		Use:   "promote PROFILE.yaml",
		Short: "Write Falco allow-list rules from a profile (they fire on anything the profile does not list)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := profile.Load(args[0])
			if err != nil {
				return err
			}
			b, err := profile.Promote(p)
			if err != nil {
				return fmt.Errorf("promote %s: %w", args[0], err)
			}
			w, closeOut, err := openOutput(stdout, out, "--output")
			if err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				closeOut()
				return err
			}
			return closeOut()
		},
	}
	promote.Flags().StringVarP(&out, "output", "o", "", "write the rules to this file (default stdout)")
	check := &cobra.Command{
		Use:   "check PROFILE.yaml...",
		Short: "Validate profiles: every entry parses",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				p, err := profile.Load(a)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: image %s, %s, %d executables, %d outbound, %d dns, %d listening, %d writes\n", a, p.Image, p.State,
					len(p.Executables), len(p.Outbound), len(p.DNS), len(p.Listening), len(p.Writes))
			}
			return nil
		},
	}
	cmd.AddCommand(promote, check)
	return cmd
}

// addImageIndex declares --image-index, the same on `runtime` and
// `runtime index`.
func addImageIndex(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "image-index", drift.DefaultStoreDir, "directory of image file lists by image id (`bulkhead runtime index` writes them)")
}
