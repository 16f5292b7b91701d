package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/profile"
)

// startContainer starts a long-running container (removed at cleanup)
// and returns its id.
func startContainer(t *testing.T, name string, args ...string) string {
	t.Helper()
	runErr("podman", "rm", "-f", "-t0", name)
	t.Cleanup(func() { runErr("podman", "rm", "-f", "-t0", name) })
	return strings.TrimSpace(run(t, "podman", append([]string{"run", "-d", "--network=none", "--name", name}, args...)...))
}

func podmanExec(t *testing.T, name, script string) {
	t.Helper()
	if out, err := runErr("podman", "exec", name, "sh", "-c", script); err != nil {
		t.Logf("exec in %s: %v %s", name, err, out) // the commands may fail by design
	}
}

func alertsOf(alerts []alert, container, rulePrefix string) []alert {
	var out []alert
	for _, a := range alerts {
		if a.field("container.name") == container && strings.HasPrefix(a.Rule, rulePrefix) {
			out = append(out, a)
		}
	}
	return out
}

func fileSHA256(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Drift: a container copies in a binary and runs it, another overwrites an
// image binary and runs it; both are named with the path, hash, image and
// writer. Binaries that shipped in the image give nothing; a package
// manager is caught.
func TestRuntimeDrift(t *testing.T) {
	requireSensor(t)
	img := runtimeImageRef(t)
	sock := apiSocket(t)
	bin := buildBulkhead(t)
	imageID := "sha256:" + strings.TrimSpace(run(t, "podman", "image", "inspect", "--format", "{{.Id}}", img))

	idx := t.TempDir()
	out := run(t, "env", "CONTAINER_HOST=unix://"+sock, bin, "runtime", "index", "--image-index", idx, "podman:"+img)
	if !strings.Contains(out, imageID) {
		t.Fatalf("runtime index: %s (want image %s)", out, imageID)
	}
	s := startSensor(t, sock, "--drift", "--image-index", idx, "--drift-auto-index=false")

	for _, n := range []string{"rt-drift-shipped", "rt-drift-dropped", "rt-drift-modified", "rt-drift-pkg"} {
		startContainer(t, n, img, "sleep", "60")
	}
	time.Sleep(time.Second) // the sensor sees each container and loads the image's file list
	podmanExec(t, "rt-drift-shipped", "/bin/busybox true; /bin/eg_packet; /bin/debugfs -V; true")
	podmanExec(t, "rt-drift-dropped", "cp /bin/busybox /tmp/dropped; /tmp/dropped true")
	podmanExec(t, "rt-drift-modified", "cp /bin/debugfs /bin/eg_packet; /bin/eg_packet true")
	podmanExec(t, "rt-drift-pkg", "ln -s /bin/busybox /tmp/dpkg; /tmp/dpkg -l; true")
	time.Sleep(2 * time.Second)
	alerts := s.stop(t)

	if d := alertsOf(alerts, "rt-drift-shipped", "Drift"); len(d) > 0 {
		t.Errorf("binaries shipped in the image raised drift: %s", d[0].Output)
	}
	busybox := fileSHA256(t, "/bin/busybox") // the image's busybox is this file
	check := func(container, path, reason string) {
		t.Helper()
		d := alertsOf(alerts, container, "Drift - executable not from the image")
		if len(d) != 1 {
			t.Fatalf("%s: %d drift alerts, want 1: %v", container, len(d), d)
		}
		a := d[0]
		for field, want := range map[string]string{"drift.path": path, "drift.sha256": busybox, "drift.reason": reason,
			"container.image.id": imageID, "drift.writer.name": "cp"} {
			if got := a.field(field); got != want {
				t.Errorf("%s: %s = %q, want %q\n%s", container, field, got, want, a.Output)
			}
		}
		if !strings.Contains(a.Output, "path="+path) || !strings.Contains(a.Output, busybox) || !strings.Contains(a.Output, imageID) {
			t.Errorf("%s: output does not name the path, hash and image: %s", container, a.Output)
		}
		t.Logf("%s: %s", container, a.Output)
	}
	check("rt-drift-dropped", "/tmp/dropped", "not_in_image")
	check("rt-drift-modified", "/bin/eg_packet", "modified")
	if p := alertsOf(alerts, "rt-drift-pkg", "Package manager run in container"); len(p) != 1 || p[0].field("proc.name") != "dpkg" {
		t.Errorf("package manager: %v", p)
	}
	if d := alertsOf(alerts, "rt-drift-pkg", "Drift"); len(d) > 0 {
		t.Errorf("a symlink to an image binary raised drift: %s", d[0].Output)
	}
}

// Learned behaviour: a workload's round during a short learning window,
// repeated after it, gives no alert; a new destination and a new
// executable are each caught. (The 10-minute case is the same
// mechanism with --learn-window 10m; see the report.)
func TestRuntimeLearnedBehaviour(t *testing.T) {
	requireSensor(t)
	img := runtimeImageRef(t)
	sock := apiSocket(t)
	imageID := "sha256:" + strings.TrimSpace(run(t, "podman", "image", "inspect", "--format", "{{.Id}}", img))
	profiles, idx := t.TempDir(), t.TempDir()
	const window = 6 * time.Second
	s := startSensor(t, sock, "--profiles", profiles, "--learn-window", window.String(), "--drift", "--image-index", idx)

	// The round: listen on 8080, connect to it, write a file outside /tmp.
	round := "while true; do /bin/nc -l -p 8080 >/dev/null & /bin/sleep 0.2; echo hi | /bin/nc -w1 127.0.0.1 8080; " +
		"echo line >> /var/log/app.log; /bin/sleep 0.3; done"
	startContainer(t, "rt-learn", img, "sh", "-c", round)
	time.Sleep(window + 8*time.Second) // learn, then repeat the round after the window
	podmanExec(t, "rt-learn", "/bin/nc -l -p 4444 >/dev/null & /bin/sleep 0.3; echo x | /bin/nc -w1 127.0.0.1 4444; /bin/debugfs -V; true")
	time.Sleep(2 * time.Second)
	alerts := s.stop(t)

	got := map[string]string{}
	for _, a := range alertsOf(alerts, "rt-learn", "Unexpected") {
		got[a.Rule] = a.field("profile.item")
		t.Logf("%s", a.Output)
		if a.field("profile.image") != imageID {
			t.Errorf("%s: profile.image %q, want %q", a.Rule, a.field("profile.image"), imageID)
		}
		switch a.field("profile.item") {
		case "127.0.0.1:4444/tcp", "4444/tcp", "/bin/debugfs":
		default:
			t.Errorf("the repeated round raised %s: %s", a.Rule, a.Output)
		}
	}
	if got["Unexpected outbound connection (learned profile)"] != "127.0.0.1:4444/tcp" {
		t.Errorf("new destination not caught: %v", got)
	}
	if got["Unexpected executable (learned profile)"] != "/bin/debugfs" {
		t.Errorf("new executable not caught: %v", got)
	}
	if a := alertsOf(alerts, "rt-learn", "Unexpected outbound"); len(a) > 0 && !strings.Contains(a[0].Output, "Unexpected outbound connection from rt-learn (image "+imageID+") to 127.0.0.1:4444/tcp") {
		t.Errorf("output: %s", a[0].Output)
	}

	p, err := profile.Load(profile.File(profiles, imageID))
	if err != nil {
		t.Fatal(err)
	}
	if p.State != profile.Enforcing || !contains(p.Executables, "/bin/busybox") || !contains(p.Outbound, "127.0.0.1:8080/tcp") ||
		!contains(p.Listening, "8080/tcp") || !contains(p.Writes, "/var/log/app.log") {
		t.Errorf("learned profile: %+v", p)
	}
	// --drift with an empty index directory built the image's file list
	// from the podman socket.
	if _, err := os.Stat(filepath.Join(idx, strings.Replace(imageID, ":", "-", 1)+".json.gz")); err != nil {
		t.Errorf("auto index: %v\n%s", err, s.stderr)
	}
}
