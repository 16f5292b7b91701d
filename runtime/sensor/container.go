package sensor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// A container's id appears as the last 64-hex element of its cgroup path,
// with a runtime-specific prefix:
//
//	podman     /libpod_parent/libpod-<id>, machine.slice/libpod-<id>.scope
//	docker     /docker/<id>, system.slice/docker-<id>.scope
//	containerd /kubepods/.../<id>, kubepods-....slice/cri-containerd-<id>.scope
//	cri-o      kubepods-....slice/crio-<id>.scope
//
// conmon and other monitor cgroups (libpod-conmon-<id>, crio-conmon-<id>)
// are the runtime's, not the container's.
var cgroupIDRe = regexp.MustCompile(`(?:^|/)(libpod-|docker-|cri-containerd-|crio-|)([0-9a-f]{64})(?:\.scope)?$`)

// ParseCgroup reads /proc/PID/cgroup content (cgroup v1 lines, the v2
// "0::" line, or both on a hybrid host) and returns the container id and
// runtime ("podman", "docker", "containerd", "cri-o"), or "" for a process
// outside any container.
func ParseCgroup(data []byte) (id, runtime string) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		// hierarchy-ID:controller-list:cgroup-path
		i := strings.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := strings.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		if id, rt := containerFromPath(line[i+1+j+1:]); id != "" {
			return id, rt
		}
	}
	return "", ""
}

// containerFromPath extracts the container id from one cgroup path.
func containerFromPath(p string) (id, runtime string) {
	p = strings.TrimRight(p, "/")
	// Nested cgroups below the container's (systemd inside a container,
	// or a v2 "init" leaf) keep the container's element further up.
	for p != "" && p != "/" {
		if m := cgroupIDRe.FindStringSubmatch(p); m != nil {
			switch m[1] {
			case "libpod-":
				return m[2], "podman"
			case "docker-":
				return m[2], "docker"
			case "cri-containerd-":
				return m[2], "containerd"
			case "crio-":
				return m[2], "cri-o"
			}
			parent := filepath.Base(filepath.Dir(p))
			switch {
			case strings.HasPrefix(parent, "kubepods") || strings.HasPrefix(parent, "pod"):
				return m[2], "containerd"
			case parent == "docker":
				return m[2], "docker"
			}
			return m[2], "docker"
		}
		p = filepath.Dir(p)
	}
	return "", ""
}

// Inspect is the part of the Docker Engine API's container inspect answer
// (docker and podman serve the same shape) the sensor uses.
type inspect struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Image  string `json:"Image"`
	Config struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	State struct {
		StartedAt time.Time `json:"StartedAt"`
	} `json:"State"`
	HostConfig struct {
		Privileged bool `json:"Privileged"`
	} `json:"HostConfig"`
	ImageName string `json:"ImageName"` // podman's libpod API
	Pod       string `json:"Pod"`       // podman's libpod API: the pod's id
}

// podInspect is the part of podman's libpod pod inspect answer the sensor
// uses.
type podInspect struct {
	ID     string            `json:"Id"`
	Name   string            `json:"Name"`
	Labels map[string]string `json:"Labels"`
}

// The CRI labels kubelet puts on every container (containerd's and CRI-O's
// CRI keep them as container labels).
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// containers resolves cgroup ids to containers and caches the answers.
type containers struct {
	mu      sync.Mutex
	byCg    map[uint64]*event.Container
	byID    map[string]*event.Container
	sockets []string
	client  *http.Client
	procDir string
	cg2     string // the cgroup v2 mount, to map an id to a path
	// podmanDB is podman's (root) container store, read when no socket
	// answers.
	podmanDB string
}

func newContainers(procDir string, sockets []string) *containers {
	c := &containers{
		byCg:    map[uint64]*event.Container{},
		byID:    map[string]*event.Container{},
		sockets: sockets,
		procDir: procDir,
		cg2:     cgroup2Mount(filepath.Join(procDir, "self", "mountinfo")),

		podmanDB: "/var/lib/containers/storage/overlay-containers/containers.json",
	}
	c.client = &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			// The host part carries the socket index (see inspect).
			var d net.Dialer
			host, _, _ := net.SplitHostPort(addr)
			return d.DialContext(ctx, "unix", host2sock(host, c.sockets))
		}},
	}
	return c
}

// DefaultSockets are the Docker Engine API sockets tried for container
// names and images: $CONTAINER_HOST / $DOCKER_HOST when unix://, podman's
// and docker's usual paths.
func DefaultSockets() []string {
	var out []string
	for _, env := range []string{"CONTAINER_HOST", "DOCKER_HOST"} {
		if h := os.Getenv(env); strings.HasPrefix(h, "unix://") {
			out = append(out, strings.TrimPrefix(h, "unix://"))
		}
	}
	return append(out, "/run/podman/podman.sock", "/var/run/docker.sock", "/run/docker.sock")
}

func host2sock(host string, socks []string) string {
	var i int
	fmt.Sscanf(host, "sock%d", &i)
	if i >= 0 && i < len(socks) {
		return socks[i]
	}
	return ""
}

// cgroup2Mount finds the cgroup v2 mount point from a mountinfo file:
// /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(mountinfo string) string {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		// ... mount-point ... - fstype source options
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		post := strings.Fields(line[sep+3:])
		pre := strings.Fields(line[:sep])
		if len(post) > 0 && post[0] == "cgroup2" && len(pre) >= 5 {
			return pre[4]
		}
	}
	return ""
}

// lookup returns the container of a process in cgroup cg (nil for the
// host). pid is read for /proc/PID/cgroup when the cgroup is new.
func (c *containers) lookup(cg uint64, pid uint32) *event.Container {
	c.mu.Lock()
	ct, ok := c.byCg[cg]
	c.mu.Unlock()
	if ok {
		return ct
	}
	id, rt := "", ""
	data, err := os.ReadFile(filepath.Join(c.procDir, fmt.Sprint(pid), "cgroup"))
	if err == nil {
		id, rt = ParseCgroup(data)
	} else if p := c.cgroupPath(cg); p != "" {
		// The process is gone: find the cgroup by its inode number.
		id, rt = containerFromPath(p)
	} else {
		return nil // unknown, not cached: a later event may tell
	}
	if id != "" {
		ct = c.container(id, rt)
	}
	c.mu.Lock()
	if len(c.byCg) > 65536 {
		clear(c.byCg)
	}
	c.byCg[cg] = ct
	c.mu.Unlock()
	return ct
}

// cgroupPath walks the cgroup v2 tree for the directory whose inode is
// the cgroup id (bounded, for the rare event of a process gone before
// its first record is read).
func (c *containers) cgroupPath(cg uint64) string {
	if c.cg2 == "" || cg == 0 {
		return ""
	}
	var found string
	n := 0
	filepath.WalkDir(c.cg2, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if n++; n > 20000 {
			return filepath.SkipAll
		}
		if ino, ok := inode(p); ok && ino == cg {
			found = strings.TrimPrefix(p, c.cg2)
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// container returns the container for an id, asking the runtime sockets
// for its name and image the first time.
func (c *containers) container(id, rt string) *event.Container {
	c.mu.Lock()
	ct, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return ct
	}
	ct = &event.Container{ID: id[:12], Type: rt}
	answered := false
	for i := range c.sockets {
		in, err := c.inspect(i, id)
		if err != nil {
			continue
		}
		ct.Name = strings.TrimPrefix(in.Name, "/")
		ct.Labels = in.Config.Labels
		img := in.Config.Image
		if img == "" {
			img = in.ImageName
		}
		ct.Image = img
		ct.ImageRepository, ct.ImageTag, ct.ImageDigest = splitImage(img)
		ct.Privileged = in.HostConfig.Privileged
		if !in.State.StartedAt.IsZero() {
			ct.StartTS = in.State.StartedAt.UnixNano()
		}
		answered = true
		if rt == "podman" && in.Config.Labels[labelPodName] == "" {
			c.podmanPod(i, id, ct)
		}
		break
	}
	k8sFromLabels(ct)
	if !answered && rt == "podman" {
		// No API socket: podman's own store still has the name and image.
		if name, img := podmanStore(c.podmanDB, id); name != "" {
			ct.Name, ct.Image = name, img
			ct.ImageRepository, ct.ImageTag, ct.ImageDigest = splitImage(img)
		}
	}
	c.mu.Lock()
	c.byID[id] = ct
	c.mu.Unlock()
	return ct
}

func (c *containers) inspect(i int, id string) (*inspect, error) {
	if _, err := os.Stat(c.sockets[i]); err != nil {
		return nil, err
	}
	var in inspect
	if err := c.getJSON(i, "/v1.41/containers/"+url.PathEscape(id)+"/json", &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// getJSON GETs an API path from socket i and decodes the answer.
func (c *containers) getJSON(i int, path string, v any) error {
	resp, err := c.client.Get(fmt.Sprintf("http://sock%d%s", i, path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// podmanPod fills the pod fields of a container in a podman pod (`podman
// kube play`, `podman pod create`): podman sets no io.kubernetes.* labels,
// so the pod comes from the libpod API.
func (c *containers) podmanPod(i int, id string, ct *event.Container) {
	var in inspect
	if err := c.getJSON(i, "/v4.0.0/libpod/containers/"+url.PathEscape(id)+"/json", &in); err != nil || in.Pod == "" {
		return
	}
	var pod podInspect
	if err := c.getJSON(i, "/v4.0.0/libpod/pods/"+url.PathEscape(in.Pod)+"/json", &pod); err != nil || pod.Name == "" {
		return
	}
	ct.K8sPodName, ct.K8sPodUID, ct.K8sPodLabels = pod.Name, pod.ID, pod.Labels
	// kube play names a pod's containers <pod>-<container>.
	ct.K8sContainerName = strings.TrimPrefix(ct.Name, pod.Name+"-")
}

// k8sFromLabels fills the Kubernetes fields from the CRI labels, and the
// pod labels from the container's own labels less the runtimes' reserved
// ones when no pod said otherwise. As on containerd and CRI-O, where Falco
// takes container.name from the CRI metadata, container.name is then the
// Kubernetes container name.
func k8sFromLabels(ct *event.Container) {
	l := ct.Labels
	if l[labelPodName] == "" {
		if ct.K8sPodName != "" && ct.K8sPodLabels == nil {
			ct.K8sPodLabels = map[string]string{}
		}
		return
	}
	ct.K8sPodName, ct.K8sNamespace, ct.K8sPodUID = l[labelPodName], l[labelPodNamespace], l[labelPodUID]
	if n := l[labelContainerName]; n != "" {
		ct.K8sContainerName, ct.Name = n, n
	}
	if ct.K8sPodLabels == nil {
		ct.K8sPodLabels = map[string]string{}
		for k, v := range l {
			if !reservedLabel(k) {
				ct.K8sPodLabels[k] = v
			}
		}
	}
}

// reservedLabel reports whether a label is one the runtimes set for
// themselves rather than a pod label.
func reservedLabel(k string) bool {
	for _, p := range []string{"io.kubernetes.", "io.cri-containerd.", "io.containerd.", "io.podman.", "io.buildah.", "annotation.", "org.opencontainers."} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// splitImage splits an image reference into repository, tag and digest
// the way Falco's container.image.* fields do.
func splitImage(ref string) (repo, tag, digest string) {
	repo = ref
	if i := strings.Index(repo, "@"); i >= 0 {
		repo, digest = repo[:i], repo[i+1:]
	}
	if i := strings.LastIndex(repo, ":"); i >= 0 && !strings.Contains(repo[i:], "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// podmanStore looks a container up in podman's containers.json: its name
// and the image name it was created from.
func podmanStore(path, id string) (name, image string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	var list []struct {
		ID       string   `json:"id"`
		Names    []string `json:"names"`
		Metadata string   `json:"metadata"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 64<<20)).Decode(&list); err != nil {
		return "", ""
	}
	for _, c := range list {
		if c.ID != id {
			continue
		}
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		var md struct {
			ImageName string `json:"image-name"`
		}
		json.Unmarshal([]byte(c.Metadata), &md)
		return name, md.ImageName
	}
	return "", ""
}
