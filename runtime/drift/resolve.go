package drift

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
	"sync"
	"time"
)

// Resolver finds a container's image id by asking the container runtime's
// Docker Engine API sockets (docker and podman both answer
// /containers/ID/json with "Image": "sha256:..."), or podman's own store
// when no socket answers. Answers are cached by container id.
type Resolver struct {
	Sockets []string
	// PodmanDB is podman's containers.json (default: root's store).
	PodmanDB string

	mu    sync.Mutex
	cache map[string]info
}

type info struct {
	image string
	pid   int64
	at    time.Time // when asked
}

// retryAfter is how long an incomplete answer (no image id, or no pid: a
// runtime busy starting the container) is kept before asking again.
const retryAfter = 10 * time.Second

// NewResolver returns a Resolver over the sockets.
func NewResolver(sockets []string) *Resolver {
	return &Resolver{Sockets: sockets, PodmanDB: "/var/lib/containers/storage/overlay-containers/containers.json", cache: map[string]info{}}
}

// ImageID returns the image id of the container (a full or short id), ""
// when no runtime knows it. A failed lookup is cached for a while too, so
// that a container no runtime answers for costs one lookup per 10 s.
func (r *Resolver) ImageID(container string) string {
	return r.get(container).image
}

// InitPID returns the pid (in the host's pid namespace) of the
// container's first process, 0 when no runtime said.
func (r *Resolver) InitPID(container string) int64 {
	return r.get(container).pid
}

func (r *Resolver) get(container string) info {
	r.mu.Lock()
	in, ok := r.cache[container]
	r.mu.Unlock()
	if ok && ((in.image != "" && in.pid != 0) || time.Since(in.at) < retryAfter) {
		return in
	}
	in = r.lookup(container)
	in.at = time.Now()
	r.mu.Lock()
	if len(r.cache) > 65536 {
		clear(r.cache)
	}
	r.cache[container] = in
	r.mu.Unlock()
	return in
}

func (r *Resolver) lookup(container string) info {
	for _, sock := range r.Sockets {
		if _, err := os.Stat(sock); err != nil {
			continue
		}
		var in struct {
			Image string `json:"Image"`
			State struct {
				Pid int64 `json:"Pid"`
			} `json:"State"`
		}
		if err := getJSON(sock, "/v1.41/containers/"+url.PathEscape(container)+"/json", &in); err != nil {
			continue
		}
		if id, err := NormalizeID(in.Image); err == nil {
			return info{image: id, pid: in.State.Pid}
		}
	}
	return info{image: podmanImage(r.PodmanDB, container)}
}

// Socket returns the first socket that exists ("" if none), to export
// images from.
func (r *Resolver) Socket() string {
	for _, s := range r.Sockets {
		if _, err := os.Stat(s); err == nil {
			return s
		}
	}
	return ""
}

func getJSON(sock, path string, v any) error {
	c := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	resp, err := c.Get("http://runtime" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v)
}

// podmanImage looks the container up (by id prefix) in podman's
// containers.json, whose "image" is the image id.
func podmanImage(db, container string) string {
	f, err := os.Open(db)
	if err != nil {
		return ""
	}
	defer f.Close()
	var list []struct {
		ID    string `json:"id"`
		Image string `json:"image"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 64<<20)).Decode(&list); err != nil {
		return ""
	}
	for _, c := range list {
		if container != "" && strings.HasPrefix(c.ID, container) {
			if id, err := NormalizeID(c.Image); err == nil {
				return id
			}
		}
	}
	return ""
}
