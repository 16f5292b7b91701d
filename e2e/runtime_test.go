package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/sensor"
)

// The runtime acceptance: `bulkhead runtime` (a subprocess, as root, with
// the bundled stable Falco rules) watches real podman containers doing what
// the event-generator suite (../shared/corpus/falco/e2e-evtgen-suite) does,
// and each action must raise the suite's expected rule with the
// container's id and name in the alert; a quiet container raises nothing.

const runtimeImage = "localhost/bulkhead-runtime-e2e:1"

// packetProg opens an AF_PACKET socket, as the suite's eg_packet does.
const packetProg = `package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socket:", err)
		os.Exit(1)
	}
	syscall.Close(fd)
}
`

func requireSensor(t *testing.T) {
	t.Helper()
	requireEnv(t)
	if err := sensor.Supported(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// runtimeImageRef builds (once per machine) a busybox image with the
// binaries the actions need: busybox applets, a copy of busybox named
// debugfs, and eg_packet, a static Go program.
func runtimeImageRef(t *testing.T) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if imageExists(runtimeImage) {
		return runtimeImage
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(packetProg), 0o644)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module egpacket\n\ngo 1.21\n"), 0o644)
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "etc", "tmp", "var/log", "root"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	cmd := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "eg_packet"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build eg_packet: %v\n%s", err, out)
	}
	copyFile(t, "/bin/busybox", filepath.Join(root, "bin", "busybox"), 0o755)
	copyFile(t, "/bin/busybox", filepath.Join(root, "bin", "debugfs"), 0o755)
	for _, a := range []string{"sh", "cat", "nc", "sleep", "ln", "shred", "find", "grep", "cp", "true", "echo", "chmod", "ls", "rm"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "shadow"), []byte("root:*:19000:0:99999:7:::\n"), 0o600)
	os.WriteFile(filepath.Join(root, "var", "log", "syslog"), []byte("old log line\n"), 0o640)
	tarPath := filepath.Join(dir, "rootfs.tar")
	run(t, "tar", "-C", root, "-cf", tarPath, ".")
	run(t, "podman", "import", "-q", "--change", "ENV PATH=/bin", tarPath, runtimeImage)
	return runtimeImage
}

// bulkheadBinary builds the CLI once per test binary run.
var bulkheadBin string

func buildBulkhead(t *testing.T) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bulkheadBin != "" {
		return bulkheadBin
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("bulkhead-e2e-%d", os.Getpid()))
	cmd := exec.Command("go", "build", "-o", out, "./cmd/bulkhead")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build bulkhead: %v\n%s", err, b)
	}
	bulkheadBin = out
	return out
}

// apiSocket starts podman's Docker-compatible API on a private socket,
// where the sensor asks for container names, images and privilege.
func apiSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "podman.sock")
	cmd := exec.Command("podman", "system", "service", "--time=0", "unix://"+sock)
	if err := cmd.Start(); err != nil {
		t.Fatalf("podman system service: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("podman's API socket did not appear")
	return ""
}

// sensorRun is a running `bulkhead runtime`.
type sensorRun struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	alerts string
	done   chan error
}

func startSensor(t *testing.T, sock string, extra ...string) *sensorRun {
	t.Helper()
	bin := buildBulkhead(t)
	dir := t.TempDir()
	s := &sensorRun{alerts: filepath.Join(dir, "alerts.json"), stderr: &strings.Builder{}, done: make(chan error, 1)}
	args := append([]string{"runtime", "--format", "json", "--output", s.alerts, "--rule-matching", "all"}, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), "CONTAINER_HOST=unix://"+sock)
	pr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.stderr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "sensor running") {
				ready <- true
			}
		}
		s.done <- s.cmd.Wait()
	}()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	select {
	case <-ready:
	case err := <-s.done:
		t.Fatalf("bulkhead runtime exited: %v\n%s", err, s.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("bulkhead runtime did not start\n%s", s.stderr)
	}
	return s
}

// stop interrupts the sensor and returns its alerts.
func (s *sensorRun) stop(t *testing.T) []alert {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("bulkhead runtime: %v\n%s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bulkhead runtime did not stop\n%s", s.stderr)
	}
	t.Logf("sensor: %s", strings.TrimSpace(s.stderr.String()))
	return readAlerts(t, s.alerts)
}

type alert struct {
	Rule         string         `json:"rule"`
	Priority     string         `json:"priority"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
}

func (a alert) field(name string) string {
	if v, ok := a.OutputFields[name]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func readAlerts(t *testing.T, path string) []alert {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []alert
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var a alert
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("alert line %q: %v", line, err)
		}
		out = append(out, a)
	}
	return out
}

// podmanRun runs a container to completion (not removed until cleanup,
// so its id can be read) and returns its full id.
func podmanRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	runErr("podman", "rm", "-f", name)
	t.Cleanup(func() { runErr("podman", "rm", "-f", name) })
	full := append([]string{"run", "--network=none", "--name", name}, args...)
	if _, err := runErr("podman", full...); err != nil {
		t.Logf("%s: %v", name, err) // the actions may fail by design (nc to a closed port)
	}
	id := strings.TrimSpace(run(t, "podman", "inspect", "--format", "{{.Id}}", name))
	return id
}

func TestRuntimeStableRulesInContainers(t *testing.T) {
	requireSensor(t)
	img := runtimeImageRef(t)
	sock := apiSocket(t)
	s := startSensor(t, sock)

	type action struct {
		name string   // container name
		args []string // podman run flags, image and command
		rule string   // the suite's expected rule
	}
	actions := []action{
		// run_shell / terminal shell: a shell with a tty in a container.
		{"rt-terminal-shell", []string{"-t", img, "sh", "-c", "true; true"}, "Terminal shell in container"},
		// read_sensitive_file_untrusted
		{"rt-read-shadow", []string{img, "cat", "/etc/shadow"}, "Read sensitive file untrusted"},
		// netcat_remote_code_execution_in_container (nc -e)
		// Commands in the scripts are given by path: busybox's sh runs a
		// bare applet name in-process, without the execve the rules see.
		{"rt-netcat", []string{img, "sh", "-c", "/bin/nc -w1 127.0.0.1 9 -e /bin/sh; true"}, "Netcat Remote Code Execution in Container"},
		// redirect_stdout_stdin_to_network_connection_in_container
		{"rt-redirect", []string{img, "sh", "-c", "/bin/nc -l -p 4444 >/dev/null & /bin/sleep 1; /bin/nc -w2 127.0.0.1 4444 -e /bin/true; true"},
			"Redirect STDOUT/STDIN to Network Connection in Container"},
		// packet_socket_created_in_container
		{"rt-packet", []string{"--cap-add", "NET_RAW", img, "eg_packet"}, "Packet socket created in container"},
		// debugfs_launched_in_privileged_container
		{"rt-debugfs", []string{"--privileged", img, "sh", "-c", "debugfs -V; true"}, "Debugfs Launched in Privileged Container"},
		// clear_log_activities (an O_TRUNC write below /var/log)
		{"rt-clear-log", []string{img, "sh", "-c", "echo > /var/log/syslog"}, "Clear Log Activities"},
		// create_symlink_over_sensitive_files
		{"rt-symlink", []string{img, "ln", "-s", "/etc/shadow", "/tmp/shadow-link"}, "Create Symlink Over Sensitive Files"},
		// remove_bulk_data_from_disk
		{"rt-shred", []string{img, "sh", "-c", "echo data > /tmp/f; /bin/shred -u /tmp/f"}, "Remove Bulk Data from Disk"},
		// drop_and_execute_new_binary_in_container (a binary written in the
		// container's upper layer, then run)
		{"rt-drop-exec", []string{img, "sh", "-c", "cp /bin/busybox /tmp/dropped; /tmp/dropped true; true"}, "Drop and execute new binary in container"},
		// search_private_keys_or_passwords
		{"rt-find-keys", []string{img, "find", "/root", "-name", "id_rsa"}, "Search Private Keys or Passwords"},
	}
	ids := map[string]string{}
	for _, a := range actions {
		ids[a.name] = podmanRun(t, a.name, a.args...)
	}
	// The quiet container: sleep, nothing else.
	quiet := "rt-quiet"
	ids[quiet] = podmanRun(t, quiet, img, "sleep", "3")
	time.Sleep(2 * time.Second)
	alerts := s.stop(t)

	byContainer := map[string][]alert{}
	for _, a := range alerts {
		if n := a.field("container.name"); strings.HasPrefix(n, "rt-") {
			byContainer[n] = append(byContainer[n], a)
		}
	}
	for _, a := range actions {
		t.Run(a.name, func(t *testing.T) {
			var rules []string
			found := false
			for _, al := range byContainer[a.name] {
				rules = append(rules, al.Rule)
				if al.Rule != a.rule {
					continue
				}
				found = true
				if got, want := al.field("container.id"), ids[a.name][:12]; got != want {
					t.Errorf("%s: container.id %q, want %q", a.rule, got, want)
				}
				if !strings.Contains(al.Output, "container_id="+ids[a.name][:12]) || !strings.Contains(al.Output, "container_name="+a.name) {
					t.Errorf("%s: output does not name the container: %s", a.rule, al.Output)
				}
				if got := al.field("container.image.repository"); got != strings.Split(img, ":")[0] {
					t.Errorf("%s: container.image.repository %q, want %q", a.rule, got, strings.Split(img, ":")[0])
				}
			}
			if !found {
				sort.Strings(rules)
				t.Errorf("no %q alert for container %s; its alerts: %q", a.rule, a.name, rules)
			}
		})
	}
	if q := byContainer[quiet]; len(q) > 0 {
		t.Errorf("the quiet container raised %d alerts, first: %s", len(q), q[0].Output)
	}
}

// TestRuntimeRecordReplay records the live event stream while a container
// reads /etc/shadow, replays the recording through `bulkhead runtime
// replay`, and expects the same alerts for the container.
func TestRuntimeRecordReplay(t *testing.T) {
	requireSensor(t)
	img := runtimeImageRef(t)
	sock := apiSocket(t)
	rec := filepath.Join(t.TempDir(), "events.jsonl")
	s := startSensor(t, sock, "--record", rec)
	id := podmanRun(t, "rt-record", img, "sh", "-c", "cat /etc/shadow; ln -s /etc/shadow /tmp/l")
	time.Sleep(time.Second)
	live := s.stop(t)

	out := filepath.Join(t.TempDir(), "replay.json")
	stdout, stderr, code := bulkhead("runtime", "replay", rec, "--format", "json", "--output", out, "--rule-matching", "all")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s%s", code, stdout, stderr)
	}
	replayed := readAlerts(t, out)
	key := func(as []alert) []string {
		var ks []string
		for _, a := range as {
			if a.field("container.name") == "rt-record" {
				ks = append(ks, a.Rule+" "+a.field("container.id")+" "+a.field("fd.name")+" "+a.field("proc.cmdline"))
			}
		}
		sort.Strings(ks)
		return ks
	}
	lk, rk := key(live), key(replayed)
	if len(lk) < 2 {
		t.Fatalf("live run raised %d alerts for the container, want the shadow read and the symlink: %q", len(lk), lk)
	}
	if strings.Join(lk, "\n") != strings.Join(rk, "\n") {
		t.Errorf("replay differs from the live run:\nlive:   %q\nreplay: %q", lk, rk)
	}
	for _, k := range lk {
		if !strings.Contains(k, id[:12]) {
			t.Errorf("alert without the container id %s: %s", id[:12], k)
		}
	}
}
