package image

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// daemonHost returns the Docker Engine API endpoint for docker:NAME or
// podman:NAME: DOCKER_HOST (or CONTAINER_HOST for podman) when set, else
// the engine's usual socket.
func daemonHost(engine string, opts Options) string {
	if opts.DockerHost != "" {
		return opts.DockerHost
	}
	if engine == "podman" {
		if h := os.Getenv("CONTAINER_HOST"); h != "" {
			return h
		}
		if os.Geteuid() != 0 {
			if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" {
				return "unix://" + filepath.Join(xdg, "podman", "podman.sock")
			}
		}
		return "unix:///run/podman/podman.sock"
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// daemonClient returns an HTTP client and base URL for a Docker Engine API
// host ("unix:///path" or "tcp://host:port").
func daemonClient(host string) (*http.Client, string, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, "", fmt.Errorf("parse daemon host %q: %w", host, err)
	}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		return &http.Client{Transport: tr}, "http://daemon", nil
	case "tcp", "http":
		return &http.Client{}, "http://" + u.Host, nil
	}
	return nil, "", fmt.Errorf("daemon host %q: only unix:// and tcp:// are supported", host)
}

// OpenDaemon saves an image from a Docker Engine API socket (docker, or
// podman's compatible service) into the temp space as a docker-archive, then
// reads it like any archive. Saving once keeps memory flat; go-containerregistry's
// daemon package would either hold the whole image in memory or save it once per
// layer.
func OpenDaemon(ctx context.Context, engine, name string, opts Options) (*Image, error) {
	host := daemonHost(engine, opts)
	client, base, err := daemonClient(host)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1.41/images/"+url.PathEscape(name)+"/get", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		hint := "is the daemon running?"
		if engine == "podman" {
			hint = "start it with `podman system service --time=0 " + host + "`"
		}
		return nil, fmt.Errorf("%s:%s: cannot reach %s (%v); %s", engine, name, host, err, hint)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s:%s: daemon answered %s: %s", engine, name, resp.Status, strings.TrimSpace(string(msg)))
	}
	tmp, err := os.CreateTemp(opts.TempDir, "daemon-*.tar")
	if err != nil {
		return nil, fmt.Errorf("save %s:%s: %w", engine, name, err)
	}
	remove := func() { os.Remove(tmp.Name()) }
	_, err = io.Copy(tmp, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		remove()
		return nil, fmt.Errorf("save %s:%s: %w", engine, name, err)
	}
	img, err := OpenArchive(tmp.Name(), opts)
	if err != nil {
		remove()
		return nil, fmt.Errorf("%s:%s: %w", engine, name, err)
	}
	img.Name = engine + ":" + name
	img.Source = SourceDaemon
	img.cleanup = append(img.cleanup, remove)
	return img, nil
}
