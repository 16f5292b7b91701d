package resolve

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
)

// maxSecretData bounds the pull secret data parsed.
const maxSecretData = 1 << 20

// dockerConfig is the .dockerconfigjson document ("auths") or the older
// .dockercfg one (the map itself).
type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// PullSecretKeychain is the credentials of image pull secrets, by
// registry host, in the order the pod lists them (the first secret naming
// a registry wins, as with the kubelet).
type PullSecretKeychain struct {
	auths []hostAuth
}

type hostAuth struct {
	host string
	cfg  authn.AuthConfig
}

// ParsePullSecret reads a kubernetes.io/dockerconfigjson or
// kubernetes.io/dockercfg secret into k.
func (k *PullSecretKeychain) ParsePullSecret(s *corev1.Secret) error {
	var data []byte
	var cfg dockerConfig
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		data = s.Data[corev1.DockerConfigJsonKey]
	case corev1.SecretTypeDockercfg:
		data = s.Data[corev1.DockerConfigKey]
	default:
		return fmt.Errorf("image pull secret %s/%s is of type %q; give a %s or %s secret", s.Namespace, s.Name, s.Type, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg)
	}
	if err := k.parse(s.Type, data, &cfg); err != nil {
		return fmt.Errorf("image pull secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

func (k *PullSecretKeychain) parse(typ corev1.SecretType, data []byte, cfg *dockerConfig) error {
	if len(data) == 0 {
		return fmt.Errorf("no %s data", typ)
	}
	if len(data) > maxSecretData {
		return fmt.Errorf("%d bytes of data, over the limit of %d", len(data), maxSecretData)
	}
	if typ == corev1.SecretTypeDockercfg {
		if err := json.Unmarshal(data, &cfg.Auths); err != nil {
			return fmt.Errorf("not a .dockercfg document: %w", err)
		}
	} else if err := json.Unmarshal(data, cfg); err != nil {
		return fmt.Errorf("not a .dockerconfigjson document: %w", err)
	}
	for host, a := range cfg.Auths {
		ac := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" && ac.Username == "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return fmt.Errorf("auth of %s is not base64: %w", host, err)
			}
			u, p, ok := strings.Cut(string(dec), ":")
			if !ok {
				return fmt.Errorf("auth of %s is not user:password", host)
			}
			ac.Username, ac.Password = u, p
		}
		k.auths = append(k.auths, hostAuth{host: normalizeHost(host), cfg: ac})
	}
	return nil
}

// normalizeHost turns a docker config key ("https://index.docker.io/v1/",
// "registry:5000") into a registry host.
func normalizeHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "docker.io", "registry-1.docker.io":
		return "index.docker.io"
	}
	return h
}

// Resolve implements authn.Keychain.
func (k *PullSecretKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	for _, a := range k.auths {
		if a.host == host {
			return authn.FromConfig(a.cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// Empty says whether k holds no credentials.
func (k *PullSecretKeychain) Empty() bool { return len(k.auths) == 0 }
