package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// documents are the three upload formats of one inventory.
func documents(t testing.TB, inv *inventory.Inventory) map[string][]byte {
	var bh, cdx, sp bytes.Buffer
	res := &report.Result{Inventory: inv, Findings: []finding.Finding{
		{ID: "aws-access-key-id", Kind: finding.KindSecret, Severity: finding.Critical, Title: "AWS key"},
		{ID: "CVE-2000-1", Kind: finding.KindVulnerability, Severity: finding.High},
	}}
	if err := report.ResultJSON(&bh, res); err != nil {
		t.Fatal(err)
	}
	if err := cyclonedx.Encode(&cdx, inv, cyclonedx.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := spdx.Encode(&sp, inv, spdx.Options{}); err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{MediaBulkhead: bh.Bytes(), MediaCycloneDX: cdx.Bytes(), MediaSPDX: sp.Bytes()}
}

func TestDecodeUploadFormats(t *testing.T) {
	inv := sbomtest.Debian()
	for media, doc := range documents(t, inv) {
		for _, ct := range []string{media, MediaJSON, media + "; charset=utf-8"} {
			u, err := DecodeUpload(ct, doc)
			if err != nil {
				t.Fatalf("%s as %s: %v", media, ct, err)
			}
			if len(u.Inventory.Packages) != len(inv.Packages) {
				t.Errorf("%s as %s: %d packages, want %d", media, ct, len(u.Inventory.Packages), len(inv.Packages))
			}
			if media == MediaBulkhead {
				// The secret is kept; the uploaded vulnerability is not (the
				// server matches itself).
				if len(u.Findings) != 1 || u.Findings[0].Kind != finding.KindSecret || u.Source() != "upload" {
					t.Errorf("bulkhead upload: findings %+v, source %s", u.Findings, u.Source())
				}
			} else if u.Source() != "sbom" {
				t.Errorf("%s: source %s", media, u.Source())
			}
		}
	}
}

func TestDecodeUploadErrors(t *testing.T) {
	docs := documents(t, sbomtest.Alpine())
	for _, c := range []struct {
		name, ct string
		body     []byte
		status   int
		reason   string
	}{
		{"unknown media type", "application/xml", []byte("<bom/>"), http.StatusUnsupportedMediaType, "not an inventory"},
		{"no media type", "", docs[MediaBulkhead], http.StatusUnsupportedMediaType, "Content-Type"},
		{"not JSON", MediaJSON, []byte("{"), http.StatusBadRequest, "not a JSON object"},
		{"JSON of no known kind", MediaJSON, []byte(`{"hello":1}`), http.StatusBadRequest, "neither CycloneDX"},
		{"truncated CycloneDX", MediaCycloneDX, docs[MediaCycloneDX][:len(docs[MediaCycloneDX])/2], http.StatusBadRequest, "malformed cyclonedx"},
		{"truncated SPDX", MediaSPDX, docs[MediaSPDX][:len(docs[MediaSPDX])/2], http.StatusBadRequest, "malformed spdx"},
		{"CycloneDX sent as SPDX", MediaSPDX, docs[MediaCycloneDX], http.StatusBadRequest, "spdx"},
		{"future schema", MediaBulkhead, []byte(`{"schemaVersion":99,"target":{"name":"x","source":"registry"},"packages":[]}`), http.StatusBadRequest, "schemaVersion 99"},
		{"no target", MediaBulkhead, []byte(`{"schemaVersion":1,"packages":[]}`), http.StatusBadRequest, "names no target"},
		{"nameless package", MediaBulkhead, []byte(`{"schemaVersion":1,"target":{"name":"x","source":"registry"},"packages":[{"version":"1","type":"apk"}]}`), http.StatusBadRequest, "no name or type"},
		{"wrong types", MediaBulkhead, []byte(`{"schemaVersion":1,"target":{"name":"x"},"packages":{}}`), http.StatusBadRequest, "malformed bulkhead report"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeUpload(c.ct, c.body)
			var ue *UploadError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want an *UploadError", err)
			}
			if ue.Status != c.status || !strings.Contains(ue.Reason, c.reason) {
				t.Errorf("got %d %q, want %d containing %q", ue.Status, ue.Reason, c.status, c.reason)
			}
		})
	}
}

// FuzzDecodeUpload: no input crashes a decoder, and every refusal is an
// *UploadError with a 4xx status.
func FuzzDecodeUpload(f *testing.F) {
	for media, doc := range documents(f, sbomtest.Alpine()) {
		f.Add(media, doc)
		f.Add(MediaJSON, doc)
	}
	f.Add(MediaJSON, []byte(`{"schemaVersion":1,"target":{"name":"x","source":"registry"},"packages":[],"findings":[{"id":"s","kind":"secret","severity":"HIGH"}]}`))
	f.Add(MediaBulkhead, []byte(`{"schemaVersion":1,"target":{"name":"x"},"packages":[],"provenance":{"base":{"detection":{"method":"layers","base":"debian:12","reason":"r"},
		"recommendation":{"candidates":[{"ref":"a","vulnerabilitiesDelta":{"HIGH":-1},"score":1.5}]}},"signature":{"status":"verified","checkedBy":"server","rules":[{"policy":"p","key":"k"}]}}}`))
	f.Add(MediaCycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"a","purl":"pkg:npm/a@1"}]}`))
	f.Add(MediaSPDX, []byte(`{"spdxVersion":"SPDX-2.3","packages":[{"SPDXID":"SPDXRef-a","name":"a"}]}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		u, err := DecodeUpload(ct, body)
		if err != nil {
			var ue *UploadError
			if !errors.As(err, &ue) || ue.Status < 400 || ue.Status > 499 || ue.Reason == "" {
				t.Fatalf("error %v (%T) is not a 4xx UploadError", err, err)
			}
			return
		}
		if u.Inventory == nil {
			t.Fatal("no error and no inventory")
		}
		// An uploaded signature status is the uploader's word, and one the
		// store takes.
		if p := u.Provenance; p != nil && p.Signature != nil {
			if p.Signature.CheckedBy != store.CheckedByUpload {
				t.Fatalf("uploaded signature status checked by %q", p.Signature.CheckedBy)
			}
			switch p.Signature.Status {
			case store.SignatureVerified, store.SignatureFailed, store.SignatureNoPolicy, store.SignatureNotChecked:
			default:
				t.Fatalf("uploaded signature status %q accepted", p.Signature.Status)
			}
		}
	})
}

// FuzzDecodeBulkheadParity: json-iterator (the upload's fast path) and
// encoding/json decode every bulkhead report alike: what encoding/json
// refuses is refused, and what both accept decodes to the same document.
func FuzzDecodeBulkheadParity(f *testing.F) {
	for media, doc := range documents(f, sbomtest.Alpine()) {
		if media == MediaBulkhead {
			f.Add(doc)
		}
	}
	f.Add([]byte(`{"schemaVersion":1,"target":{"name":"x","source":"registry"},"packages":[{"name":"a","version":"1","type":"apk","locations":null}],"findings":[{"id":"s","kind":"secret","severity":"HIGH","aliases":["A"]}]}`))
	f.Add([]byte(`{"schemaVersion":1,"Target":{"Name":"x"},"packages":[{"name":"a\u00e9\ud83d\ude00","type":"apk"}],"findings":null}`))
	f.Add([]byte(`{"schemaVersion":1.5,"target":{"name":"x"}} trailing`))
	f.Add([]byte(`{"schemaVersion":1,"target":{"name":"x"},"packages":[{"name":"a","type":"apk","name":"b"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		std, errStd := unmarshalBulkhead(body, false)
		fast, errFast := unmarshalBulkhead(body, true)
		if (errStd == nil) != (errFast == nil) {
			t.Fatalf("encoding/json: %v; fast path: %v", errStd, errFast)
		}
		if errStd != nil {
			return
		}
		if !reflect.DeepEqual(std, fast) {
			a, _ := json.Marshal(std)
			b, _ := json.Marshal(fast)
			t.Fatalf("decoded differently:\nencoding/json: %s\nfast path:     %s", a, b)
		}
	})
}
