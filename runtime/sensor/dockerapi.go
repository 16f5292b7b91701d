package sensor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// DockerAPI is a MetadataSource speaking the Docker Engine API over a unix
// socket: docker's, or podman's compatible service.
type DockerAPI struct {
	sock   string
	client *http.Client
	// podman is set once an answer carried podman's Libpod-Api-Version
	// header: podman pods are then read through the libpod API.
	podman atomic.Bool
}

// NewDockerAPI returns a source asking the Docker Engine API at sock.
func NewDockerAPI(sock string) *DockerAPI {
	return &DockerAPI{
		sock: sock,
		client: &http.Client{
			Timeout: lookupTimeout,
			Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}},
		},
	}
}

func (d *DockerAPI) String() string { return "Docker API socket " + d.sock }

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

// inspect is the part of the Docker Engine API's container inspect answer
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
		Pid       int64     `json:"Pid"` // the first process, in the host's pid namespace
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

// Container inspects the container; for a podman container without the
// CRI labels it also reads its pod.
func (d *DockerAPI) Container(ctx context.Context, id string) (*event.Container, error) {
	in, err := d.inspectContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	ct := &event.Container{
		Name:       strings.TrimPrefix(in.Name, "/"),
		Labels:     in.Config.Labels,
		Privileged: in.HostConfig.Privileged,
	}
	img := in.Config.Image
	if img == "" {
		img = in.ImageName
	}
	ct.Image = img
	ct.ImageID = normalizeImageID(in.Image) // docker and podman: the image id
	ct.ImageRepository, ct.ImageTag, ct.ImageDigest = splitImage(img)
	if !in.State.StartedAt.IsZero() {
		ct.StartTS = in.State.StartedAt.UnixNano()
	}
	if d.podman.Load() && in.Config.Labels[labelPodName] == "" {
		d.podmanPod(ctx, id, ct)
	}
	return ct, nil
}

// Process returns the container's image id ("sha256:<hex>", "" when the
// answer has none) and the pid, in the host's pid namespace, of its first
// process (0 when it is not running).
func (d *DockerAPI) Process(ctx context.Context, id string) (imageID string, pid int64, err error) {
	in, err := d.inspectContainer(ctx, id)
	if err != nil {
		return "", 0, err
	}
	return normalizeImageID(in.Image), in.State.Pid, nil
}

// inspectContainer asks the Docker Engine API about a container (a full id or a
// unique prefix).
func (d *DockerAPI) inspectContainer(ctx context.Context, id string) (*inspect, error) {
	if _, err := os.Stat(d.sock); err != nil {
		return nil, &SourceError{d.String(), ErrNoSocket}
	}
	var in inspect
	if err := d.getJSON(ctx, "/v1.41/containers/"+url.PathEscape(id)+"/json", &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// getJSON GETs an API path and decodes the answer.
func (d *DockerAPI) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://d"+path, nil)
	if err != nil {
		return &SourceError{d.String(), err}
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return &SourceError{d.String(), err}
	}
	defer resp.Body.Close()
	if resp.Header.Get("Libpod-Api-Version") != "" {
		d.podman.Store(true)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return &SourceError{d.String(), fmt.Errorf("GET %s: %w", path, ErrUnknownContainer)}
	default:
		return &SourceError{d.String(), fmt.Errorf("GET %s: %s", path, resp.Status)}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v); err != nil {
		return &SourceError{d.String(), fmt.Errorf("GET %s: %w", path, err)}
	}
	return nil
}

// podmanPod fills the pod fields of a container in a podman pod (`podman
// kube play`, `podman pod create`): podman sets no io.kubernetes.* labels,
// so the pod comes from the libpod API.
func (d *DockerAPI) podmanPod(ctx context.Context, id string, ct *event.Container) {
	var in inspect
	if err := d.getJSON(ctx, "/v4.0.0/libpod/containers/"+url.PathEscape(id)+"/json", &in); err != nil || in.Pod == "" {
		return
	}
	var pod podInspect
	if err := d.getJSON(ctx, "/v4.0.0/libpod/pods/"+url.PathEscape(in.Pod)+"/json", &pod); err != nil || pod.Name == "" {
		return
	}
	ct.K8sPodName, ct.K8sPodUID, ct.K8sPodLabels = pod.Name, pod.ID, pod.Labels
	// kube play names a pod's containers <pod>-<container>.
	ct.K8sContainerName = strings.TrimPrefix(ct.Name, pod.Name+"-")
}
