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

// TestParseCgroupPublished: /proc/PID/cgroup lines and cgroup paths of
// Kubernetes containers as published in public bug reports, each with its
// source. The CRI forms: containerd's cri-containerd-<id>.scope and
// CRI-O's crio-<id>.scope (systemd driver), containerd's bare
// /kubepods/<qos>/pod<uid>/<id> (cgroupfs driver), and the
// "slice:cri-containerd:<id>" leaf some cgroup v1 hierarchies show with
// the systemd driver.
func TestParseCgroupPublished(t *testing.T) {
	tests := []struct {
		source, line, id, runtime string
	}{
		{
			// kind node, cgroup v2, systemd driver: the container's path
			// under /sys/fs/cgroup, as its /proc/PID/cgroup v2 line.
			"https://github.com/containerd/nri/pull/227",
			"0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod1e597579_417e_482f_bf65_5fe170c3aebd.slice/cri-containerd-a09bc17f5aa29b0dbdec9ede5f46cf1396d2405917ab02e6f1eb1019f388396e.scope",
			"a09bc17f5aa29b0dbdec9ede5f46cf1396d2405917ab02e6f1eb1019f388396e", "containerd",
		},
		{
			// /proc/self/cgroup in a containerd pod, cgroup v1.
			"https://github.com/open-telemetry/opentelemetry-java/issues/4507",
			"11:perf_event:/kubepods-besteffort-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice:cri-containerd:ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459\n" +
				"10:blkio:/system.slice/containerd.service/kubepods-besteffort-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice:cri-containerd:ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459",
			"ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459", "containerd",
		},
		{
			"https://github.com/elastic/apm-agent-nodejs/issues/3550",
			"1:name=systemd:/system.slice/containerd.service/kubepods-burstable-podff49d0be_16b7_4a49_bb9e_8ec1f1f4e27f.slice:cri-containerd:0f99ad5f45163ed14ab8eaf92ed34bb4a631d007f8755a7d79be614bcb0df0ef",
			"0f99ad5f45163ed14ab8eaf92ed34bb4a631d007f8755a7d79be614bcb0df0ef", "containerd",
		},
		{
			// minikube with containerd, cgroupfs driver (a cgroup mount's
			// root in /proc/self/mountinfo: the container's cgroup path).
			"https://github.com/elastic/apm-agent-java/pull/2352",
			"1:name=systemd:/kubepods/besteffort/pod72f9a42e-50d3-47ee-8ec7-0bccfb6ea7ae/52371e0edd6309da3d4eaee6d303aa3401abbef92c34c2b1ddba7b28d82d6cb0",
			"52371e0edd6309da3d4eaee6d303aa3401abbef92c34c2b1ddba7b28d82d6cb0", "containerd",
		},
		{
			// cat /proc/21689/cgroup of a CRI-O container (calico-node).
			"https://github.com/opencontainers/runc/issues/4620",
			"13:freezer:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poda5c1f8d5_1919_434d_add7_4afaafdaef89.slice/crio-5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c.scope\n" +
				"11:files:/",
			"5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c", "cri-o",
		},
		{
			// CRI-O in a minikube node (itself a docker container):
			// kube-proxy's scope in `systemctl status kubepods.slice`,
			// joined to the tree's root /docker/<node>/kubepods.slice.
			"https://github.com/kubernetes/minikube/issues/11280",
			"0::/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/crio-358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c.scope",
			"358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c", "cri-o",
		},
		{
			// CRI-O's conmon: the runtime's monitor, not the container.
			"https://github.com/sustainable-computing-io/kepler/issues/153",
			"1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podb4e8e0dc_caf3_4a43_bf50_f84ef5ef7a8f.slice/crio-conmon-927cffdca4f374600fe49a62bfd7f2e73ea6d37cdafb1bf8f89afb64d7e6c6a5.scope",
			"", "",
		},
		{
			// containerd outside Kubernetes: the service's own cgroup.
			"https://github.com/sustainable-computing-io/kepler/issues/153",
			"0::/system.slice/containerd.service",
			"", "",
		},
	}
	for _, tt := range tests {
		id, rt := ParseCgroup([]byte(tt.line))
		if id != tt.id || rt != tt.runtime {
			t.Errorf("%s: ParseCgroup = %q, %q; want %q, %q", tt.source, id, rt, tt.id, tt.runtime)
		}
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
	db := filepath.Join("testdata", "podman-containers.json")
	want := podmanEntry{name: "rt-probe", imageName: "localhost/mini:1", imageID: "sha256:9440c80ee86a4b76b27799fb357c9f2cdc8f17be66b08484ed981567459a1d83"}
	// The sensor asks with the full id, the drift resolver with the
	// events' 12-hex one.
	for _, id := range []string{"af4869a3e5e736027f361772098f835147bc88c9597ea32c9d5fb27782ed9d78", "af4869a3e5e7"} {
		if got := podmanStore(db, id); got != want {
			t.Errorf("podmanStore(%s) = %+v, want %+v", id, got, want)
		}
	}
	for _, id := range []string{"nope", ""} {
		if got := podmanStore(db, id); got != (podmanEntry{}) {
			t.Errorf("podmanStore(%q) = %+v, want nothing", id, got)
		}
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
