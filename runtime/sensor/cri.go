package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// CRI is a MetadataSource speaking the Kubernetes Container Runtime
// Interface over a unix socket: containerd's or CRI-O's, the only API a
// Kubernetes node's runtime serves. ContainerStatus gives a container's
// labels, image and pod sandbox; PodSandboxStatus the pod's name,
// namespace, uid and labels (on containerd the container itself carries
// only the io.kubernetes.* labels: the pod's own labels are the
// sandbox's).
type CRI struct {
	sock string

	mu     sync.Mutex
	conn   *grpc.ClientConn
	rt     runtimeapi.RuntimeServiceClient
	img    runtimeapi.ImageServiceClient
	pods   map[string]*podInfo // by sandbox id
	images map[string]string   // image id by image ref
}

// podInfo is what the sensor keeps of a pod sandbox.
type podInfo struct {
	name, namespace, uid string
	labels               map[string]string
}

// maxPods bounds the sandbox cache (a node runs at most a few hundred pods).
const maxPods = 4096

// NewCRI returns a source asking the CRI runtime service at sock (a path,
// or unix://path). Nothing is dialled until the first question.
func NewCRI(sock string) *CRI {
	return &CRI{sock: strings.TrimPrefix(sock, "unix://"), pods: map[string]*podInfo{}, images: map[string]string{}}
}

func (c *CRI) String() string { return "CRI socket " + c.sock }

// DefaultCRISockets are the CRI sockets tried: $CONTAINER_RUNTIME_ENDPOINT
// (crictl's) when unix://, then containerd's and CRI-O's usual paths.
func DefaultCRISockets() []string {
	var out []string
	if h := os.Getenv("CONTAINER_RUNTIME_ENDPOINT"); strings.HasPrefix(h, "unix://") {
		out = append(out, strings.TrimPrefix(h, "unix://"))
	}
	return append(out, "/run/containerd/containerd.sock", "/run/crio/crio.sock")
}

// client dials the socket the first time (the connection is then kept and
// re-established by gRPC as needed).
func (c *CRI) client() (runtimeapi.RuntimeServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rt != nil {
		return c.rt, nil
	}
	if _, err := os.Stat(c.sock); err != nil {
		return nil, &SourceError{c.String(), ErrNoSocket}
	}
	conn, err := grpc.NewClient("unix://"+c.sock,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("localhost"),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return nil, &SourceError{c.String(), err}
	}
	c.conn, c.rt, c.img = conn, runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	return c.rt, nil
}

// Check asks the runtime for its version: an explicitly named socket that
// does not serve the CRI is an error to report before watching anything.
func (c *CRI) Check(ctx context.Context) (name, version string, err error) {
	rt, err := c.client()
	if err != nil {
		return "", "", err
	}
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "", "", &SourceError{c.String(), err}
	}
	return v.GetRuntimeName(), v.GetRuntimeVersion(), nil
}

// Close closes the connection.
func (c *CRI) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.rt = nil, nil
	return err
}

// Container asks ContainerStatus (verbose, for the sandbox id) and then
// PodSandboxStatus, once per pod. An id that is a pod sandbox (its pause
// process) gets the pod's fields.
func (c *CRI) Container(ctx context.Context, id string) (*event.Container, error) {
	rt, err := c.client()
	if err != nil {
		return nil, err
	}
	resp, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if status.Code(err) == codes.NotFound {
		return c.sandbox(ctx, rt, id)
	}
	if err != nil {
		return nil, &SourceError{c.String(), fmt.Errorf("ContainerStatus: %w", err)}
	}
	st := resp.GetStatus()
	if st == nil {
		return nil, &SourceError{c.String(), errors.New("ContainerStatus: an answer without a status")}
	}
	info, err := parseCRIInfo(resp.GetInfo())
	if err != nil {
		return nil, &SourceError{c.String(), fmt.Errorf("ContainerStatus: %w", err)}
	}
	ct := &event.Container{
		Labels:     st.GetLabels(),
		Privileged: info.Privileged,
		StartTS:    st.GetStartedAt(),
	}
	ct.Image, ct.ImageRepository, ct.ImageTag, ct.ImageDigest = criImage(st.GetImage().GetImage(), st.GetImageRef())
	ct.ImageID = c.imageID(ctx, st)
	name := st.GetMetadata().GetName()
	if name == "" {
		name = st.GetLabels()[labelContainerName]
	}
	ct.Name, ct.K8sContainerName = name, name

	sandbox := info.SandboxID
	if sandbox == "" {
		// A runtime whose verbose info lacks it: the container list has it.
		l, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: id}})
		if err == nil && len(l.GetContainers()) == 1 {
			sandbox = l.GetContainers()[0].GetPodSandboxId()
		}
	}
	if sandbox != "" {
		if p, err := c.pod(ctx, rt, sandbox); err == nil {
			ct.K8sPodName, ct.K8sNamespace, ct.K8sPodUID, ct.K8sPodLabels = p.name, p.namespace, p.uid, p.labels
		}
	}
	return ct, nil
}

// imageID is the container's image id (its config digest, sha256:...):
// the status's image_id where the runtime fills it (CRI v1 since
// Kubernetes 1.30), the image ref when that is the id, otherwise the
// image's status, asked once per image.
func (c *CRI) imageID(ctx context.Context, st *runtimeapi.ContainerStatus) string {
	if id := normalizeImageID(st.GetImageId()); id != "" {
		return id
	}
	ref := st.GetImageRef()
	if id := normalizeImageID(ref); id != "" {
		return id
	}
	if ref == "" {
		return ""
	}
	c.mu.Lock()
	id, ok := c.images[ref]
	img := c.img
	c.mu.Unlock()
	if ok || img == nil {
		return id
	}
	resp, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return "" // asked again with the next container of the image
	}
	id = normalizeImageID(resp.GetImage().GetId())
	c.mu.Lock()
	if len(c.images) >= maxPods {
		clear(c.images)
	}
	c.images[ref] = id
	c.mu.Unlock()
	return id
}

// normalizeImageID returns an image id as "sha256:<64 hex>", or "" when s
// is not one (a bare 64-hex id gets the prefix).
func normalizeImageID(s string) string {
	h := strings.TrimPrefix(s, "sha256:")
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return ""
	}
	return "sha256:" + h
}

// sandbox answers for an id ContainerStatus does not know: a pod
// sandbox's own container, or an unknown id.
func (c *CRI) sandbox(ctx context.Context, rt runtimeapi.RuntimeServiceClient, id string) (*event.Container, error) {
	p, err := c.pod(ctx, rt, id)
	if err != nil {
		return nil, err
	}
	return &event.Container{
		Name:       p.name,
		K8sPodName: p.name, K8sNamespace: p.namespace, K8sPodUID: p.uid, K8sPodLabels: p.labels,
	}, nil
}

// pod returns a pod sandbox, asking the runtime the first time.
func (c *CRI) pod(ctx context.Context, rt runtimeapi.RuntimeServiceClient, id string) (*podInfo, error) {
	c.mu.Lock()
	p, ok := c.pods[id]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	resp, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if status.Code(err) == codes.NotFound {
		return nil, &SourceError{c.String(), fmt.Errorf("PodSandboxStatus %s: %w", id, ErrUnknownContainer)}
	}
	if err != nil {
		return nil, &SourceError{c.String(), fmt.Errorf("PodSandboxStatus: %w", err)}
	}
	st := resp.GetStatus()
	md := st.GetMetadata()
	p = &podInfo{name: md.GetName(), namespace: md.GetNamespace(), uid: md.GetUid(), labels: podLabels(st.GetLabels())}
	c.mu.Lock()
	if len(c.pods) >= maxPods {
		clear(c.pods)
	}
	c.pods[id] = p
	c.mu.Unlock()
	return p, nil
}

// podLabels are a sandbox's labels less those kubelet and the runtimes
// add: the pod's own labels, as k8s.pod.labels shows them.
func podLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		if !reservedLabel(k) {
			out[k] = v
		}
	}
	return out
}

// criInfo is the part of a verbose ContainerStatus's "info" entry the
// sensor uses: containerd and CRI-O both put the sandbox id and the
// privileged flag there, as JSON.
type criInfo struct {
	SandboxID  string `json:"sandboxID"`
	Privileged bool   `json:"privileged"`
}

// maxInfo bounds the verbose info decoded (it holds the OCI runtime spec,
// some kilobytes).
const maxInfo = 4 << 20

// parseCRIInfo decodes the "info" entry of a verbose ContainerStatus
// answer. A runtime that sends none is not an error.
func parseCRIInfo(m map[string]string) (criInfo, error) {
	var in criInfo
	s, ok := m["info"]
	if !ok || s == "" {
		return in, nil
	}
	if len(s) > maxInfo {
		return in, fmt.Errorf("verbose info of %d bytes, over the %d the sensor reads", len(s), maxInfo)
	}
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return criInfo{}, fmt.Errorf("verbose info: %w", err)
	}
	return in, nil
}

// criImage splits what ContainerStatus says of the image: image is the
// reference the container was created from (containerd: the image's first
// tag), ref the image's repo digest (repo@sha256:...) when the runtime
// knows one, otherwise its id (sha256:...).
func criImage(image, ref string) (name, repo, tag, digest string) {
	name = image
	if name == "" || strings.HasPrefix(name, "sha256:") {
		if i := strings.Index(ref, "@"); i >= 0 {
			name = ref
		}
	}
	repo, tag, digest = splitImage(name)
	if digest == "" {
		if i := strings.Index(ref, "@"); i >= 0 {
			digest = ref[i+1:]
		}
	}
	return name, repo, tag, digest
}

// metadataSources builds the container metadata sources: a CRI source
// for each CRI socket and a Docker API source for each Docker API socket
// (nil: the defaults). CRI sockets named explicitly must answer.
func metadataSources(docker, cri []string) ([]MetadataSource, error) {
	var out []MetadataSource
	explicit := cri != nil
	if cri == nil {
		cri = DefaultCRISockets()
	}
	for _, sock := range cri {
		c := NewCRI(sock)
		if explicit {
			ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
			_, _, err := c.Check(ctx)
			cancel()
			if err != nil {
				closeSources(out)
				return nil, fmt.Errorf("container metadata: %w (give the socket of containerd or CRI-O, e.g. --cri-socket /run/containerd/containerd.sock)", err)
			}
		}
		out = append(out, c)
	}
	if docker == nil {
		docker = DefaultSockets()
	}
	for _, sock := range docker {
		out = append(out, NewDockerAPI(sock))
	}
	return out, nil
}

func closeSources(ss []MetadataSource) {
	for _, s := range ss {
		if c, ok := s.(io.Closer); ok {
			c.Close()
		}
	}
}
