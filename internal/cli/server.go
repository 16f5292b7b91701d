package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/reeval"
	"github.com/bulkhead-sec/bulkhead/server/reevaljob"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// bootstrapTokenEnv holds the bootstrap admin token (or use
// --bootstrap-token-file).
const bootstrapTokenEnv = "BULKHEAD_BOOTSTRAP_TOKEN"

// serverExtensions are the packages that plug into bulkhead server (the
// Harbor adapter, re-evaluation): each registers itself here.
var serverExtensions []func() server.Extension

func newServerCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		db                 databaseFlag
		vulns              dbFlags
		listen             string
		tlsCert, tlsKey    string
		concurrency        int
		maxUpload          int64
		tempDir            string
		insecure           bool
		bootstrapTokenFile string
		updateInterval     time.Duration
		updateRepo         string
		webhookURL         string
		webhookSecretFile  string
		baseCatalog        string
		signaturePolicy    string
	)
	cmd := &cobra.Command{
		Use:   "server [flags]",
		Short: "Run bulkhead server: the fleet's inventory and findings over an HTTP API",
		Long: `Run bulkhead server. It scans images by reference (pulled from their registries
by a job queue), matches inventories uploaded from CI (bulkhead image --server,
CycloneDX, SPDX), stores every scan, and answers queries over the fleet: images
by severity and package, which images and workloads a vulnerability hits, what
changed since a time, the difference between two scans. It ingests runtime
alerts (falcosidekick's webhook output) and gate and admission decisions.

The API is JSON over HTTP(S), described at /openapi.json. Every endpoint but
/healthz and /readyz needs an API token (Authorization: Bearer): make the first
one with $` + bootstrapTokenEnv + ` (or --bootstrap-token-file) as an admin token,
or with "bulkhead server token create --role admin NAME".

The database is SQLite in the cache directory unless --database names a
PostgreSQL server (several replicas may share one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			log := slog.New(slog.NewJSONHandler(stderr, nil))
			boot, err := bootstrapToken(bootstrapTokenFile)
			if err != nil {
				return err
			}
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("give both --tls-cert and --tls-key, or neither")
			}
			st, err := openServerStore(ctx, db.source())
			if err != nil {
				return err
			}
			defer st.Close()
			notifier, err := reevalWebhook(webhookURL, webhookSecretFile, log)
			if err != nil {
				return err
			}
			mo := pipeline.MatchOptions{DBPath: vulns.dbPath(), MaxAge: vulns.maxAge}
			m, err := pipeline.OpenMatcher(mo)
			if err != nil {
				return err
			}
			defer m.Close()
			if _, err := m.Info(nil); err != nil {
				return err
			}
			for _, w := range m.Warnings() {
				log.Warn(w)
			}
			cfg := server.Config{Store: st, Queue: server.QueueOf(st), Matcher: m, Scanners: serverScanners,
				Concurrency: concurrency, BootstrapToken: boot, MaxUpload: maxUpload, TempDir: tempDir,
				Insecure: insecure, Logger: log}
			if baseCatalog != "" {
				if _, err := os.Stat(baseCatalog); err != nil {
					return fmt.Errorf("--base-catalog: %w (index bases with bulkhead base index --catalog %s)", err, baseCatalog)
				}
				if cfg.BaseCatalog, err = base.Load(baseCatalog); err != nil {
					return fmt.Errorf("--base-catalog: %w", err)
				}
			}
			if signaturePolicy != "" {
				if cfg.SignaturePolicy, err = sign.LoadPolicy(signaturePolicy); err != nil {
					return fmt.Errorf("--signature-policy: %w", err)
				}
			}
			for _, mk := range serverExtensions {
				cfg.Extensions = append(cfg.Extensions, mk())
			}
			ro := reevaljob.Options{Match: mo, UpdateInterval: updateInterval, Notifier: notifier, TempDir: tempDir,
				Update: vulndb.Options{BaseURL: updateRepo, UserAgent: "bulkhead/" + Version}}
			if st.Dialect() == sqlstore.Postgres {
				ro.Lock = reevaljob.PostgresLock(st.Pool())
			}
			cfg.Extensions = append(cfg.Extensions, reevaljob.New(ro))
			srv, err := server.New(ctx, cfg)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			var reload *server.CertReloader
			if tlsCert != "" {
				if reload, err = server.NewCertReloader(tlsCert, tlsKey); err != nil {
					ln.Close()
					return err
				}
			} else if !isLoopback(ln.Addr()) {
				log.Warn("serving plain HTTP on a non-loopback address: tokens cross the network in clear; give --tls-cert and --tls-key")
			}
			if reload != nil {
				return srv.Run(ctx, ln, reload.TLSConfig())
			}
			return srv.Run(ctx, ln, nil)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve the API on (host:port; :8443 for every interface)")
	db.add(fl)
	vulns.add(fl, true)
	addTLSFiles(fl, &tlsCert, &tlsKey)
	fl.IntVar(&concurrency, "concurrency", 2, "most scans by reference that run at once")
	fl.Int64Var(&maxUpload, "max-upload", server.DefaultMaxUpload, "largest inventory upload accepted, in bytes (larger: 413)")
	addTempDir(fl, &tempDir)
	addInsecure(cmd, &insecure)
	fl.StringVar(&bootstrapTokenFile, "bootstrap-token-file", "", "file holding an admin API token accepted at start (hashed at once; default $"+bootstrapTokenEnv+")")
	fl.DurationVar(&updateInterval, "db-update-interval", 0, "run 'db update' in the server this often (e.g. 6h), then re-evaluate every stored image if the data changed (0: only on POST /api/v1/vulndb/update)")
	addDBRepository(fl, &updateRepo)
	fl.StringVar(&webhookURL, "notify-webhook", "", "POST each re-evaluation's changes as JSON to this URL (signed with HMAC-SHA256 in "+reeval.SignatureHeader+" when a secret is given)")
	fl.StringVar(&webhookSecretFile, "notify-webhook-secret-file", "", "file holding the webhook's HMAC secret (default $"+webhookSecretEnv+"; never logged)")
	fl.StringVar(&baseCatalog, "base-catalog", "", "base-image catalog (bulkhead base index): detect each pulled image's base and recommend better ones, shown on the dashboard's image page")
	fl.StringVar(&signaturePolicy, "signature-policy", "", "signature policy file (as bulkhead verify --policy): verify each pulled image's signatures and attestations, shown on the dashboard's image page")
	cmd.AddCommand(newServerTokenCmd(stdout))
	return cmd
}

// webhookSecretEnv holds the webhook's HMAC secret (or use
// --notify-webhook-secret-file).
const webhookSecretEnv = "BULKHEAD_WEBHOOK_SECRET"

// reevalWebhook is the --notify-webhook notifier (nil without one).
func reevalWebhook(url, secretFile string, log *slog.Logger) (reeval.Notifier, error) {
	secret := []byte(os.Getenv(webhookSecretEnv))
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, fmt.Errorf("--notify-webhook-secret-file: %w", err)
		}
		secret = bytes.TrimSpace(b)
	}
	if url == "" {
		if secretFile != "" {
			return nil, errors.New("--notify-webhook-secret-file without --notify-webhook: give the URL to post to")
		}
		return nil, nil
	}
	w, err := reeval.NewWebhook(url, bytes.TrimSpace(secret))
	if err != nil {
		return nil, fmt.Errorf("--notify-webhook: %w", err)
	}
	if len(secret) == 0 {
		log.Warn("--notify-webhook without a secret: the receiver cannot check that a notification is the server's; set $" + webhookSecretEnv + " or --notify-webhook-secret-file")
	}
	w.Log = log
	return w, nil
}

// serverScanners are the scanners that ride a pulled image's walk: every
// scanner of bulkhead image but vuln, which the server's matcher runs.
func serverScanners() []scan.Scanner {
	var out []scan.Scanner
	for _, name := range []string{"secret", "misconfig"} {
		out = append(out, imageScanners[name](nil))
	}
	return out
}

// bootstrapToken reads the bootstrap admin token from the file, else the
// environment ("" for none).
func bootstrapToken(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--bootstrap-token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 20 {
			return "", fmt.Errorf("--bootstrap-token-file %s: a token of at least 20 characters is needed (make one with: openssl rand -hex 32)", file)
		}
		return tok, nil
	}
	tok := strings.TrimSpace(os.Getenv(bootstrapTokenEnv))
	if tok != "" && len(tok) < 20 {
		return "", fmt.Errorf("$%s: a token of at least 20 characters is needed (make one with: openssl rand -hex 32)", bootstrapTokenEnv)
	}
	return tok, nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// serverCacheDir is bulkhead's cache directory, where the embedded
// database lives by default.
func serverCacheDir() string {
	return filepath.Dir(filepath.Dir(vulndb.DefaultPath()))
}

// openServerStore opens the store --database names.
func openServerStore(ctx context.Context, dsn string) (*sqlstore.Store, error) {
	return sqlstore.Open(ctx, dsn, sqlstore.Options{CacheDir: serverCacheDir()})
}

func newServerTokenCmd(stdout io.Writer) *cobra.Command {
	var db databaseFlag
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage bulkhead server's API tokens (in its database)",
	}
	db.add(cmd.PersistentFlags())
	var role string
	create := &cobra.Command{
		Use:   "create --role ROLE NAME",
		Short: "Create an API token and print it (only its hash is stored: it cannot be shown again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := server.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			st, err := openServerStore(cmd.Context(), db.source())
			if err != nil {
				return err
			}
			defer st.Close()
			tok, err := server.CreateToken(cmd.Context(), st, args[0], r)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, tok)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "read", "what the token may do: read, scan (also submit scans, upload, post events) or admin (also manage tokens)")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Revoke an API token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openServerStore(cmd.Context(), db.source())
			if err != nil {
				return err
			}
			defer st.Close()
			return st.DeleteToken(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(create, del)
	return cmd
}
