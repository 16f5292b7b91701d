package resolve

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
)

// Pull secrets come from the cluster, written by anyone who may create a
// secret in a namespace: their parser takes any bytes without panicking,
// and what it accepts resolves.
func FuzzPullSecret(f *testing.F) {
	f.Add([]byte(`{"auths":{"registry.example:5000":{"username":"u","password":"p"}}}`), false)
	f.Add([]byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}`), false)
	f.Add([]byte(`{"registry.example":{"auth":"dTpw"}}`), true)
	f.Add([]byte(`{"auths":{"r":{"auth":"!!"}}}`), false)
	f.Add([]byte(`{"auths":{"r":{"auth":"bm9jb2xvbg=="}}}`), false)
	f.Fuzz(func(t *testing.T, data []byte, old bool) {
		s := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: data}}
		if old {
			s = &corev1.Secret{Type: corev1.SecretTypeDockercfg, Data: map[string][]byte{corev1.DockerConfigKey: data}}
		}
		var k PullSecretKeychain
		if err := k.ParsePullSecret(s); err != nil {
			return
		}
		r, _ := name.NewRegistry("registry.example")
		a, err := k.Resolve(r)
		if err != nil || a == nil {
			t.Fatalf("resolve: %v %v", a, err)
		}
		if _, err := a.Authorization(); err != nil && a != authn.Anonymous {
			t.Fatalf("authorization: %v", err)
		}
	})
}

func TestPullSecret(t *testing.T) {
	var k PullSecretKeychain
	err := k.ParsePullSecret(&corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"reg:5000":{"username":"a","password":"b"}}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"index.docker.io": "u", "reg:5000": "a", "other": ""} {
		r, _ := name.NewRegistry(host, name.Insecure)
		a, _ := k.Resolve(r)
		cfg, _ := a.Authorization()
		if cfg.Username != want {
			t.Errorf("%s: user %q, want %q", host, cfg.Username, want)
		}
	}
	err = k.ParsePullSecret(&corev1.Secret{Type: corev1.SecretTypeOpaque})
	if err == nil {
		t.Error("an Opaque secret was taken as a pull secret")
	}
	if _, ok := FromImageID("docker-pullable://r/app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); !ok {
		t.Error("imageID with a digest not taken")
	}
	if _, ok := FromImageID("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); ok {
		t.Error("a bare image ID was taken as a manifest digest")
	}
}
