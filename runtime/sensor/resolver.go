package sensor

import (
	"context"
	"os"
	"sync"
	"time"
)

// Resolver answers, for a container id (full or a unique prefix, such as
// the 12-hex container.id of events), its image id and the pid of its
// first process, asking the Docker Engine API sockets (docker and podman,
// the same DockerAPI sources the sensor asks for metadata) in turn, or
// podman's own store when none answers. It is the drift detector's and
// the image-id enricher's view of the runtime. Answers are cached by
// container id.
type Resolver struct {
	apis []*DockerAPI
	// podmanDB is podman's (root) container store.
	podmanDB string

	mu    sync.Mutex
	cache map[string]resolved
}

type resolved struct {
	imageID string
	pid     int64
	at      time.Time // when asked
}

// resolverRetry is how long an incomplete answer (no image id, or no pid:
// a runtime busy starting the container, or one no runtime knows) is kept
// before asking again.
const resolverRetry = 10 * time.Second

// NewResolver returns a Resolver over the Docker Engine API sockets
// (DefaultSockets(), typically).
func NewResolver(sockets []string) *Resolver {
	r := &Resolver{podmanDB: podmanStoreFile, cache: map[string]resolved{}}
	for _, s := range sockets {
		r.apis = append(r.apis, NewDockerAPI(s))
	}
	return r
}

// ImageID returns the container's image id ("sha256:<hex>"), "" when no
// runtime knows it.
func (r *Resolver) ImageID(container string) string { return r.get(container).imageID }

// InitPID returns the pid (in the host's pid namespace) of the
// container's first process, 0 when no runtime said.
func (r *Resolver) InitPID(container string) int64 { return r.get(container).pid }

// Socket returns the first socket that exists ("" if none), to export
// images from.
func (r *Resolver) Socket() string {
	for _, a := range r.apis {
		if _, err := os.Stat(a.sock); err == nil {
			return a.sock
		}
	}
	return ""
}

func (r *Resolver) get(container string) resolved {
	r.mu.Lock()
	in, ok := r.cache[container]
	r.mu.Unlock()
	if ok && ((in.imageID != "" && in.pid != 0) || time.Since(in.at) < resolverRetry) {
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

// lookup asks each socket in turn; the first answer with an image id
// wins. With none, podman's store still has the image id (not the pid).
func (r *Resolver) lookup(container string) resolved {
	if container == "" {
		return resolved{}
	}
	for _, a := range r.apis {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		id, pid, err := a.Process(ctx, container)
		cancel()
		if err == nil && id != "" {
			return resolved{imageID: id, pid: pid}
		}
	}
	return resolved{imageID: podmanStore(r.podmanDB, container).imageID}
}
