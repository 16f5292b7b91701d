//go:build linux && amd64

package sensor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	"github.com/bulkhead-sec/bulkhead/runtime/rules"
)

// These tests run the sensor with the stable rules while real podman
// containers do real things (root and podman needed; CI has both).

func requirePodman(t *testing.T) {
	t.Helper()
	err := Supported()
	if err == nil {
		_, err = exec.LookPath("podman")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// triggerImage imports a busybox image holding testdata/trigger, built
// static, as /bin/trigger.
func triggerImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	build := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "trigger"), "./testdata/trigger")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the trigger: %v\n%s", err, out)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755)
	for _, a := range []string{"sh", "sleep", "cat", "true"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	img := "localhost/bulkhead-sensor-test:1"
	tar := filepath.Join(dir, "root.tar")
	sh(t, "tar", "-C", root, "-cf", tar, ".")
	sh(t, "podman", "import", "-q", "--change", "ENV PATH=/bin", tar, img)
	return img
}

// apiSocket serves podman's API on a private socket, where the sensor
// reads container names, labels and pods.
func apiSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "podman.sock")
	cmd := exec.Command("podman", "system", "service", "--time=0", "unix://"+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("podman's API socket did not appear")
	return ""
}

type seen struct {
	rule   string
	output string
	fields map[string]any
	ct     event.Container
	proc   event.Process
}

// watch runs the sensor with the stable rules plus extra (YAML) until
// stop, and returns the alerts and exec events by 12-hex container id.
func watch(t *testing.T, sock, extra string) (stop func() (alerts, execs map[string][]seen)) {
	t.Helper()
	return watchWith(t, Options{Sockets: []string{sock}, CRISockets: []string{}}, extra)
}

// watchWith is watch with the sensor's metadata options.
func watchWith(t *testing.T, opts Options, extra string) (stop func() (alerts, execs map[string][]seen)) {
	t.Helper()
	l := rules.NewLoader(rules.WithHostname("node-1"))
	if err := l.Load(DefaultRulesName, DefaultRules); err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		if err := l.Load("extra.yaml", []byte(extra)); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := l.Ruleset()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range rs.Active() {
		types = append(types, r.EventTypes()...)
	}
	opts.Types, opts.Env = append(types, "procexit"), true
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	m := rs.Matcher()
	var mu sync.Mutex
	alerts, execs := map[string][]seen{}, map[string][]seen{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(ev *event.Event) {
			if ev.Container == nil {
				return
			}
			id := ev.Container.ID
			mu.Lock()
			defer mu.Unlock()
			p := ev.Proc
			p.Ancestors = nil
			if ev.Type == "execve" || ev.Type == "execveat" {
				execs[id] = append(execs[id], seen{ct: *ev.Container, proc: p})
			}
			for _, r := range m.Match(ev) {
				a := m.Alert(r, ev)
				alerts[id] = append(alerts[id], seen{rule: r.Name, output: a.Output, fields: a.OutputFields, ct: *ev.Container, proc: p})
			}
		})
	}()
	return func() (map[string][]seen, map[string][]seen) {
		time.Sleep(500 * time.Millisecond)
		cancel()
		<-done
		s.Close()
		mu.Lock()
		defer mu.Unlock()
		return alerts, execs
	}
}

// run runs a container to completion and returns its short id and output.
func run(t *testing.T, name string, args ...string) (id, out string) {
	t.Helper()
	exec.Command("podman", "rm", "-f", name).Run()
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", name).Run() })
	b, err := exec.Command("podman", append([]string{"run", "--network=none", "--name", name}, args...)...).CombinedOutput()
	t.Logf("%s: %s (exit: %v)", name, strings.TrimSpace(string(b)), err)
	return sh(t, "podman", "inspect", "--format", "{{.Id}}", name)[:12], string(b)
}

func rulesOf(ss []seen) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.rule)
	}
	return out
}

func find(ss []seen, rule string) *seen {
	for i := range ss {
		if ss[i].rule == rule {
			return &ss[i]
		}
	}
	return nil
}

// TestTriggersInContainers: the ptrace, memfd and kernel-module rules
// fire on real triggers in real containers; proc.env, proc.sid and
// proc.vpgid are filled.
func TestTriggersInContainers(t *testing.T) {
	requirePodman(t)
	img := triggerImage(t)
	sock := apiSocket(t)
	stop := watch(t, sock, "")
	ptraceID, _ := run(t, "bh-ptrace", img, "trigger", "ptrace")
	memfdID, _ := run(t, "bh-memfd", img, "trigger", "memfd")
	kmodID, kmodOut := run(t, "bh-kmod", "--cap-add", "SYS_MODULE", img, "trigger", "kmod")
	alerts, execs := stop()

	if a := find(alerts[ptraceID], "PTRACE attached to process"); a == nil {
		t.Errorf("no ptrace alert; the container's alerts: %q", rulesOf(alerts[ptraceID]))
	} else if a.proc.Name != "trigger" || !strings.Contains(a.output, "command=trigger ptrace") {
		t.Errorf("ptrace alert: %s", a.output)
	}
	if a := find(alerts[memfdID], "Fileless execution via memfd_create"); a == nil {
		t.Errorf("no memfd alert; the container's alerts: %q", rulesOf(alerts[memfdID]))
	} else if !a.proc.IsExeFromMemfd || !strings.Contains(a.output, "EXE_FROM_MEMFD") {
		t.Errorf("memfd alert: %s", a.output)
	}
	// The rule has no evt.res condition: the attempt is what it catches,
	// whether or not the kernel loads the (bogus) module.
	var kmodRes []string
	for _, a := range alerts[kmodID] {
		if a.rule == "Linux Kernel Module Injection Detected" {
			if v, ok := a.fields["evt.res"]; ok {
				kmodRes = append(kmodRes, a.fields["evt.type"].(string)+"="+v.(string))
			}
		}
	}
	t.Logf("kernel module injection alerts: %v; the trigger said: %s", kmodRes, strings.TrimSpace(kmodOut))
	if len(kmodRes) != 2 {
		t.Errorf("want an alert for init_module and one for finit_module, got %v; all alerts: %q", kmodRes, rulesOf(alerts[kmodID]))
	}

	// proc.env, proc.sid, proc.vpgid of the container's first process
	// (runc makes it a session and group leader: 1 and 1 in its pid
	// namespace).
	var first *seen
	for i, e := range execs[ptraceID] {
		if e.proc.VPID == 1 {
			first = &execs[ptraceID][i]
		}
	}
	if first == nil {
		t.Fatalf("no exec of the container's pid 1 seen: %+v", execs[ptraceID])
	}
	if first.proc.SID != 1 || first.proc.VPGID != 1 {
		t.Errorf("pid 1 of the container: sid %d vpgid %d, want 1 and 1", first.proc.SID, first.proc.VPGID)
	}
	env := strings.Join(first.proc.Env, " ")
	if !strings.Contains(env, "PATH=/bin") || !strings.Contains(env, "container=podman") {
		t.Errorf("proc.env of the container's first process: %q", first.proc.Env)
	}
}

// TestKubernetesContext: containers carrying the CRI labels exactly as
// containerd sets them give alerts with their namespace and pod, a rule on
// k8s.ns.name fires only in its namespace, and a `podman kube play` pod's
// containers carry the pod's name and labels.
func TestKubernetesContext(t *testing.T) {
	requirePodman(t)
	if _, err := exec.LookPath("catatonit"); err != nil {
		if _, err2 := os.Stat("/usr/libexec/podman/catatonit"); err2 != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("podman kube play needs Debian's catatonit (scripts/setup-test-env.sh installs it)")
			}
			t.Skip("podman kube play needs Debian's catatonit")
		}
	}
	img := triggerImage(t)
	sock := apiSocket(t)
	stop := watch(t, sock, `
- rule: Read in shop
  desc: a process reads /etc/passwd in the shop namespace
  condition: evt.type in (open, openat) and fd.name=/etc/passwd and k8s.ns.name=shop
  output: shop read (pod=%k8s.pod.name ns=%k8s.ns.name uid=%k8s.pod.uid app=%k8s.pod.label[app] container=%container.name)
  priority: WARNING
- rule: Read in a pod
  desc: a process reads /etc/passwd in any pod
  condition: evt.type in (open, openat) and fd.name=/etc/passwd and k8s.pod.name exists
  output: pod read (pod=%k8s.pod.name ns=%k8s.ns.name labels=%k8s.pod.labels)
  priority: NOTICE
`)
	cri := func(ns, pod string) []string {
		return []string{"--label", "io.kubernetes.pod.namespace=" + ns, "--label", "io.kubernetes.pod.name=" + pod,
			"--label", "io.kubernetes.pod.uid=5d1c2e9a-" + pod, "--label", "io.kubernetes.container.name=app", "--label", "app=" + pod}
	}
	shopID, _ := run(t, "bh-shop", append(cri("shop", "orders-7f9c"), img, "cat", "/etc/passwd")...)
	otherID, _ := run(t, "bh-other", append(cri("billing", "ledger-1a2b"), img, "cat", "/etc/passwd")...)
	plainID, _ := run(t, "bh-plain", img, "cat", "/etc/passwd")

	dir := t.TempDir()
	kube := filepath.Join(dir, "pod.yaml")
	os.WriteFile(kube, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: bh-kube-orders
  labels:
    app: orders
spec:
  restartPolicy: Never
  containers:
  - name: api
    image: `+img+`
    command: ["cat", "/etc/passwd"]
`), 0o644)
	exec.Command("podman", "kube", "down", kube).Run()
	t.Cleanup(func() { exec.Command("podman", "kube", "down", kube).Run() })
	sh(t, "podman", "kube", "play", "--network=none", kube)
	kubeID := sh(t, "podman", "inspect", "--format", "{{.Id}}", "bh-kube-orders-api")[:12]
	sh(t, "podman", "wait", "bh-kube-orders-api")
	alerts, _ := stop()

	shop := find(alerts[shopID], "Read in shop")
	if shop == nil {
		t.Fatalf("no 'Read in shop' alert for the shop container; its alerts: %q", rulesOf(alerts[shopID]))
	}
	if want := "shop read (pod=orders-7f9c ns=shop uid=5d1c2e9a-orders-7f9c app=orders-7f9c container=app)"; !strings.HasSuffix(shop.output, want) {
		t.Errorf("shop alert %q, want suffix %q", shop.output, want)
	}
	if a := find(alerts[otherID], "Read in a pod"); a == nil || find(alerts[otherID], "Read in shop") != nil {
		t.Errorf("billing container: alerts %q, want 'Read in a pod' and not 'Read in shop'", rulesOf(alerts[otherID]))
	} else if !strings.HasSuffix(a.output, "pod read (pod=ledger-1a2b ns=billing labels=app:ledger-1a2b)") {
		t.Errorf("billing alert %q", a.output)
	}
	if r := rulesOf(alerts[plainID]); find(alerts[plainID], "Read in shop") != nil || find(alerts[plainID], "Read in a pod") != nil {
		t.Errorf("a container outside any pod raised %q", r)
	}
	k := find(alerts[kubeID], "Read in a pod")
	if k == nil {
		t.Fatalf("no alert for the kube play pod's container; its alerts: %q", rulesOf(alerts[kubeID]))
	}
	if !strings.HasSuffix(k.output, "pod read (pod=bh-kube-orders ns=<NA> labels=app:orders)") || k.ct.K8sContainerName != "api" || k.ct.K8sPodUID == "" || normalizeImageID(k.ct.ImageID) == "" {
		t.Errorf("kube play alert %q, container %+v", k.output, k.ct)
	}
}
