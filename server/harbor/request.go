// Package harbor is Harbor's Pluggable Scanner API v1.2
// (goharbor/pluggable-scanner-spec), so that a Harbor registry can use
// bulkhead as its scanner:
//
//	GET  /api/v1/metadata                 the scanner and its capabilities
//	POST /api/v1/scan                     accept a scan request (202 + id)
//	GET  /api/v1/scan/{id}/report         302 + Refresh-After while pending,
//	                                      200 + the report in the Accept type
//
// The package speaks the protocol only: a Backend (the server's queue and
// store) runs the scans with the application layer's pipeline and keeps
// the results. The credentials a scan request carries (Harbor's robot
// account for its registry) are handed to the backend, never logged and
// never echoed in a response.
package harbor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Media types of the spec (v1.2).
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

	MediaTypeMetadata10     = "application/vnd.scanner.adapter.metadata+json; version=1.0"
	MediaTypeMetadata11     = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	MediaTypeScanRequest10  = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
	MediaTypeScanRequest11  = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
	MediaTypeScanResponse   = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	MediaTypeError          = "application/vnd.scanner.adapter.error+json; version=1.0"
	MediaTypeVulnReport     = "application/vnd.security.vulnerability.report; version=1.1"
	MediaTypeVulnReportHarb = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	MediaTypeSBOMReport     = "application/vnd.security.sbom.report+json; version=1.0"

	// SBOM formats (the sbom_media_type query parameter, sbom_media_types).
	SBOMSPDX      = "application/spdx+json"
	SBOMCycloneDX = "application/vnd.cyclonedx+json"

	CapabilityVulnerability = "vulnerability"
	CapabilitySBOM          = "sbom"
)

// MaxRequestBytes bounds a scan request's body; Harbor's are a few hundred
// bytes.
const MaxRequestBytes = 1 << 20

var (
	consumes       = []string{MediaTypeOCIManifest, MediaTypeDockerManifest}
	vulnProduces   = []string{MediaTypeVulnReport, MediaTypeVulnReportHarb}
	sbomProduces   = []string{MediaTypeSBOMReport}
	sbomMediaTypes = []string{SBOMSPDX, SBOMCycloneDX}
)

// ScanRequest is the spec's ScanRequest.
type ScanRequest struct {
	Registry            Registry     `json:"registry"`
	Artifact            Artifact     `json:"artifact"`
	EnabledCapabilities []Capability `json:"enabled_capabilities,omitempty"`
}

// Registry is where to pull the artifact from. Authorization is the HTTP
// Authorization header to send to it ("Basic ..." or "Bearer ..."); the
// type's String, GoString and LogValue never show it.
type Registry struct {
	URL           string `json:"url"`
	Authorization string `json:"authorization,omitempty"`
}

// String shows the URL only, so a logged or printed request leaks no
// credential.
func (r Registry) String() string {
	if r.Authorization == "" {
		return r.URL
	}
	return r.URL + " (authorization redacted)"
}

// GoString is String, for %#v.
func (r Registry) GoString() string { return "harbor.Registry{" + r.String() + "}" }

// LogValue keeps the credential out of structured logs.
func (r Registry) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", r.URL), slog.Bool("authorization", r.Authorization != ""))
}

// Format prints the redacted form whatever the verb (%v, %+v, %s, %q).
func (r Registry) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", r.String())
		return
	}
	io.WriteString(f, r.String())
}

// Artifact is the spec's Artifact.
type Artifact struct {
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Tag        string `json:"tag,omitempty"`
	MimeType   string `json:"mime_type,omitempty"`
}

// Capability is one entry of enabled_capabilities.
type Capability struct {
	Type              string          `json:"type"`
	ProducesMimeTypes []string        `json:"produces_mime_types,omitempty"`
	Parameters        *SBOMParameters `json:"parameters,omitempty"`
}

// SBOMParameters are an sbom capability's parameters.
type SBOMParameters struct {
	SBOMMediaTypes []string `json:"sbom_media_types,omitempty"`
}

// RequestError is a scan request the adapter cannot take; Status is the
// spec's answer (400 malformed JSON or wrong value types, 422 an invalid
// field, 501 a capability or artifact type the scanner lacks).
type RequestError struct {
	Status int
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

func badRequest(format string, a ...any) error {
	return &RequestError{Status: 400, Msg: fmt.Sprintf(format, a...)}
}
func invalid(format string, a ...any) error {
	return &RequestError{Status: 422, Msg: fmt.Sprintf(format, a...)}
}
func unsupported(format string, a ...any) error {
	return &RequestError{Status: 501, Msg: fmt.Sprintf(format, a...)}
}

// DecodeScanRequest reads and checks a scan request body (at most
// MaxRequestBytes). Errors are *RequestError.
func DecodeScanRequest(r io.Reader) (ScanRequest, error) {
	var req ScanRequest
	body, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return req, badRequest("read the scan request: %v", err)
	}
	if len(body) > MaxRequestBytes {
		return req, badRequest("scan request over %d bytes", MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return ScanRequest{}, badRequest("scan request: field %q must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return ScanRequest{}, badRequest("scan request is not valid JSON: %v", err)
	}
	if dec.More() {
		return ScanRequest{}, badRequest("scan request: data after the JSON object")
	}
	req.normalize()
	if err := req.Validate(); err != nil {
		return ScanRequest{}, err
	}
	return req, nil
}

// normalize makes empty lists nil, so that an empty enabled_capabilities
// means all capabilities, as an absent one does, and a request reads the
// same after a round trip (the server's queue stores it).
func (req *ScanRequest) normalize() {
	if len(req.EnabledCapabilities) == 0 {
		req.EnabledCapabilities = nil
	}
	for i := range req.EnabledCapabilities {
		c := &req.EnabledCapabilities[i]
		if len(c.ProducesMimeTypes) == 0 {
			c.ProducesMimeTypes = nil
		}
		if c.Parameters != nil && len(c.Parameters.SBOMMediaTypes) == 0 {
			c.Parameters.SBOMMediaTypes = nil
		}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	}
	return goKind
}

// Validate checks the fields: a registry URL (http or https, host only),
// a repository, a digest, a supported artifact type, known capabilities
// and SBOM formats, and an Authorization of the Basic or Bearer scheme.
func (req *ScanRequest) Validate() error {
	if req.Registry.URL == "" {
		return invalid("registry.url is required")
	}
	if _, _, err := req.Registry.host(); err != nil {
		return err
	}
	if _, err := req.Registry.Auth(); err != nil {
		return err
	}
	a := req.Artifact
	if a.Repository == "" {
		return invalid("artifact.repository is required")
	}
	if _, err := name.NewRepository(a.Repository); err != nil {
		return invalid("artifact.repository %q: %v", a.Repository, err)
	}
	if a.Digest == "" {
		return invalid("artifact.digest is required (the manifest digest, sha256:...)")
	}
	if _, err := v1.NewHash(a.Digest); err != nil {
		return invalid("artifact.digest %q: %v", a.Digest, err)
	}
	if a.Tag != "" {
		if _, err := name.NewTag("x:" + a.Tag); err != nil {
			return invalid("artifact.tag %q: %v", a.Tag, err)
		}
	}
	if a.MimeType != "" && !slices.Contains(consumes, a.MimeType) {
		return unsupported("artifact.mime_type %q cannot be scanned; supported: %s", a.MimeType, strings.Join(consumes, ", "))
	}
	for i, c := range req.EnabledCapabilities {
		var produces []string
		switch c.Type {
		case CapabilityVulnerability:
			produces = vulnProduces
			if c.Parameters != nil && len(c.Parameters.SBOMMediaTypes) > 0 {
				return invalid("enabled_capabilities[%d]: sbom_media_types given for a vulnerability capability", i)
			}
		case CapabilitySBOM:
			produces = sbomProduces
			if c.Parameters != nil {
				for _, mt := range c.Parameters.SBOMMediaTypes {
					if !slices.Contains(sbomMediaTypes, mt) {
						return invalid("enabled_capabilities[%d].parameters.sbom_media_types: %q is not one of %s", i, mt, strings.Join(sbomMediaTypes, ", "))
					}
				}
			}
		case "":
			return invalid("enabled_capabilities[%d].type is required (vulnerability or sbom)", i)
		default:
			return invalid("enabled_capabilities[%d].type %q is not vulnerability or sbom", i, c.Type)
		}
		for _, mt := range c.ProducesMimeTypes {
			if !slices.Contains(produces, mt) {
				return unsupported("enabled_capabilities[%d]: bulkhead does not produce %q for %s; it produces %s", i, mt, c.Type, strings.Join(produces, ", "))
			}
		}
	}
	return nil
}

// host returns the registry's host[:port] and whether it is plain HTTP.
func (r Registry) host() (string, bool, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		// url.Parse's error quotes the URL, which holds no credential
		// unless userinfo was put there; say it without the value.
		return "", false, invalid("registry.url is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, invalid("registry.url: scheme must be http or https (as in https://core.harbor.domain)")
	}
	if u.User != nil {
		return "", false, invalid("registry.url must not hold credentials; send them in registry.authorization")
	}
	if u.Host == "" {
		return "", false, invalid("registry.url has no host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false, invalid("registry.url must be the registry's base URL (scheme and host), not %s", u.Redacted())
	}
	if _, err := name.NewRegistry(u.Host); err != nil {
		return "", false, invalid("registry.url host %q: %v", u.Host, err)
	}
	return u.Host, u.Scheme == "http", nil
}

// Reference is the artifact to pull: host/repository@digest (the tag is
// informational; the digest pins what is scanned). PlainHTTP says the
// registry URL was http://.
func (req *ScanRequest) Reference() (ref string, plainHTTP bool, err error) {
	h, plain, err := req.Registry.host()
	if err != nil {
		return "", false, err
	}
	return h + "/" + req.Artifact.Repository + "@" + req.Artifact.Digest, plain, nil
}

// Auth turns the Authorization header into a credential for the
// registry: Basic gives a username and password (go-containerregistry
// exchanges them for a token if the registry asks), Bearer a registry
// token; none is anonymous. The error never quotes the value.
func (r Registry) Auth() (authn.Authenticator, error) {
	if r.Authorization == "" {
		return authn.Anonymous, nil
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Authorization), " ")
	cred = strings.TrimSpace(cred)
	if !ok || cred == "" {
		return nil, invalid("registry.authorization must be \"Basic <base64 user:password>\" or \"Bearer <token>\"")
	}
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, invalid("registry.authorization: the Basic credentials are not base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, invalid("registry.authorization: the Basic credentials are not user:password")
		}
		return &authn.Basic{Username: user, Password: pass}, nil
	case "bearer":
		return &authn.Bearer{Token: cred}, nil
	}
	// The scheme is not quoted: a header without one starts with the secret.
	return nil, invalid("registry.authorization: the scheme is not Basic or Bearer")
}

// Wants reports whether the request enables capability typ (no
// enabled_capabilities: all of them, as the spec says).
func (req *ScanRequest) Wants(typ string) bool {
	if len(req.EnabledCapabilities) == 0 {
		return true
	}
	for _, c := range req.EnabledCapabilities {
		if c.Type == typ {
			return true
		}
	}
	return false
}
