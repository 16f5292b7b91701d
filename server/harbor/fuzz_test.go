package harbor_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/bulkhead-sec/bulkhead/server/harbor"
)

// The scan request decoder on any body: no panic; an error is a
// *RequestError with one of the spec's statuses that never quotes the
// registry credential; an accepted request names a pullable reference,
// gives a credential, and survives a round trip unchanged.
func FuzzDecodeScanRequest(f *testing.F) {
	for _, s := range []string{
		`{"registry":{"url":"https://core.harbor.domain","authorization":"Basic cm9ib3QkeDpwdw=="},"artifact":{"repository":"library/mongo","digest":"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b","tag":"3.14-xenial","mime_type":"application/vnd.docker.distribution.manifest.v2+json"}}`,
		`{"registry":{"url":"http://harbor-core:8080","authorization":"Bearer eyJhbGciOi"},"artifact":{"repository":"p/a/b","digest":"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"},"enabled_capabilities":[{"type":"sbom","produces_mime_types":["application/vnd.security.sbom.report+json; version=1.0"],"parameters":{"sbom_media_types":["application/spdx+json"]}},{"type":"vulnerability","parameters":null}]}`,
		`{"registry":{"url":"https://u:p@h/x?y#z"},"artifact":{"repository":"A","digest":"md5:1"}}`,
		`{"registry":{"url":"https://h","authorization":"Basic !!!"},"artifact":{}}`,
		`{"registry":{"url":"https://h","authorization":"s3cr3ts3cr3t"},"artifact":{"repository":"r","digest":"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"}}`,
		`{"registry":"x"}`, `{"artifact":[1]}`, `{"enabled_capabilities":{}}`, `null`, `[]`, `{}`, `{"a":1}{}`, `"`, ``, `{"registry":{"url":1e999}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := harbor.DecodeScanRequest(bytes.NewReader(body))
		if err != nil {
			var re *harbor.RequestError
			if !errors.As(err, &re) || (re.Status != 400 && re.Status != 422 && re.Status != 501) {
				t.Fatalf("error %v (%T) is not a RequestError with 400, 422 or 501", err, err)
			}
			var raw harbor.ScanRequest
			if json.Unmarshal(body, &raw) == nil {
				a := raw.Registry.Authorization
				others := raw.Registry.URL + "\x00" + raw.Artifact.Repository + "\x00" + raw.Artifact.Digest + "\x00" + raw.Artifact.Tag + "\x00" + raw.Artifact.MimeType
				for _, c := range raw.EnabledCapabilities {
					others += "\x00" + c.Type + "\x00" + strings.Join(c.ProducesMimeTypes, "\x00")
					if c.Parameters != nil {
						others += "\x00" + strings.Join(c.Parameters.SBOMMediaTypes, "\x00")
					}
				}
				if len(a) >= 8 && !strings.Contains(others, a) && strings.Contains(err.Error(), a) {
					t.Fatalf("the error quotes the authorization: %v", err)
				}
			}
			return
		}
		ref, _, err := req.Reference()
		if err != nil {
			t.Fatalf("accepted request has no reference: %v", err)
		}
		if _, err := name.NewDigest(ref); err != nil {
			t.Fatalf("accepted request's reference %q does not parse: %v", ref, err)
		}
		if a, err := req.Registry.Auth(); err != nil || a == nil {
			t.Fatalf("accepted request's credential: %v", err)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := harbor.DecodeScanRequest(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("re-encoded request %s refused: %v", b, err)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, again)
		}
	})
}
