package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/drift"
	"github.com/bulkhead-sec/bulkhead/runtime/profile"
	"github.com/bulkhead-sec/bulkhead/server"
)

func testProfile(i int) *profile.Profile {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &profile.Profile{APIVersion: profile.APIVersion, Kind: profile.Kind, Image: fmt.Sprintf("sha256:%064x", i),
		Names: []string{fmt.Sprintf("app-%d", i)}, State: profile.Learning, LearningStarted: at, LearningEnds: at.Add(time.Hour),
		Executables: []string{"/usr/bin/app", "/usr/lib/app/*"}, Outbound: []string{"10.0.0.5:5432/tcp"}, DNS: []string{"db.internal"},
		Listening: []string{"8080/tcp"}, Writes: []string{"/data/**"}}
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestRuntimeProfiles: profiles go in as YAML or JSON, come out as either,
// are listed, and bad ones are refused with the decoder's reason; on both
// databases, every exchange validated against /openapi.json.
func TestRuntimeProfiles(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			e := newEnv(t, b, nil)
			ctx := context.Background()
			c := e.client(server.RoleScan)
			for i := 1; i <= 3; i++ {
				if err := c.PutProfile(ctx, testProfile(i)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := e.client(server.RoleRead).Profile(ctx, testProfile(2).Image)
			if err != nil {
				t.Fatal(err)
			}
			if want := testProfile(2); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
			// JSON in, JSON out, and the sha256-<hex> spelling of the id.
			p := testProfile(4)
			p.State = profile.Enforcing
			p.DNS = append(p.DNS, "*.example.com")
			js, _ := json.Marshal(p)
			path := "/api/v1/runtime/profiles/" + strings.Replace(p.Image, ":", "-", 1)
			if resp, body := e.do(server.RoleScan, http.MethodPut, path, server.MediaJSON, js); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"entries":7`) {
				t.Fatalf("PUT JSON: %d %s", resp.StatusCode, body)
			}
			req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+e.tokens[server.RoleRead])
			req.Header.Set("Accept", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var back profile.Profile
			json.NewDecoder(resp.Body).Decode(&back)
			resp.Body.Close()
			if resp.Header.Get("Content-Type") != server.MediaJSON || back.State != profile.Enforcing || len(back.DNS) != 2 {
				t.Fatalf("GET JSON: %s %+v", resp.Header.Get("Content-Type"), back)
			}
			if resp, body := e.do(server.RoleRead, http.MethodGet, path, "", nil); resp.Header.Get("Content-Type") != server.MediaYAML || !strings.Contains(string(body), "kind: RuntimeProfile") {
				t.Fatalf("GET YAML: %s %s", resp.Header.Get("Content-Type"), body)
			}
			list, err := c.Profiles(ctx)
			if err != nil || len(list) != 4 || list[0].Image != testProfile(1).Image || list[3].State != profile.Enforcing || list[0].Entries != 6 {
				t.Fatalf("Profiles = %+v, %v", list, err)
			}

			// Refused, with the reason.
			good := new(bytes.Buffer)
			testProfile(5).Encode(good)
			p5 := "/api/v1/runtime/profiles/" + testProfile(5).Image
			for _, c := range []struct {
				name, path, media, body, want string
				status                        int
			}{
				{"bad entry", p5, server.MediaYAML, strings.Replace(good.String(), "10.0.0.5:5432/tcp", "10.0.0.5:99999/tcp", 1), "outbound[0]", 400},
				{"unknown field", p5, server.MediaYAML, good.String() + "extra: 1\n", "field extra not found", 400},
				{"two documents", p5, server.MediaYAML, good.String() + "---\n" + good.String(), "more than one YAML document", 400},
				{"other image", "/api/v1/runtime/profiles/" + testProfile(6).Image, server.MediaYAML, good.String(), "not sha256:" + fmt.Sprintf("%064x", 6), 400},
				{"bad id", "/api/v1/runtime/profiles/sha256:xyz", server.MediaYAML, good.String(), "is not sha256", 400},
				{"media", p5, "text/plain", good.String(), "application/yaml", 415},
				{"too large", p5, server.MediaYAML, good.String() + "#" + strings.Repeat("x", profile.MaxFileBytes), "limit", 413},
			} {
				resp, body := e.do(server.RoleScan, http.MethodPut, c.path, c.media, []byte(c.body))
				if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
					t.Errorf("%s: %d %.300s; want %d with %q", c.name, resp.StatusCode, body, c.status, c.want)
				}
			}
			if _, err := c.Profile(ctx, testProfile(5).Image); err == nil || !strings.Contains(err.Error(), "404") {
				t.Errorf("a refused profile was stored: %v", err)
			}
		})
	}
}

// TestRuntimeFileLists: file lists round-trip as gzip JSON; a list for
// another image, garbage, and a gzip bomb over the limit are refused.
func TestRuntimeFileLists(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			e := newEnv(t, b, func(c *server.Config) { c.MaxFileList = 64 << 10 })
			ctx := context.Background()
			ix := &drift.Index{Image: fmt.Sprintf("sha256:%064x", 1), Names: []string{"app:1"}, Created: time.Now().UTC().Truncate(time.Second),
				Files: map[string]drift.File{"/bin/sh": {SHA256: strings.Repeat("a", 64), Size: 10, Mode: 0o755}}}
			if err := e.client(server.RoleScan).PutFileList(ctx, ix); err != nil {
				t.Fatal(err)
			}
			got, err := e.client(server.RoleRead).FileList(ctx, ix.Image)
			if err != nil || got.Files["/bin/sh"] != ix.Files["/bin/sh"] || got.Image != ix.Image {
				t.Fatalf("FileList = %+v, %v", got, err)
			}
			if err := e.client(server.RoleRead).PutFileList(ctx, ix); err == nil || !strings.Contains(err.Error(), "403") {
				t.Errorf("a read token stored a file list: %v", err)
			}
			js, _ := json.Marshal(ix)
			path := "/api/v1/runtime/filelists/" + ix.Image
			bomb := append([]byte(`{"image":"`+ix.Image+`","files":{},"warnings":["`), bytes.Repeat([]byte("A"), 1<<20)...)
			bomb = append(bomb, `"]}`...)
			for _, c := range []struct {
				name, path, media string
				body              []byte
				want              string
				status            int
			}{
				{"other image", "/api/v1/runtime/filelists/" + fmt.Sprintf("sha256:%064x", 2), server.MediaGzip, gz(t, js), "not sha256:", 400},
				{"not gzip", path, server.MediaGzip, js, "not gzip", 400},
				{"bad JSON", path, server.MediaGzip, gz(t, []byte(`{"image":`)), "malformed", 400},
				{"relative path", path, server.MediaGzip, gz(t, []byte(`{"image":"`+ix.Image+`","files":{"bin/sh":{}}}`)), "not absolute", 400},
				{"bomb", path, server.MediaGzip, gz(t, bomb), "decompresses to more than", 413},
				{"media", path, server.MediaJSON, js, "application/gzip", 415},
			} {
				resp, body := e.do(server.RoleScan, http.MethodPut, c.path, c.media, c.body)
				if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
					t.Errorf("%s: %d %.300s; want %d with %q", c.name, resp.StatusCode, body, c.status, c.want)
				}
			}
			if _, err := e.client(server.RoleRead).FileList(ctx, fmt.Sprintf("sha256:%064x", 2)); err == nil || !strings.Contains(err.Error(), "404") {
				t.Errorf("missing file list: %v", err)
			}
		})
	}
}
