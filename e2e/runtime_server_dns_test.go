package e2e

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/profile"
	"github.com/bulkhead-sec/bulkhead/server"
	srvclient "github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// startRuntimeServer runs bulkhead server in this process (SQLite) and
// returns its URL and an admin token.
func startRuntimeServer(t *testing.T) (string, string) {
	dir := t.TempDir()
	db := filepath.Join(dir, "osv.db")
	if _, err := vulndb.Import(context.Background(), db, []string{filepath.Join(repoRoot, "vulndb", "testdata", "osv")}, vulndb.Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(context.Background(), filepath.Join(dir, "server.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	token := "bkh_e2e-runtime-server-token-0123456789"
	srv, err := server.New(t.Context(), server.Config{Store: st, Queue: server.QueueDB{SQLite: st.DB(), Migrate: st.MigrateRiver},
		Matcher: m, BootstrapToken: token, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL, token
}

// dnsResponder answers every query on addr with NXDOMAIN and reports the
// names asked.
func dnsResponder(t *testing.T, addr string) <-chan string {
	// The bridge gets its address when the network's first container
	// starts.
	var pc net.PacketConn
	var err error
	for range 100 {
		if pc, err = net.ListenPacket("udp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("cannot listen on %s for the test resolver: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	names := make(chan string, 256)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			select {
			case names <- q.Name.String():
			default:
			}
			h.Response, h.RCode = true, dnsmessage.RCodeNameError
			b := dnsmessage.NewBuilder(nil, h)
			b.StartQuestions()
			b.Question(q)
			if msg, err := b.Finish(); err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return names
}

func query(t *testing.T, name string) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// hostSends sends one query each with sendto, sendmsg and sendmmsg (the
// calls glibc's and musl's resolvers use) to 127.0.0.1:port.
func hostSends(t *testing.T, port int) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Sendto(fd, query(t, "host-sendto.example."), 0, to); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.SendmsgN(fd, query(t, "host-sendmsg.example."), nil, to, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, to); err != nil {
		t.Fatal(err)
	}
	msg := query(t, "host-sendmmsg.example.")
	iov := unix.Iovec{Base: &msg[0]}
	iov.SetLen(len(msg))
	type mmsghdr struct {
		hdr unix.Msghdr
		len uint32
		_   [4]byte
	}
	mm := mmsghdr{}
	mm.hdr.Iov = &iov
	mm.hdr.SetIovlen(1)
	if _, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&mm)), 1, 0, 0, 0); e != 0 {
		t.Fatal(e)
	}
}

// The sensor with --server: the learned profile (with the DNS names a
// container looked up) and the image's file list go to bulkhead server;
// after the window a new name is caught. The query is what is captured:
// busybox nslookup's write on a connected UDP socket in a container, and
// sendto, sendmsg and sendmmsg from the host.
func TestRuntimeServerDNS(t *testing.T) {
	requireSensor(t)
	img := runtimeImageRef(t)
	sock := apiSocket(t)
	imageID := "sha256:" + strings.TrimSpace(run(t, "podman", "image", "inspect", "--format", "{{.Id}}", img))
	gw := strings.TrimSpace(run(t, "podman", "network", "inspect", "podman", "--format", "{{range .Subnets}}{{.Gateway}}{{end}}"))
	url, token := startRuntimeServer(t)
	t.Setenv("BULKHEAD_TOKEN", token)
	profiles, idx := t.TempDir(), t.TempDir()
	rec := filepath.Join(t.TempDir(), "events.jsonl")
	const window = 8 * time.Second
	s := startSensor(t, sock, "--server", url, "--profiles", profiles, "--learn-window", window.String(), "--drift", "--image-index", idx, "--record", rec)

	name := "rt-dns"
	runErr("podman", "rm", "-f", "-t0", name)
	t.Cleanup(func() { runErr("podman", "rm", "-f", "-t0", name) })
	run(t, "podman", "run", "-d", "--name", name, img, "sh", "-c", "while true; do /bin/busybox nslookup learn.example.com "+gw+" >/dev/null 2>&1; /bin/sleep 1; done")
	names := dnsResponder(t, net.JoinHostPort(gw, "53"))
	hostSends(t, 53)
	time.Sleep(window + 4*time.Second)
	podmanExec(t, name, "/bin/busybox nslookup new.example.com "+gw)
	time.Sleep(2 * time.Second)
	alerts := s.stop(t)

	got := alertsOf(alerts, name, "Unexpected DNS lookup")
	for _, a := range got {
		t.Logf("%s", a.Output)
	}
	if len(got) != 1 || got[0].field("profile.item") != "new.example.com" || got[0].field("profile.image") != imageID {
		t.Errorf("DNS alerts: %+v", got)
	}
	for _, a := range alertsOf(alerts, name, "Unexpected") {
		if a.field("profile.item") != "new.example.com" {
			t.Errorf("the repeated lookups raised %s: %s", a.Rule, a.Output)
		}
	}
	asked := map[string]bool{}
	for len(names) > 0 {
		asked[<-names] = true
	}
	if !asked["learn.example.com."] || !asked["new.example.com."] {
		t.Errorf("the test resolver was not asked: %v", asked)
	}

	// The recording: each way of sending a query carries its name.
	f, err := os.Open(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]string{}
	r := event.NewReader(bufio.NewReader(f), rec, 1<<20)
	for {
		var ev event.Event
		if err := r.Next(&ev); err != nil {
			break
		}
		if q, ok := ev.Args.Get("query"); ok {
			seen[q] = ev.Type
		}
	}
	for q, typ := range map[string]string{"host-sendto.example": "sendto", "host-sendmsg.example": "sendmsg", "host-sendmmsg.example": "sendmmsg", "learn.example.com": "write"} {
		if seen[q] != typ {
			t.Errorf("query %s: recorded as %q, want %s (all: %v)", q, seen[q], typ, seen)
		}
	}

	// The server holds the profile (enforcing, with the name) and the
	// file list --drift built from the podman socket.
	c, err := srvclient.New(url, srvclient.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Profile(context.Background(), imageID)
	if err != nil {
		t.Fatal(err)
	}
	if p.State != profile.Enforcing || !contains(p.DNS, "learn.example.com") || contains(p.DNS, "new.example.com") || !contains(p.Executables, "/bin/busybox") {
		t.Errorf("server's profile: %+v", p)
	}
	ix, err := c.FileList(context.Background(), imageID)
	if err != nil {
		t.Fatalf("server's file list: %v\n%s", err, s.stderr)
	}
	if _, ok := ix.Files["/bin/busybox"]; !ok {
		t.Errorf("server's file list lacks /bin/busybox: %d files", len(ix.Files))
	}
	if _, err := profile.Load(profile.File(profiles, imageID)); err != nil {
		t.Errorf("no local copy of the profile: %v", err)
	}
}
