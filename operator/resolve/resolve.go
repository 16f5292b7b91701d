// Package resolve turns the image a container runs into its digest: the
// pod status's imageID when the kubelet reported one, otherwise a HEAD
// request to the registry, with the pod's image pull secrets when the
// operator may read them. Answers are cached, and concurrent questions
// about one reference make one request.
package resolve

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/image"
)

// Image is a container's image resolved to its digest.
type Image struct {
	// Reference is the image as the pod names it.
	Reference string
	// Repository is the repository, fully qualified ("registry/repo").
	Repository string
	// Digest is "sha256:<hex>".
	Digest string
	// Auth is the credential that reached it (Anonymous or the keychain's
	// when no pull secret applies).
	Auth authn.Authenticator
}

// Pinned is the repository@digest reference a scan pulls.
func (i *Image) Pinned() string { return i.Repository + "@" + i.Digest }

// Options configure a Resolver.
type Options struct {
	// Insecure allows plain HTTP and unverified TLS for registries.
	Insecure bool
	// Secrets reads image pull secrets (nil: they are not used; the
	// operator's RBAC rule for secrets is opt-in).
	Secrets client.Reader
	// TTL is how long a tag's digest is kept (default 5 minutes).
	TTL time.Duration
}

// Resolver resolves images; it is safe for concurrent use.
type Resolver struct {
	o     Options
	group singleflight.Group
	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	digest string
	at     time.Time
}

// New makes a Resolver.
func New(o Options) *Resolver {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	return &Resolver{o: o, cache: map[string]cached{}}
}

// FromImageID takes the digest out of a pod status imageID
// ("docker-pullable://repo@sha256:...", "repo@sha256:..."). A bare
// "sha256:..." is the image's configuration ID under some runtimes, not a
// manifest digest, and is not taken.
func FromImageID(imageID string) (string, bool) {
	_, d, ok := strings.Cut(imageID, "@")
	if !ok || !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		return "", false
	}
	return d, true
}

// Container resolves one container of a pod spec in namespace ns;
// imageID is its status imageID ("" when there is none).
func (r *Resolver) Container(ctx context.Context, ns string, spec *corev1.PodSpec, ref, imageID string) (*Image, error) {
	pr, err := image.ParseReference(ref, r.o.Insecure)
	if err != nil {
		return nil, fmt.Errorf("container image %q: %w", ref, err)
	}
	img := &Image{Reference: ref, Repository: pr.Context().Name()}
	kc, err := r.keychain(ctx, ns, spec)
	if err != nil {
		return nil, err
	}
	if img.Auth, err = kc.Resolve(pr.Context()); err != nil {
		return nil, err
	}
	if d, ok := pr.(name.Digest); ok {
		img.Digest = d.DigestStr()
		return img, nil
	}
	if d, ok := FromImageID(imageID); ok {
		img.Digest = d
		return img, nil
	}
	key := pr.Name() + "\x00" + secretKey(ns, spec)
	r.mu.Lock()
	c, ok := r.cache[key]
	r.mu.Unlock()
	if ok && time.Since(c.at) < r.o.TTL {
		img.Digest = c.digest
		return img, nil
	}
	v, err, _ := r.group.Do(key, func() (any, error) {
		// A call that just finished may have filled the cache.
		r.mu.Lock()
		c, ok := r.cache[key]
		r.mu.Unlock()
		if ok && time.Since(c.at) < r.o.TTL {
			return c.digest, nil
		}
		desc, err := remote.Head(pr, image.RemoteOptions(ctx, image.Options{Insecure: r.o.Insecure, Auth: img.Auth})...)
		if err != nil {
			return "", fmt.Errorf("resolve %s to a digest: %w", ref, err)
		}
		d := desc.Digest.String()
		r.mu.Lock()
		r.cache[key] = cached{digest: d, at: time.Now()}
		r.mu.Unlock()
		return d, nil
	})
	if err != nil {
		return nil, err
	}
	img.Digest = v.(string)
	return img, nil
}

func secretKey(ns string, spec *corev1.PodSpec) string {
	var names []string
	for _, s := range spec.ImagePullSecrets {
		names = append(names, s.Name)
	}
	return ns + "/" + strings.Join(names, ",")
}

// keychain is the pod's pull secrets, then the process's own keychain.
func (r *Resolver) keychain(ctx context.Context, ns string, spec *corev1.PodSpec) (authn.Keychain, error) {
	if r.o.Secrets == nil || len(spec.ImagePullSecrets) == 0 {
		return image.Keychain(), nil
	}
	var k PullSecretKeychain
	for _, ref := range spec.ImagePullSecrets {
		var s corev1.Secret
		if err := r.o.Secrets.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &s); err != nil {
			return nil, fmt.Errorf("image pull secret %s/%s: %w (grant the operator get on secrets, or turn --pull-secrets off)", ns, ref.Name, err)
		}
		if err := k.ParsePullSecret(&s); err != nil {
			return nil, err
		}
	}
	return authn.NewMultiKeychain(&k, image.Keychain()), nil
}

// Containers lists the containers of a pod spec, init containers first,
// with the imageID each has in the pods' statuses (the first pod that
// reports one).
func Containers(spec *corev1.PodSpec, pods []corev1.Pod) []ContainerImage {
	ids := map[string]string{}
	for _, p := range pods {
		for _, st := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
			if _, ok := ids[st.Name]; !ok && st.ImageID != "" {
				ids[st.Name] = st.ImageID
			}
		}
	}
	var out []ContainerImage
	for _, c := range spec.InitContainers {
		out = append(out, ContainerImage{Name: c.Name, Init: true, Image: c.Image, ImageID: ids[c.Name]})
	}
	for _, c := range spec.Containers {
		out = append(out, ContainerImage{Name: c.Name, Image: c.Image, ImageID: ids[c.Name]})
	}
	return out
}

// ContainerImage is a container's name, image and status imageID.
type ContainerImage struct {
	Name, Image, ImageID string
	Init                 bool
}
