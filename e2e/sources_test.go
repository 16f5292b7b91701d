package e2e

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// fingerprint is what must be equal whatever the source: every package with
// its version, arch, source package, and the diffID of the layer that
// introduced it.
func fingerprint(inv *inventory.Inventory) []string {
	var out []string
	for _, p := range inv.Packages {
		diff := ""
		if l := p.Locations[0].Layer; l != nil {
			diff = l.DiffID
		}
		out = append(out, strings.Join([]string{p.Type, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.PURL, p.Locations[0].Path, diff}, "|"))
	}
	sort.Strings(out)
	return out
}

func TestSourcesAgree(t *testing.T) {
	requireEnv(t)
	ref := debianImage(t)
	dir := t.TempDir()

	plain := startRegistry(t, false)
	authed := startRegistry(t, true)
	tlsReg := startRegistryTLS(t, true, true)
	tlsRef := tlsReg.push(t, ref, "e2e/debian:1")
	plainRef := plain.push(t, ref, "e2e/debian:1")
	authedRef := authed.push(t, ref, "e2e/debian:1")

	ociArchive := filepath.Join(dir, "oci.tar")
	run(t, "podman", "save", "-q", "--format", "oci-archive", "-o", ociArchive, ref)
	dockerArchive := filepath.Join(dir, "docker.tar")
	run(t, "podman", "save", "-q", "--format", "docker-archive", "-o", dockerArchive, ref)
	gz := dockerArchive + ".gz"
	run(t, "sh", "-c", "gzip -1 -c "+dockerArchive+" > "+gz)
	layoutDir := filepath.Join(dir, "layout")
	run(t, "podman", "save", "-q", "--format", "oci-dir", "-o", layoutDir, ref)
	sock := podmanSocket(t)

	want := fingerprint(scanJSON(t, "image", "oci-archive:"+ociArchive))
	if len(want) < 50 {
		t.Fatalf("only %d packages in the Debian image", len(want))
	}
	sources := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{name: "registry", args: []string{"image", plainRef}},
		{name: "registry with htpasswd", args: []string{"image", authedRef}, env: map[string]string{"BULKHEAD_USERNAME": authed.user, "BULKHEAD_PASSWORD": authed.pass}},
		{name: "TLS registry (self-signed) with --insecure", args: []string{"image", "--insecure", tlsRef}, env: map[string]string{"BULKHEAD_USERNAME": tlsReg.user, "BULKHEAD_PASSWORD": tlsReg.pass}},
		{name: "docker-archive", args: []string{"image", "--input", dockerArchive}},
		{name: "docker-archive gzip", args: []string{"image", "docker-archive:" + gz}},
		{name: "oci layout", args: []string{"image", "--input", layoutDir}},
		{name: "podman socket", args: []string{"image", "podman:" + ref}, env: map[string]string{"CONTAINER_HOST": sock}},
		{name: "docker socket via DOCKER_HOST", args: []string{"image", "docker:" + ref}, env: map[string]string{"DOCKER_HOST": sock}},
	}
	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			for k, v := range s.env {
				t.Setenv(k, v)
			}
			got := fingerprint(scanJSON(t, s.args...))
			onlyGot, onlyWant := diffSets(got, want)
			if len(onlyGot) > 0 || len(onlyWant) > 0 {
				t.Errorf("inventory differs from the oci-archive's:\nonly here: %v\nonly oci-archive: %v", onlyGot, onlyWant)
			}
		})
	}

	t.Run("docker config.json credentials", func(t *testing.T) {
		// ~/.docker/config.json with the registry's credentials.
		home := t.TempDir()
		os.MkdirAll(filepath.Join(home, ".docker"), 0o700)
		auth := base64.StdEncoding.EncodeToString([]byte(authed.user + ":" + authed.pass))
		os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"auths":{"`+authed.addr+`":{"auth":"`+auth+`"}}}`), 0o600)
		t.Setenv("HOME", home)
		t.Setenv("DOCKER_CONFIG", "")
		got := fingerprint(scanJSON(t, "image", authedRef))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Error("inventory through config.json credentials differs")
		}
	})

	t.Run("faults", func(t *testing.T) {
		cases := []struct {
			name string
			args []string
			env  map[string]string
			want string
		}{
			{name: "no credentials", args: []string{"image", authedRef}, want: "access denied"},
			{name: "wrong password", args: []string{"image", authedRef}, env: map[string]string{"BULKHEAD_USERNAME": authed.user, "BULKHEAD_PASSWORD": "wrong"}, want: "access denied"},
			{name: "self-signed TLS without --insecure", args: []string{"image", tlsRef}, env: map[string]string{"BULKHEAD_USERNAME": tlsReg.user, "BULKHEAD_PASSWORD": tlsReg.pass}, want: "pull"},
			{name: "unknown tag", args: []string{"image", plain.addr + "/e2e/debian:nope"}, want: "not found"},
			{name: "no such socket", args: []string{"image", "podman:" + ref}, env: map[string]string{"CONTAINER_HOST": "unix://" + filepath.Join(dir, "none.sock")}, want: "cannot reach"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Setenv("HOME", t.TempDir())
				for k, v := range c.env {
					t.Setenv(k, v)
				}
				_, errOut, code := bulkhead(append(c.args, "--quiet", "--format", "json")...)
				if code == 0 || !strings.Contains(errOut, c.want) {
					t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, errOut, c.want)
				}
			})
		}
	})

	t.Run("corrupted blob in the registry", func(t *testing.T) {
		// Flip bytes in the biggest blob the registry stores: the scan must
		// fail with a digest error, never report a partial inventory.
		var biggest string
		var size int64
		filepath.Walk(plain.root, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Name() == "data" && info.Size() > size {
				biggest, size = p, info.Size()
			}
			return nil
		})
		if biggest == "" {
			t.Fatal("no blob found in the registry storage")
		}
		f, err := os.OpenFile(biggest, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("corrupted!"), size/2)
		f.Close()
		out, errOut, code := bulkhead("image", plainRef, "--quiet", "--format", "json")
		if code == 0 || !(strings.Contains(errOut, "digest mismatch") || strings.Contains(errOut, "error verifying sha256 checksum")) {
			t.Errorf("exit %d, stderr %q, %d bytes of output; want a digest failure", code, errOut, len(out))
		}
		if out != "" {
			t.Errorf("a report was written despite the corrupt blob")
		}
	})
}
