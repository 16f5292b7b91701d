package sensor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// With the systemd cgroup driver on cgroup v1, some hierarchies show
// runc's "slice:prefix:name" form as the leaf instead:
// kubepods-....slice:cri-containerd:<id>.
//
// conmon and other monitor cgroups (libpod-conmon-<id>, crio-conmon-<id>)
// are the runtime's, not the container's.
var cgroupIDRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:^|/)(libpod-|docker-|cri-containerd-|crio-|[^/]*:(?:libpod|docker|cri-containerd|crio):|)([0-9a-f]{64})(?:\.scope)?$`)
})

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
	// (A relative path, which the kernel does not write, ends at ".".)
	for p != "" && p != "/" && p != "." {
		if m := cgroupIDRe().FindStringSubmatch(p); m != nil {
			prefix := m[1]
			if i := strings.LastIndexByte(strings.TrimSuffix(prefix, ":"), ':'); i >= 0 {
				prefix = strings.TrimSuffix(prefix[i+1:], ":") + "-" // slice:cri-containerd: -> cri-containerd-
			}
			switch prefix {
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

// A MetadataSource answers what a container runtime knows about a
// container: its name, image and labels and, for a Kubernetes container,
// its pod. The sensor asks its sources in turn the first time it sees a
// container id and caches the answer; DockerAPI (docker, podman) and CRI
// (containerd, CRI-O) are the implementations.
type MetadataSource interface {
	// Container returns the container's metadata (ID and Type are the
	// caller's to set), or an error wrapping ErrUnknownContainer when the
	// runtime answered that it does not know the id.
	Container(ctx context.Context, id string) (*event.Container, error)
	// String names the source in messages: its kind and socket.
	String() string
}

// ErrUnknownContainer is a runtime's answer for an id it does not run.
var ErrUnknownContainer = errors.New("the runtime does not know this container")

// ErrNoSocket is a source's answer when its socket does not exist (the
// runtime is not installed, or not running).
var ErrNoSocket = errors.New("no such socket")

// SourceError is a metadata source that failed to answer.
type SourceError struct {
	Source string // the source: its kind and socket
	Err    error
}

func (e *SourceError) Error() string { return e.Source + ": " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// The CRI labels kubelet puts on every container (containerd's and CRI-O's
// CRI keep them as container labels).
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// lookupTimeout bounds one source's answer about one container.
const lookupTimeout = 2 * time.Second

// containers resolves cgroup ids to containers and caches the answers.
type containers struct {
	mu      sync.Mutex
	byCg    map[uint64]*ctEntry // nil: the host
	byID    map[string]*ctEntry
	sources []MetadataSource
	procDir string
	cg2     string // the cgroup v2 mount, to map an id to a path
	// podmanDB is podman's (root) container store, read when no source
	// answers.
	podmanDB string
	// warn receives a source's first failure (nil: discarded).
	warn   io.Writer
	warned map[string]bool
	now    func() time.Time
}

// ctEntry is a container as the sources last described it. A container
// no source knew yet (a pod sandbox's first process runs before containerd
// records the sandbox) is asked again, after retryFirst and then twice as
// long each time, up to maxTries.
type ctEntry struct {
	ct       *event.Container
	id, rt   string
	pending  bool // no source knew it, and one may yet
	tries    int
	retryAt  time.Time
	retryGap time.Duration
}

const (
	retryFirst = 200 * time.Millisecond
	maxTries   = 6
)

func newContainers(procDir string, sources []MetadataSource) *containers {
	return &containers{
		byCg:    map[uint64]*ctEntry{},
		byID:    map[string]*ctEntry{},
		sources: sources,
		procDir: procDir,
		cg2:     cgroup2Mount(filepath.Join(procDir, "self", "mountinfo")),
		warned:  map[string]bool{},
		now:     time.Now,

		podmanDB: podmanStoreFile,
	}
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
	e, ok := c.byCg[cg]
	c.mu.Unlock()
	if ok {
		if e == nil {
			return nil
		}
		if e.pending {
			c.retry(e)
		}
		return e.ct
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
		e = c.container(id, rt)
	}
	c.mu.Lock()
	if len(c.byCg) > 65536 {
		clear(c.byCg)
	}
	c.byCg[cg] = e
	c.mu.Unlock()
	if e == nil {
		return nil
	}
	return e.ct
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

// container returns the container for an id, asking the metadata sources
// for its name, image and pod the first time.
func (c *containers) container(id, rt string) *ctEntry {
	c.mu.Lock()
	e, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return e
	}
	e = &ctEntry{id: id, rt: rt, retryGap: retryFirst}
	c.resolve(e)
	c.mu.Lock()
	if len(c.byID) > 65536 {
		clear(c.byID)
	}
	c.byID[id] = e
	c.mu.Unlock()
	return e
}

// retry asks the sources again about a container none knew, when its
// time has come.
func (c *containers) retry(e *ctEntry) {
	now := c.now()
	if now.Before(e.retryAt) {
		return
	}
	c.resolve(e)
}

// resolve asks the sources about e's container, those of the runtime the
// cgroup path names first, and sets e.ct.
func (c *containers) resolve(e *ctEntry) {
	var got *event.Container
	mayKnow := false
	for _, s := range c.ordered(e.rt) {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		m, err := s.Container(ctx, e.id)
		cancel()
		if err == nil {
			got = m
			break
		}
		// Asked again only when a runtime answered that it does not know
		// the id (yet): not when it failed, which would stall the events
		// again for as long.
		if errors.Is(err, ErrUnknownContainer) {
			mayKnow = true
		}
		c.warnOnce(s, err)
	}
	e.tries++
	e.pending = got == nil && mayKnow && e.tries < maxTries
	if e.pending {
		e.retryAt = c.now().Add(e.retryGap)
		e.retryGap *= 2
	}
	if got == nil {
		got = &event.Container{}
		if e.rt == "podman" {
			// No API socket: podman's own store still has the name and image.
			if p := podmanStore(c.podmanDB, e.id); p.name != "" {
				got.Name, got.Image = p.name, p.imageName
				got.ImageRepository, got.ImageTag, got.ImageDigest = splitImage(p.imageName)
			}
		}
	}
	got.ID, got.Type = e.id[:12], e.rt
	k8sFromLabels(got)
	e.ct = got
}

// ordered returns the sources with those speaking the runtime's API first:
// CRI for containerd and CRI-O, the Docker API for docker and podman.
func (c *containers) ordered(rt string) []MetadataSource {
	criFirst := rt == "containerd" || rt == "cri-o"
	out := make([]MetadataSource, 0, len(c.sources))
	for _, pass := range []bool{true, false} {
		for _, s := range c.sources {
			_, isCRI := s.(*CRI)
			if (isCRI == criFirst) == pass {
				out = append(out, s)
			}
		}
	}
	return out
}

// warnOnce reports a source's first real failure: not an unknown id, not
// an absent socket (auto-detection tries sockets that need not exist).
func (c *containers) warnOnce(s MetadataSource, err error) {
	if c.warn == nil || errors.Is(err, ErrUnknownContainer) || errors.Is(err, ErrNoSocket) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.warned[s.String()] {
		return
	}
	c.warned[s.String()] = true
	fmt.Fprintf(c.warn, "bulkhead: container metadata: %v (containers it runs may lack names, images and Kubernetes fields; check the socket, or name another with --cri-socket)\n", err)
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

// podmanStoreFile is podman's (root) container store.
const podmanStoreFile = "/var/lib/containers/storage/overlay-containers/containers.json"

// podmanEntry is what podman's store says of a container.
type podmanEntry struct {
	name      string // its name
	imageName string // the image name it was created from
	imageID   string // its image id, "sha256:<hex>"
}

// podmanStore looks a container up (by its id or a prefix of it) in
// podman's containers.json; the zero entry when it is not there.
func podmanStore(path, id string) podmanEntry {
	if id == "" {
		return podmanEntry{}
	}
	f, err := os.Open(path)
	if err != nil {
		return podmanEntry{}
	}
	defer f.Close()
	var list []struct {
		ID       string   `json:"id"`
		Names    []string `json:"names"`
		Image    string   `json:"image"`
		Metadata string   `json:"metadata"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 64<<20)).Decode(&list); err != nil {
		return podmanEntry{}
	}
	for _, c := range list {
		if !strings.HasPrefix(c.ID, id) {
			continue
		}
		e := podmanEntry{imageID: normalizeImageID(c.Image)}
		if len(c.Names) > 0 {
			e.name = c.Names[0]
		}
		var md struct {
			ImageName string `json:"image-name"`
		}
		json.Unmarshal([]byte(c.Metadata), &md)
		e.imageName = md.ImageName
		return e
	}
	return podmanEntry{}
}
