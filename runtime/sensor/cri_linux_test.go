//go:build linux && amd64

package sensor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// These tests run a real containerd (Debian's containerd package, runc)
// in a private root, state and socket, once per test binary, and drive it
// through the CRI the way kubelet does: RunPodSandbox, CreateContainer,
// StartContainer. The image is built here and imported with ctr, so no
// network is needed.

const criImageName = "localhost/bulkhead-cri-test:1"

type containerdEnv struct {
	dir, sock string
	cmd       *exec.Cmd
	rt        runtimeapi.RuntimeServiceClient
	conn      *grpc.ClientConn
	// digest is the image's manifest digest, recorded as a repo digest.
	digest string
	// imageID is the image's config digest, the CRI's image id.
	imageID string
	// runDir is set when containerd 1.6's shims created /run/containerd
	// (their socket directory there is not configurable): stop removes it
	// if empty.
	runDir bool
}

var (
	ctdOnce sync.Once
	ctd     *containerdEnv
	ctdErr  error
	ctdSkip string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if ctd != nil {
		ctd.stop()
	}
	os.Exit(code)
}

// requireContainerd starts containerd the first time, or skips (fails on
// CI) when this machine cannot run it.
func requireContainerd(t testing.TB) *containerdEnv {
	t.Helper()
	ctdOnce.Do(func() {
		if err := Supported(); err != nil {
			ctdSkip = err.Error()
			return
		}
		for _, bin := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2"} {
			if _, err := exec.LookPath(bin); err != nil {
				ctdSkip = bin + " not found: install Debian's containerd package (scripts/setup-test-env.sh does)"
				return
			}
		}
		ctd, ctdErr = startContainerd()
	})
	if ctdSkip != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(ctdSkip)
		}
		t.Skip(ctdSkip)
	}
	if ctdErr != nil {
		t.Fatal(ctdErr)
	}
	return ctd
}

func startContainerd() (*containerdEnv, error) {
	dir, err := os.MkdirTemp("", "bh-ctd-")
	if err != nil {
		return nil, err
	}
	e := &containerdEnv{dir: dir, sock: filepath.Join(dir, "containerd.sock")}
	if _, err := os.Stat("/run/containerd"); os.IsNotExist(err) {
		e.runDir = true
	}
	// The CRI plugin with the native snapshotter, runc, no CNI (the pods
	// use the host's network), and the test image as the sandbox image
	// (its command sleeps, as pause would).
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[debug]
  level = "debug"
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  disable_apparmor = true
  # Keep the sandbox's oom_score_adj at or above containerd's: its -998
  # needs CAP_SYS_RESOURCE, which a CI sandbox may not grant.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[8]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[7]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), e.sock, e.sock+".ttrpc", filepath.Join(dir, "opt"), criImageName, filepath.Join(dir, "cni"), filepath.Join(dir, "runc"))
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	e.cmd = exec.Command("containerd", "--config", cfg)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	fail := func(err error) (*containerdEnv, error) {
		log, _ := os.ReadFile(logf.Name())
		e.stop()
		return nil, fmt.Errorf("%w\ncontainerd's log:\n%s", err, tail(string(log), 40))
	}
	e.conn, err = grpc.NewClient("unix://"+e.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fail(err)
	}
	e.rt = runtimeapi.NewRuntimeServiceClient(e.conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := e.rt.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("containerd's CRI did not answer: %w", err))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := e.importImage(); err != nil {
		return fail(err)
	}
	return e, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// log is the end of containerd's log.
func (e *containerdEnv) log() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "containerd.log"))
	return tail(string(b), 30)
}

func (e *containerdEnv) ctr(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"--address", e.sock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// importImage builds a busybox image with /etc/shadow (built here, as a
// docker archive) and imports it with ctr. A pull would also record the
// image's repo digest (repo@sha256:...); the test tags it the same way, so
// the image looks as a pulled one does to the CRI.
func (e *containerdEnv) importImage() error {
	root := filepath.Join(e.dir, "image")
	for _, d := range []string{"bin", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("the test image needs a static /bin/busybox (Debian's busybox-static): %w", err)
	}
	os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755)
	for _, a := range []string{"sh", "sleep", "cat", "true"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "shadow"), []byte("root:*:19000:0:99999:7:::\n"), 0o600)
	layerTar := filepath.Join(e.dir, "layer.tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", layerTar, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("tar: %v\n%s", err, out)
	}
	layer, err := tarball.LayerFromFile(layerTar)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	// As a sandbox image, it execs its sleep after half a second: an event
	// from the sandbox once containerd has recorded it.
	cf.Config = v1.Config{Cmd: []string{"sh", "-c", "sleep 0.5; exec sleep 86400"}, Env: []string{"PATH=/bin"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	e.imageID = cfgName.String()
	ref, err := name.ParseReference(criImageName)
	if err != nil {
		return err
	}
	archive := filepath.Join(e.dir, "image.tar")
	if err := tarball.WriteToFile(archive, ref, img); err != nil {
		return err
	}
	if _, err := e.ctr("images", "import", "--snapshotter", "native", archive); err != nil {
		return err
	}
	// The manifest digest containerd stored for the imported name.
	out, err := e.ctr("images", "ls")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == criImageName {
			e.digest = f[2]
		}
	}
	if !strings.HasPrefix(e.digest, "sha256:") {
		return fmt.Errorf("no digest for %s in ctr images ls:\n%s", criImageName, out)
	}
	repo, _, _ := splitImage(criImageName)
	_, err = e.ctr("images", "tag", criImageName, repo+"@"+e.digest)
	return err
}

func (e *containerdEnv) stop() {
	if e.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if l, err := e.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range l.GetItems() {
				e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()})
				e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()})
			}
		}
		cancel()
		e.conn.Close()
	}
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Kill()
		e.cmd.Wait()
	}
	os.RemoveAll(e.dir)
	if e.runDir {
		os.Remove("/run/containerd/s") // only if empty
		os.Remove("/run/containerd")
	}
}

// pod is a pod sandbox and one container in it, run through the CRI as
// kubelet runs them.
type pod struct {
	sandbox, container string
}

// runPod runs a pod (name, namespace, uid and labels as kubelet passes
// them) with one container named ctrName running cmd, and waits for the
// container to exit when wait is set.
func (e *containerdEnv) runPod(t testing.TB, podName, ns, uid string, labels map[string]string, ctrName string, cmd []string, wait bool) pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// kubelet's labels: the pod's own plus io.kubernetes.pod.* on the
	// sandbox; only io.kubernetes.* on the containers.
	sbLabels := map[string]string{labelPodName: podName, labelPodNamespace: ns, labelPodUID: uid}
	for k, v := range labels {
		sbLabels[k] = v
	}
	logDir := filepath.Join(e.dir, "logs", uid)
	os.MkdirAll(logDir, 0o755)
	sbConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: podName, Namespace: ns, Uid: uid},
		LogDirectory: logDir,
		Labels:       sbLabels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/besteffort/pod" + uid,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			},
		},
	}
	sb, err := e.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbConfig})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\ncontainerd's log:\n%s", err, e.log())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.GetPodSandboxId()})
		e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetPodSandboxId()})
	})
	c, err := e.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sb.GetPodSandboxId(),
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: ctrName},
			Image:    &runtimeapi.ImageSpec{Image: criImageName},
			Command:  cmd,
			Labels:   map[string]string{labelContainerName: ctrName, labelPodName: podName, labelPodNamespace: ns, labelPodUID: uid},
			LogPath:  ctrName + ".log",
		},
		SandboxConfig: sbConfig,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v\ncontainerd's log:\n%s", err, e.log())
	}
	if _, err := e.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.GetContainerId()}); err != nil {
		t.Fatalf("StartContainer: %v\ncontainerd's log:\n%s", err, e.log())
	}
	for wait {
		st, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.GetContainerId()})
		if err != nil {
			t.Fatalf("ContainerStatus: %v", err)
		}
		if st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			log, _ := os.ReadFile(filepath.Join(logDir, ctrName+".log"))
			t.Logf("%s/%s exited %d: %s", ns, podName, st.GetStatus().GetExitCode(), strings.TrimSpace(string(log)))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return pod{sandbox: sb.GetPodSandboxId(), container: c.GetContainerId()}
}

// TestCRIKubernetesContext: a pod run through containerd's CRI, as
// kubelet runs it, gives alerts carrying the pod's namespace, name, uid
// and labels (the sandbox's: the container has only io.kubernetes.*
// labels) and the Kubernetes container name, read by the sensor over the
// CRI socket alone; its image and repo digest come from the CRI too. The
// pod's sandbox process gets the pod's fields as well.
func TestCRIKubernetesContext(t *testing.T) {
	t0 := time.Now()
	e := requireContainerd(t)
	t.Logf("containerd up, image imported: %v", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	stop := watchWith(t, Options{Sockets: []string{}, CRISockets: []string{e.sock}}, `
- rule: Shadow read in shop
  desc: a process reads /etc/shadow in the shop namespace
  condition: evt.type in (open, openat) and fd.name=/etc/shadow and k8s.ns.name=shop
  output: shop shadow read (ns=%k8s.ns.name pod=%k8s.pod.name uid=%k8s.pod.uid app=%k8s.pod.label[app] labels=%k8s.pod.labels container=%container.name image=%container.image.repository:%container.image.tag digest=%container.image.digest)
  priority: WARNING
`)
	t.Logf("sensor started: %v", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	uid := "5d1c2e9a-8b7f-4c3d-9e2a-1b0c9d8e7f6a"
	p := e.runPod(t, "orders-7f9c", "shop", uid, map[string]string{"app": "orders", "tier": "backend"}, "api", []string{"cat", "/etc/shadow"}, true)
	other := e.runPod(t, "ledger-1a2b", "billing", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", map[string]string{"app": "ledger"}, "worker", []string{"cat", "/etc/shadow"}, true)
	t.Logf("two pods run: %v", time.Since(t0).Round(time.Millisecond))
	time.Sleep(time.Second) // the sandboxes' second exec
	alerts, execs := stop()

	got := find(alerts[p.container[:12]], "Shadow read in shop")
	if got == nil {
		t.Fatalf("no 'Shadow read in shop' alert for the pod's container %s; alerts by container: %v", p.container[:12], alertRules(alerts))
	}
	want := fmt.Sprintf("shop shadow read (ns=shop pod=orders-7f9c uid=%s app=orders labels=app:orders, tier:backend container=api image=localhost/bulkhead-cri-test:1 digest=%s)", uid, e.digest)
	if !strings.HasSuffix(got.output, want) {
		t.Errorf("alert\n %q\nwant suffix\n %q", got.output, want)
	}
	if got.ct.ImageID != e.imageID {
		t.Errorf("container.image.id %q, want the image's config digest %s", got.ct.ImageID, e.imageID)
	}
	if got.ct.Type != "containerd" || got.ct.K8sContainerName != "api" || got.ct.Labels[labelContainerName] != "api" || got.ct.Labels["app"] != "" {
		t.Errorf("container %+v", got.ct)
	}
	if a := find(alerts[p.container[:12]], "Read sensitive file untrusted"); a == nil {
		t.Errorf("the stable rule 'Read sensitive file untrusted' did not fire; the container's alerts: %q", rulesOf(alerts[p.container[:12]]))
	} else {
		t.Logf("stable rule: %s", a.output)
	}
	// The billing pod's container reads the same file: the namespace rule
	// does not fire there, and its own pod fields are its own.
	if find(alerts[other.container[:12]], "Shadow read in shop") != nil {
		t.Errorf("the shop rule fired in the billing namespace")
	}
	var billing *seen
	for _, ss := range [][]seen{alerts[other.container[:12]], execs[other.container[:12]]} {
		if len(ss) > 0 {
			billing = &ss[0]
			break
		}
	}
	if billing == nil {
		t.Errorf("no event from the billing container %s", other.container[:12])
	} else if c := billing.ct; c.K8sNamespace != "billing" || c.K8sPodName != "ledger-1a2b" || c.K8sPodLabels["app"] != "ledger" {
		t.Errorf("billing container %+v", c)
	}
	// The sandbox's own process (the image's sleep, as pause) is the pod's.
	// Its first exec comes before containerd records the sandbox: the
	// sensor asks again at a later event.
	sb := execs[p.sandbox[:12]]
	if len(sb) == 0 {
		t.Errorf("no exec seen in the pod sandbox %s", p.sandbox[:12])
	} else if c := sb[len(sb)-1].ct; c.K8sPodName != "orders-7f9c" || c.K8sNamespace != "shop" || c.K8sPodUID != uid || c.K8sPodLabels["tier"] != "backend" {
		t.Errorf("sandbox container %+v", c)
	}
}

func alertRules(alerts map[string][]seen) map[string][]string {
	out := map[string][]string{}
	for id, ss := range alerts {
		out[id] = rulesOf(ss)
	}
	return out
}

// BenchmarkCRILookup is the cost of the sensor's first sight of a new
// container in a new pod, over a kept connection: ContainerStatus
// (verbose) and PodSandboxStatus, and ImageStatus for a new image (when the
// image ref is a repo digest). A second container of a known pod skips
// PodSandboxStatus.
func BenchmarkCRILookup(b *testing.B) {
	e := requireContainerd(b)
	p := e.runPod(b, "bench-pod", "bench", "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", map[string]string{"app": "bench"}, "sleeper", []string{"sleep", "600"}, false)
	src := NewCRI(e.sock)
	defer src.Close()
	ctx := context.Background()
	if ct, err := src.Container(ctx, p.container); err != nil || ct.K8sPodName != "bench-pod" {
		b.Fatalf("Container = %+v, %v", ct, err)
	}
	b.Run("new-pod-new-image", func(b *testing.B) {
		for b.Loop() {
			src.mu.Lock()
			clear(src.pods)
			clear(src.images)
			src.mu.Unlock()
			if _, err := src.Container(ctx, p.container); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new-pod", func(b *testing.B) {
		for b.Loop() {
			src.mu.Lock()
			clear(src.pods)
			src.mu.Unlock()
			if _, err := src.Container(ctx, p.container); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("known-pod", func(b *testing.B) {
		for b.Loop() {
			if _, err := src.Container(ctx, p.container); err != nil {
				b.Fatal(err)
			}
		}
	})
}
