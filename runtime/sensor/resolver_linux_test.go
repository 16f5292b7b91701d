//go:build linux && amd64

package sensor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// The drift detector's resolver, on a real podman container: through the
// API socket (a missing socket before it is passed over) it gives the
// image id and the first process's pid by the events' 12-hex id, the pid
// being one whose root holds the image's files; with no socket, podman's
// store still gives the image id; an unknown container gives nothing.
func TestResolverPodman(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	img := triggerImage(t)
	sock := apiSocket(t)
	const name = "bulkhead-resolver-test"
	exec.Command("podman", "rm", "-f", "-t0", name).Run()
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", "-t0", name).Run() })
	full := sh(t, "podman", "run", "-d", "--network=none", "--name", name, img, "sleep", "60")
	wantImage := "sha256:" + sh(t, "podman", "inspect", "--format", "{{.Image}}", full)
	wantPid, err := strconv.ParseInt(sh(t, "podman", "inspect", "--format", "{{.State.Pid}}", full), 10, 64)
	if err != nil || wantPid <= 1 {
		t.Fatalf("podman's pid: %d %v", wantPid, err)
	}
	short := full[:12]

	absent := filepath.Join(t.TempDir(), "absent.sock")
	r := NewResolver([]string{absent, sock})
	if got := r.Socket(); got != sock {
		t.Errorf("Socket() = %q, want %q", got, sock)
	}
	if got := r.ImageID(short); got != wantImage {
		t.Errorf("ImageID(%s) = %q, want %q", short, got, wantImage)
	}
	pid := r.InitPID(short)
	if pid != wantPid {
		t.Errorf("InitPID(%s) = %d, want %d", short, pid, wantPid)
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.FormatInt(pid, 10), "root", "bin", "trigger")); err != nil {
		t.Errorf("the image's file through the first process's root: %v", err)
	}

	store := filepath.Join(sh(t, "podman", "info", "--format", "{{.Store.GraphRoot}}"), "overlay-containers", "containers.json")
	noSock := NewResolver([]string{absent})
	noSock.podmanDB = store
	if got := noSock.Socket(); got != "" {
		t.Errorf("Socket() with no socket = %q", got)
	}
	if got := noSock.ImageID(short); got != wantImage {
		t.Errorf("ImageID(%s) from podman's store %s = %q, want %q", short, store, got, wantImage)
	}
	if got := noSock.InitPID(short); got != 0 {
		t.Errorf("InitPID(%s) with no socket = %d, want 0", short, got)
	}

	if id, pid := r.ImageID("0123456789ab"), r.InitPID("0123456789ab"); id != "" || pid != 0 {
		t.Errorf("an unknown container: %q %d", id, pid)
	}
}
