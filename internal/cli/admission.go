package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/admission"
	"github.com/bulkhead-sec/bulkhead/policy"
)

type admissionFlags struct {
	policy, cert, key, addr string
	cacheDir                string
	db                      dbFlags
	insecure                bool
	tagTTL, verifyTTL       time.Duration
	reload                  time.Duration
	logLevel                string
}

func newAdmissionCmd(stdout, stderr io.Writer) *cobra.Command {
	var f admissionFlags
	cmd := &cobra.Command{
		Use:   "admission --policy FILE --tls-cert CERT --tls-key KEY [--addr :8443]",
		Short: "Serve the Kubernetes validating admission webhook for a bulkhead policy",
		Long: `Serve a ValidatingAdmissionWebhook (admission.k8s.io/v1) on /validate that
judges Pods and workloads (through their pod template) with a bulkhead policy,
the same decisions bulkhead gate makes in CI. /healthz, /readyz and /metrics
(Prometheus) are served on the same port; decisions are logged as JSON on
standard error. The policy file and the TLS certificate are reloaded when they
change. deploy/helm/bulkhead-admission registers it in a cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmission(cmd.Context(), &f, stderr)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.policy, "policy", "p", policy.FileName, "policy file (docs/policy.md)")
	addTLSFiles(fl, &f.cert, &f.key)
	fl.StringVar(&f.addr, "addr", ":8443", "address to listen on")
	fl.StringVar(&f.cacheDir, "cache-dir", "", helpCacheDir)
	f.db.add(fl, false)
	addInsecure(cmd, &f.insecure, "insecure-registry")
	fl.DurationVar(&f.tagTTL, "tag-ttl", 10*time.Second, "how long a tag's resolved digest is reused (0: resolve on every request)")
	fl.DurationVar(&f.verifyTTL, "verify-ttl", 5*time.Minute, "how long a digest's signature verdict is reused")
	fl.DurationVar(&f.reload, "reload-interval", 5*time.Second, "how often the policy and certificate files are checked for changes")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runAdmission(ctx context.Context, f *admissionFlags, stderr io.Writer) error {
	if f.cert == "" || f.key == "" {
		return errors.New("--tls-cert and --tls-key are required: the API server calls webhooks over HTTPS only")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	facts := &policy.Registry{Insecure: f.insecure, DBPath: f.db.path, CacheDir: f.cacheDir, TagTTL: f.tagTTL, VerifyTTL: f.verifyTTL}
	defer facts.Close()
	srv, err := admission.New(admission.Options{PolicyPath: f.policy, Facts: facts, CertFile: f.cert, KeyFile: f.key, Logger: log, ReloadInterval: f.reload})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		TLSConfig:         srv.TLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Watch(ctx)
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	log.Info("admission webhook listening", "addr", ln.Addr().String(), "policy", f.policy, "rules", len(srv.Policy().Rules))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	return hs.Shutdown(shut)
}
