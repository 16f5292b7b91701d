package sensor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		file, id, runtime string
	}{
		{"host-hybrid.txt", "", ""},
		{"podman-hybrid.txt", "17b7e722c51000d0ea2d411fa3d0adc4e82c099f55fcc9d30cc787512d72daa3", "podman"},
		{"podman-v2-systemd.txt", "17b7e722c51000d0ea2d411fa3d0adc4e82c099f55fcc9d30cc787512d72daa3", "podman"},
		{"podman-conmon-v2.txt", "", ""},
		{"docker-v2-systemd.txt", "4f1c2b9d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c", "docker"},
		{"docker-v1-cgroupfs.txt", "4f1c2b9d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c", "docker"},
		{"containerd-v2.txt", "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b", "containerd"},
		{"containerd-v2-cgroupfs.txt", "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b", "containerd"},
		{"crio-v2.txt", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "cri-o"},
		{"crio-conmon-v2.txt", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "cgroup", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			id, rt := ParseCgroup(data)
			if id != tt.id || rt != tt.runtime {
				t.Errorf("ParseCgroup = %q, %q; want %q, %q", id, rt, tt.id, tt.runtime)
			}
		})
	}
}

func TestSplitImage(t *testing.T) {
	tests := []struct{ ref, repo, tag, digest string }{
		{"localhost/mini:1", "localhost/mini", "1", ""},
		{"docker.io/library/alpine:3.20", "docker.io/library/alpine", "3.20", ""},
		{"registry:5000/app", "registry:5000/app", "", ""},
		{"registry:5000/app:v2@sha256:abcd", "registry:5000/app", "v2", "sha256:abcd"},
	}
	for _, tt := range tests {
		repo, tag, digest := splitImage(tt.ref)
		if repo != tt.repo || tag != tt.tag || digest != tt.digest {
			t.Errorf("splitImage(%q) = %q %q %q", tt.ref, repo, tag, digest)
		}
	}
}

func TestPodmanStore(t *testing.T) {
	name, img := podmanStore(filepath.Join("testdata", "podman-containers.json"), "af4869a3e5e736027f361772098f835147bc88c9597ea32c9d5fb27782ed9d78")
	if name != "rt-probe" || img != "localhost/mini:1" {
		t.Errorf("podmanStore = %q, %q", name, img)
	}
	if name, _ := podmanStore(filepath.Join("testdata", "podman-containers.json"), "nope"); name != "" {
		t.Errorf("unknown id found: %q", name)
	}
}

func FuzzParseCgroup(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "cgroup", "*.txt"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, rt := ParseCgroup(data)
		if (id == "") != (rt == "") || (id != "" && len(id) != 64) {
			t.Fatalf("ParseCgroup = %q, %q", id, rt)
		}
	})
}
