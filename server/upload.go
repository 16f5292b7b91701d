package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// The media types an inventory upload may have.
const (
	// MediaBulkhead is bulkhead's own JSON report (bulkhead image -f json,
	// with or without findings): what bulkhead image --server sends.
	MediaBulkhead  = "application/vnd.bulkhead.report+json"
	MediaCycloneDX = "application/vnd.cyclonedx+json"
	MediaSPDX      = "application/spdx+json"
	// MediaJSON is told apart by the document's marker field (bomFormat,
	// spdxVersion, schemaVersion).
	MediaJSON = "application/json"
)

// DefaultMaxUpload bounds an upload's body: a 10,000-package image makes a
// CycloneDX document of about 15 MB.
const DefaultMaxUpload = 64 << 20

// UploadError is an upload refused before anything was stored: Status is
// the HTTP status (400 malformed, 413 too large, 415 unknown media type).
type UploadError struct {
	Status int
	Reason string
}

func (e *UploadError) Error() string { return e.Reason }

func badUpload(format string, a ...any) error {
	return &UploadError{Status: http.StatusBadRequest, Reason: fmt.Sprintf(format, a...)}
}

// Upload is a decoded inventory upload.
type Upload struct {
	Inventory *inventory.Inventory
	// Findings are the uploaded findings the server keeps as sent
	// (secrets, image audit); uploaded vulnerability findings are dropped,
	// the server matches the inventory itself.
	Findings []finding.Finding
	// Format is "bulkhead", "cyclonedx" or "spdx".
	Format string
	// Provenance is the base image and signature status a bulkhead report
	// carries (its "provenance" field), stored as the uploader's word: the
	// signature status is marked CheckedByUpload.
	Provenance *store.Provenance
}

// Source is the store's name for how the scan arrived.
func (u *Upload) Source() string {
	if u.Format == "bulkhead" {
		return "upload"
	}
	return "sbom"
}

// DecodeUpload decodes an upload body of the media type contentType (a
// Content-Type header value). Errors are *UploadError.
func DecodeUpload(contentType string, body []byte) (*Upload, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, &UploadError{Status: http.StatusUnsupportedMediaType, Reason: fmt.Sprintf("Content-Type %q: %v; send %s", contentType, err, acceptedMedia)}
	}
	format := ""
	switch mt {
	case MediaBulkhead:
		format = "bulkhead"
	case MediaCycloneDX:
		format = "cyclonedx"
	case MediaSPDX:
		format = "spdx"
	case MediaJSON:
		if format, err = sniff(body); err != nil {
			return nil, err
		}
	default:
		return nil, &UploadError{Status: http.StatusUnsupportedMediaType, Reason: fmt.Sprintf("media type %s is not an inventory this server reads; send %s", mt, acceptedMedia)}
	}
	u := &Upload{Format: format}
	switch format {
	case "bulkhead":
		err = u.decodeBulkhead(body)
	case "cyclonedx":
		u.Inventory, err = cyclonedx.Decode(bytes.NewReader(body))
	case "spdx":
		u.Inventory, err = spdx.Decode(bytes.NewReader(body))
	}
	if err != nil {
		var ue *UploadError
		if errors.As(err, &ue) {
			return nil, err
		}
		return nil, badUpload("malformed %s document: %v", format, err)
	}
	if u.Inventory == nil {
		return nil, badUpload("the %s document holds no inventory", format)
	}
	return u, nil
}

const acceptedMedia = MediaBulkhead + ", " + MediaCycloneDX + ", " + MediaSPDX + " or " + MediaJSON

// sniff tells the JSON documents apart by their marker fields.
func sniff(body []byte) (string, error) {
	var probe struct {
		BOMFormat     string          `json:"bomFormat"`
		SPDXVersion   string          `json:"spdxVersion"`
		SchemaVersion json.RawMessage `json:"schemaVersion"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return "", badUpload("the body is not a JSON object: %v", err)
	}
	switch {
	case strings.EqualFold(probe.BOMFormat, "CycloneDX"):
		return "cyclonedx", nil
	case strings.HasPrefix(probe.SPDXVersion, "SPDX-"):
		return "spdx", nil
	case probe.SchemaVersion != nil:
		return "bulkhead", nil
	}
	return "", badUpload("the JSON document is neither CycloneDX (bomFormat), SPDX (spdxVersion) nor a bulkhead report (schemaVersion)")
}

// bulkheadDoc is the part of bulkhead's JSON report an upload reads.
type bulkheadDoc struct {
	SchemaVersion int `json:"schemaVersion"`
	*inventory.Inventory
	Findings   []finding.Finding `json:"findings"`
	Provenance *store.Provenance `json:"provenance"`
}

// fastJSON decodes bulkhead reports: the standard-library-compatible
// json-iterator takes about a third of encoding/json's CPU for a
// 300-package report (encoding/json also scans the whole document once
// more to validate it first). It is used only on valid UTF-8 (encoding/json
// replaces invalid bytes with U+FFFD, json-iterator keeps them), and when
// it refuses a document, encoding/json decodes it again for its error
// message. FuzzDecodeBulkheadParity holds the two to the same results.
var fastJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// unmarshalBulkhead decodes body into a fresh document, with json-iterator
// when fast (and the body is valid UTF-8), else with encoding/json.
func unmarshalBulkhead(body []byte, fast bool) (*bulkheadDoc, error) {
	doc := &bulkheadDoc{Inventory: &inventory.Inventory{}}
	if fast && utf8.Valid(body) {
		if fastJSON.Unmarshal(body, doc) == nil {
			return doc, nil
		}
		doc = &bulkheadDoc{Inventory: &inventory.Inventory{}}
	}
	if err := json.Unmarshal(body, doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// decodeBulkhead reads bulkhead's JSON report (report.Document or
// report.ResultDocument).
func (u *Upload) decodeBulkhead(body []byte) error {
	doc, err := unmarshalBulkhead(body, true)
	if err != nil {
		return badUpload("malformed bulkhead report: %v", err)
	}
	if doc.SchemaVersion < 1 || doc.SchemaVersion > report.SchemaVersion {
		return badUpload("bulkhead report schemaVersion %d: this server reads version %d; use a client of the server's version", doc.SchemaVersion, report.SchemaVersion)
	}
	if doc.Target.Name == "" {
		return badUpload("the bulkhead report names no target (target.name)")
	}
	for i, p := range doc.Packages {
		if p.Name == "" || p.Type == "" {
			return badUpload("package %d has no name or type", i)
		}
	}
	for _, f := range doc.Findings {
		if f.Kind == finding.KindVulnerability {
			continue
		}
		if f.ID == "" || f.Kind == "" {
			return badUpload("a finding has no id or kind")
		}
		u.Findings = append(u.Findings, f)
	}
	if p := doc.Provenance; p != nil && (p.Base != nil || p.Signature != nil) {
		if p.Signature != nil {
			if !slices.Contains([]string{store.SignatureVerified, store.SignatureFailed, store.SignatureNoPolicy, store.SignatureNotChecked}, p.Signature.Status) {
				return badUpload("provenance.signature.status %q: use verified, failed, no-policy or not-checked", p.Signature.Status)
			}
			p.Signature.CheckedBy = store.CheckedByUpload
		}
		u.Provenance = p
	}
	u.Inventory = doc.Inventory
	return nil
}
