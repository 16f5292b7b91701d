package sign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	intotov1 "github.com/in-toto/attestation/go/v1"
	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/common"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// Predicate types of cosign's --type names.
var predicateTypes = map[string]string{
	"custom":          "https://cosign.sigstore.dev/attestation/v1",
	"vuln":            "https://cosign.sigstore.dev/attestation/vuln/v1",
	"cyclonedx":       "https://cyclonedx.org/bom",
	"spdxjson":        "https://spdx.dev/Document",
	"openvex":         "https://openvex.dev/ns",
	"slsaprovenance":  "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1": "https://slsa.dev/provenance/v1",
}

// PredicateTypes lists the --type names.
func PredicateTypes() []string {
	out := make([]string, 0, len(predicateTypes))
	for k := range predicateTypes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PredicateType maps a --type name (or a predicate type URI) to the URI.
func PredicateType(typ string) (string, error) {
	if typ == "" {
		typ = "custom"
	}
	if u, ok := predicateTypes[typ]; ok {
		return u, nil
	}
	if strings.Contains(typ, "://") {
		return typ, nil
	}
	return "", fmt.Errorf("unknown attestation type %q; use one of %s or a predicate type URI", typ, strings.Join(PredicateTypes(), ", "))
}

// signStatement is the statement cosign v3 signs for an image: predicate
// type cosign sign/v1, an empty predicate, the annotations on the subject.
func signStatement(d name.Digest, annotations map[string]string) ([]byte, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	anns := make(map[string]any, len(annotations))
	for k, v := range annotations {
		anns[k] = v
	}
	sub := &intotov1.ResourceDescriptor{Digest: map[string]string{h.Algorithm: h.Hex}}
	if len(anns) > 0 {
		st, err := structpb.NewStruct(anns)
		if err != nil {
			return nil, fmt.Errorf("annotations: %w", err)
		}
		sub.Annotations = st
	}
	st := &intotov1.Statement{
		Type:          intotov1.StatementTypeUri,
		Subject:       []*intotov1.ResourceDescriptor{sub},
		PredicateType: CosignSignPredicateType,
		Predicate:     &structpb.Struct{},
	}
	return protojson.Marshal(st)
}

// vulnPredicate is cosign's vuln attestation predicate.
type vulnPredicate struct {
	Invocation struct {
		Parameters any    `json:"parameters"`
		URI        string `json:"uri"`
		EventID    string `json:"event_id"`
		BuilderID  string `json:"builder.id"`
	} `json:"invocation"`
	Scanner struct {
		URI     string `json:"uri"`
		Version string `json:"version"`
		DB      struct {
			URI     string `json:"uri"`
			Version string `json:"version"`
		} `json:"db"`
		Result json.RawMessage `json:"result"`
	} `json:"scanner"`
	Metadata struct {
		ScanStartedOn  time.Time `json:"scanStartedOn"`
		ScanFinishedOn time.Time `json:"scanFinishedOn"`
	} `json:"metadata"`
}

// StatementOptions say what goes into an attestation's statement.
type StatementOptions struct {
	// Type is a --type name or predicate type URI.
	Type string
	// Predicate is the predicate file's content.
	Predicate []byte
	// Now stamps custom and wrapped vuln predicates.
	Now time.Time
	// Scanner names the tool in a wrapped vuln predicate.
	ScannerURI, ScannerVersion string
}

// Statement builds the in-toto statement cosign attest makes for an image:
// an in-toto v0.1 statement whose subject is the repository at the digest.
// cyclonedx, spdxjson, openvex and URI types take the predicate JSON as it
// is; custom wraps the raw bytes as {"Data", "Timestamp"}; vuln takes
// cosign's vuln predicate, or wraps any other JSON report as its
// scanner.result.
func Statement(d name.Digest, o StatementOptions) ([]byte, string, error) {
	pt, err := PredicateType(o.Type)
	if err != nil {
		return nil, "", err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	var pred json.RawMessage
	switch pt {
	case predicateTypes["custom"]:
		pred, err = json.Marshal(map[string]string{"Data": string(o.Predicate), "Timestamp": o.Now.UTC().Format(time.RFC3339)})
	case predicateTypes["vuln"]:
		pred, err = vulnPredicateFrom(o)
	default:
		pred, err = compactJSON(o.Predicate)
	}
	if err != nil {
		return nil, "", fmt.Errorf("predicate for %s: %w", pt, err)
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, "", err
	}
	st := in_toto.Statement{
		StatementHeader: in_toto.StatementHeader{
			Type:          in_toto.StatementInTotoV01,
			PredicateType: pt,
			Subject:       []in_toto.Subject{{Name: d.Context().String(), Digest: common.DigestSet{h.Algorithm: h.Hex}}},
		},
		Predicate: pred,
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, "", err
	}
	return b, pt, nil
}

func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("predicate is not JSON: %w", err)
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, fmt.Errorf("predicate must be a JSON object")
	}
	return buf.Bytes(), nil
}

func vulnPredicateFrom(o StatementOptions) (json.RawMessage, error) {
	raw, err := compactJSON(o.Predicate)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Scanner *json.RawMessage `json:"scanner"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Scanner != nil {
		var vp vulnPredicate
		if err := json.Unmarshal(raw, &vp); err != nil {
			return nil, fmt.Errorf("not a cosign vuln predicate: %w", err)
		}
		return raw, nil
	}
	var vp vulnPredicate
	vp.Scanner.URI = o.ScannerURI
	vp.Scanner.Version = o.ScannerVersion
	vp.Scanner.Result = raw
	vp.Metadata.ScanStartedOn = o.Now.UTC()
	vp.Metadata.ScanFinishedOn = o.Now.UTC()
	return json.Marshal(vp)
}

// ParsedStatement is a decoded in-toto statement, its predicate kept as
// the signed bytes.
type ParsedStatement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name        string            `json:"name"`
		Digest      map[string]string `json:"digest"`
		Annotations map[string]any    `json:"annotations"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

// ParseStatement decodes an in-toto statement (v0.1 or v1) and checks
// that one subject is the image digest want.
func ParseStatement(b []byte, want v1.Hash) (*ParsedStatement, error) {
	var st ParsedStatement
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("payload is not an in-toto statement: %w", err)
	}
	if st.Type != in_toto.StatementInTotoV01 && st.Type != intotov1.StatementTypeUri {
		return nil, fmt.Errorf("statement type %q is not in-toto", st.Type)
	}
	if st.PredicateType == "" {
		return nil, fmt.Errorf("statement has no predicate type")
	}
	for _, s := range st.Subject {
		if s.Digest[want.Algorithm] == want.Hex {
			return &st, nil
		}
	}
	var got []string
	for _, s := range st.Subject {
		for a, h := range s.Digest {
			got = append(got, a+":"+h)
		}
	}
	return nil, fmt.Errorf("statement is about %v, not the image's %s (attestation copied from another image?)", got, want)
}

// subjectAnnotations are the annotations of the subject matching want.
func (st *ParsedStatement) subjectAnnotations(want v1.Hash) map[string]any {
	for _, s := range st.Subject {
		if s.Digest[want.Algorithm] == want.Hex {
			return s.Annotations
		}
	}
	return nil
}
