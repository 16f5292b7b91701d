package sensor

import (
	"errors"
	"strings"
	"testing"
)

// containerdInfo is the "info" entry of a verbose ContainerStatus from
// containerd 1.6 (trimmed: the runtime spec is kilobytes).
const containerdInfo = `{"sandboxID":"eaf493ab46a7c0b1f64e1b1d7f1fa4e5a1d1d5c2b3a4f5e6d7c8b9a0f1e2d3c4","pid":4242,"removing":false,"snapshotKey":"k","snapshotter":"native","runtimeType":"io.containerd.runc.v2","runtimeOptions":null,"config":{"metadata":{"name":"api"}},"runtimeSpec":{"ociVersion":"1.0.2-dev"},"privileged":true}`

func TestParseCRIInfo(t *testing.T) {
	in, err := parseCRIInfo(map[string]string{"info": containerdInfo})
	if err != nil || in.SandboxID != "eaf493ab46a7c0b1f64e1b1d7f1fa4e5a1d1d5c2b3a4f5e6d7c8b9a0f1e2d3c4" || !in.Privileged {
		t.Errorf("parseCRIInfo = %+v, %v", in, err)
	}
	if in, err := parseCRIInfo(nil); err != nil || in != (criInfo{}) {
		t.Errorf("no info: %+v, %v", in, err)
	}
	if _, err := parseCRIInfo(map[string]string{"info": `{"sandboxID": 7}`}); err == nil {
		t.Error("a sandbox id that is a number was accepted")
	}
	if _, err := parseCRIInfo(map[string]string{"info": `{"sandboxID":"` + strings.Repeat("a", maxInfo) + `"}`}); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Errorf("oversized info: %v", err)
	}
}

func TestCRIImage(t *testing.T) {
	tests := []struct{ image, ref, name, repo, tag, digest string }{
		// containerd: the first tag, and the repo digest when pulled
		{"docker.io/library/nginx:1.27", "docker.io/library/nginx@sha256:aaaa", "docker.io/library/nginx:1.27", "docker.io/library/nginx", "1.27", "sha256:aaaa"},
		// containerd, an image known only by id
		{"localhost/app:1", "sha256:bbbb", "localhost/app:1", "localhost/app", "1", ""},
		// an image without a tag: the id as the image, the repo digest wins
		{"sha256:bbbb", "quay.io/x/app@sha256:cccc", "quay.io/x/app@sha256:cccc", "quay.io/x/app", "", "sha256:cccc"},
		// CRI-O: the reference the pod asked for, with a digest
		{"quay.io/x/app@sha256:dddd", "quay.io/x/app@sha256:dddd", "quay.io/x/app@sha256:dddd", "quay.io/x/app", "", "sha256:dddd"},
		{"", "", "", "", "", ""},
	}
	for _, tt := range tests {
		name, repo, tag, digest := criImage(tt.image, tt.ref)
		if name != tt.name || repo != tt.repo || tag != tt.tag || digest != tt.digest {
			t.Errorf("criImage(%q, %q) = %q %q %q %q", tt.image, tt.ref, name, repo, tag, digest)
		}
	}
}

func TestNormalizeImageID(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"sha256:" + h: "sha256:" + h, h: "sha256:" + h,
		"docker.io/x@sha256:" + h: "", "sha256:" + h[:63]: "", "sha256:" + strings.ToUpper(h): "", "": "",
	} {
		if got := normalizeImageID(in); got != want {
			t.Errorf("normalizeImageID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExplicitCRISocket: a CRI socket named explicitly that does not
// answer is an error naming the socket and the flag, before anything runs;
// the auto-detected ones that do not exist are left out quietly.
func TestExplicitCRISocket(t *testing.T) {
	sock := t.TempDir() + "/nothing.sock"
	_, err := metadataSources([]string{}, []string{"unix://" + sock})
	if err == nil || !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "--cri-socket") || !errors.Is(err, ErrNoSocket) {
		t.Errorf("metadataSources with a missing CRI socket: %v", err)
	}
	t.Setenv("CONTAINER_RUNTIME_ENDPOINT", "unix://"+sock)
	ss, err := metadataSources([]string{}, nil)
	if err != nil || len(ss) != 3 || ss[0].String() != "CRI socket "+sock {
		t.Errorf("auto-detected sources: %v, %v", ss, err)
	}
}

func FuzzParseCRIInfo(f *testing.F) {
	f.Add(containerdInfo, "docker.io/library/nginx:1.27", "docker.io/library/nginx@sha256:aaaa")
	f.Add(`{"sandboxID":"x","privileged":"yes"}`, "sha256:bbbb", "sha256:bbbb")
	f.Add(`null`, "", "@")
	f.Fuzz(func(t *testing.T, info, image, ref string) {
		in, err := parseCRIInfo(map[string]string{"info": info})
		if err != nil && in != (criInfo{}) {
			t.Fatalf("an error with a result: %+v", in)
		}
		name, repo, tag, digest := criImage(image, ref)
		if name != image && name != ref {
			t.Fatalf("criImage(%q, %q) named %q", image, ref, name)
		}
		if len(repo)+len(tag)+len(digest) > len(name)+len(ref) {
			t.Fatalf("criImage(%q, %q) = %q %q %q", image, ref, repo, tag, digest)
		}
	})
}
