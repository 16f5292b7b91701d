package cli

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/profile"
	srvclient "github.com/bulkhead-sec/bulkhead/server/client"
)

// TestRuntimeIndexServer: `runtime index --server` puts the image's file
// list in the server (and a local copy), and the server store the sensor
// uses reads it back; a wrong token is refused with the reason.
func TestRuntimeIndexServer(t *testing.T) {
	url, token, _ := startServer(t)
	dir := writeLayout(t, vulnerableImage(t))
	local := t.TempDir()
	t.Setenv("BULKHEAD_TOKEN", token)
	var out, errb bytes.Buffer
	if code := Main([]string{"runtime", "index", "--server", url, "--image-index", local, "oci:" + dir}, &out, &errb); code != 0 {
		t.Fatalf("runtime index --server: exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), url+" (/api/v1/runtime/filelists/sha256:") {
		t.Fatalf("output does not name the server: %s", out.String())
	}
	id := strings.TrimSuffix(strings.Fields(out.String()[strings.Index(out.String(), "/filelists/")+len("/filelists/"):])[0], ")")
	c, err := srvclient.New(url, srvclient.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := c.FileList(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.Files["/usr/lib/node_modules/json-bigint/package.json"]; !ok || len(ix.Files) != 3 {
		t.Fatalf("server's file list: %+v", ix.Files)
	}
	f := serverClientFlags{url: url}
	st, err := f.indexStore(local, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.Load(id); err != nil || len(got.Files) != 3 {
		t.Fatalf("Load through the server: %v", err)
	}
	t.Setenv("BULKHEAD_TOKEN", "bkh_wrong-token-0123456789")
	errb.Reset()
	if code := Main([]string{"runtime", "index", "--server", url, "--image-index", local, "oci:" + dir}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "401") {
		t.Fatalf("a wrong token: exit %d: %s", code, errb.String())
	}
}

// TestRuntimeProfilesServer: the learner with --server's store learns into
// the server; a later learner (another node) loads it from there and
// enforces it; without the server reachable the local copy is used.
func TestRuntimeProfilesServer(t *testing.T) {
	url, token, _ := startServer(t)
	local := t.TempDir()
	var errb bytes.Buffer
	f := serverClientFlags{url: url, token: token}
	st, err := f.profileStore(local, &errb)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	id := "sha256:" + strings.Repeat("ab", 32)
	ev := func(exe string) *event.Event {
		return &event.Event{Type: "execve", Proc: event.Process{ExePath: exe, Name: "x"}, Container: &event.Container{ID: "c1", Name: "web", ImageID: id}}
	}
	l := profile.New(profile.Options{Dir: local, Window: time.Minute, Now: clock, Store: st, Stderr: &errb})
	l.Enrich(ev("/usr/bin/app"))
	l.Close()
	c, _ := srvclient.New(url, srvclient.Options{Token: token})
	p, err := c.Profile(context.Background(), id)
	if err != nil || len(p.Executables) != 1 || p.Executables[0] != "/usr/bin/app" {
		t.Fatalf("server's profile = %+v, %v\n%s", p, err, errb.String())
	}
	if _, err := profile.Load(profile.File(local, id)); err != nil {
		t.Fatalf("no local copy: %v", err)
	}
	// Another node, after the window: loads from the server, enforces.
	now = now.Add(2 * time.Minute)
	st2, _ := (&serverClientFlags{url: url, token: token}).profileStore(t.TempDir(), &errb)
	l2 := profile.New(profile.Options{Window: time.Minute, Now: clock, Store: st2, Stderr: &errb})
	e := ev("/usr/bin/app")
	l2.Enrich(e)
	if e.Profile == nil || e.Profile.Unexpected || e.Profile.State != profile.Enforcing {
		t.Fatalf("known exec: %+v\n%s", e.Profile, errb.String())
	}
	e = ev("/tmp/x")
	l2.Enrich(e)
	if e.Profile == nil || !e.Profile.Unexpected {
		t.Fatalf("new exec not unexpected: %+v", e.Profile)
	}
	// The server unreachable: the local copy.
	dead := serverClientFlags{url: "http://127.0.0.1:1", token: token}
	st3, _ := dead.profileStore(local, &errb)
	if p, err := st3.Load(id); err != nil || p.Image != id || !strings.Contains(errb.String(), "using the local copy") {
		t.Fatalf("fallback: %v, %v\n%s", p, err, errb.String())
	}
	if _, err := st3.Load("sha256:" + strings.Repeat("cd", 32)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("fallback without a local copy: %v", err)
	}
}
