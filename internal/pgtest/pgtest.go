// Package pgtest starts Debian's PostgreSQL (the postgresql package) for
// tests: one server per test binary, in a temporary directory with a unix
// socket and no TCP port, and a fresh database for each test.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//	func TestX(t *testing.T) { dsn := pgtest.DSN(t); ... }
//
// The server starts on the first DSN call (a run that selects no
// PostgreSQL test starts nothing) and stops when Main returns. As root, it
// runs as the postgres user. Without PostgreSQL installed the tests skip,
// except with CI=true, where they fail and say what to install.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDirEnv overrides where the PostgreSQL programs are looked for.
const BinDirEnv = "BULKHEAD_PG_BINDIR"

const install = "install Debian's postgresql package (apt-get install postgresql; scripts/setup-test-env.sh does it)"

type server struct {
	bin, dir, data, sock, log string
	cred                      *syscall.Credential
	uid, gid                  int
	cmd                       *exec.Cmd
	done                      chan error
}

var (
	once    sync.Once
	mu      sync.Mutex
	srv     *server
	srvErr  error
	missing bool
	dbs     atomic.Int64
)

// Main runs the tests and then stops the server, if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the server and removes its directory (Main calls it).
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if srv != nil {
		srv.stop()
		os.RemoveAll(srv.dir)
		srv = nil
	}
}

// BinDir finds the PostgreSQL programs: $BULKHEAD_PG_BINDIR, else the
// newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(found) == 0 {
		return "", errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres)")
	}
	ver := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	slices.SortFunc(found, func(a, b string) int { return ver(b) - ver(a) })
	return filepath.Dir(found[0]), nil
}

// DSN returns the DSN of a new, empty database for this test.
func DSN(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		bin, err := BinDir()
		if err != nil {
			missing, srvErr = true, err
			return
		}
		s, err := start(bin)
		mu.Lock()
		srv, srvErr = s, err
		mu.Unlock()
	})
	if missing {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v: %s", srvErr, install)
		}
		t.Skipf("pgtest: %v: %s to run the PostgreSQL tests", srvErr, install)
	}
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, srv.dsn("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return srv.dsn(name)
}

func (s *server) dsn(db string) string {
	return "postgres:///" + db + "?host=" + url.QueryEscape(s.sock) + "&user=postgres&sslmode=disable"
}

func start(bin string) (*server, error) {
	base := os.TempDir()
	s := &server{bin: bin, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		// initdb refuses root: run as postgres, in a directory it can reach.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and there is no postgres user: %v (%s)", err, install)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "bulkhead-pgtest-")
	if err != nil {
		return nil, err
	}
	s.dir, s.data, s.sock, s.log = dir, filepath.Join(dir, "data"), filepath.Join(dir, "sock"), filepath.Join(dir, "log")
	for _, d := range []string{s.data, s.sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if s.cred != nil {
		for _, d := range []string{dir, s.data, s.sock} {
			if err := os.Chown(d, s.uid, s.gid); err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := s.run(); err != nil {
		s.stop()
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// run starts postgres on the data directory and waits until it answers.
func (s *server) run() error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// fsync off: the tests crash processes, not the machine.
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data, "-k", s.sock,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Quit at once if the test binary dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %v", err)
	}
	s.cmd, s.done = cmd, make(chan error, 1)
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err == nil {
			c.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case werr := <-s.done:
			s.done <- werr
			return fmt.Errorf("postgres exited: %v\n%s", werr, s.tail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not answer in 60s: %v\n%s", err, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Crash kills the server with SIGKILL, as a power cut would leave it
// minus the OS cache, and starts it again on the same data directory:
// PostgreSQL replays its WAL.
func Crash(t testing.TB) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if srv == nil || srv.cmd == nil {
		t.Fatal("pgtest: Crash before DSN")
	}
	pid := srv.cmd.Process.Pid
	srv.cmd.Process.Kill()
	<-srv.done
	srv.cmd = nil
	// The backends exit when they notice the postmaster is gone; the new
	// postmaster refuses to start while they hold the shared memory.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := srv.run()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "postgres exited") {
			t.Fatalf("pgtest: restart after killing postgres (pid %d): %v", pid, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
