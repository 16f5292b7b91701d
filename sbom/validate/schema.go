// Package validate checks an SBOM: that it is valid against its format's
// published JSON schema (CycloneDX 1.4–1.7, SPDX 2.3; SPDX 2.2 documents
// fail the schema check until its schema is embedded), and that it is
// complete and faithful against what is really in the image it describes —
// packages missing from it, packages it lists that are not there, and
// versions that differ.
package validate

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// The schemas as their authors publish them (see schemas/SOURCES.md).
//
//go:embed schemas
var schemaFS embed.FS

// Formats.
const (
	CycloneDX = "CycloneDX"
	SPDX      = "SPDX"
)

// schemaFiles maps a format and spec version to its schema file; the other
// files of the directory are registered for relative $refs.
var schemaFiles = map[string]string{
	CycloneDX + " 1.4": "schemas/cyclonedx/bom-1.4.schema.json",
	CycloneDX + " 1.5": "schemas/cyclonedx/bom-1.5.schema.json",
	CycloneDX + " 1.6": "schemas/cyclonedx/bom-1.6.schema.json",
	CycloneDX + " 1.7": "schemas/cyclonedx/bom-1.7.schema.json",
	SPDX + " 2.3":      "schemas/spdx/spdx-2.3.schema.json",
}

// Supported lists the format versions with a schema, for messages.
func Supported() []string {
	var out []string
	for k := range schemaFiles {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrUnsupported is returned for a document of a format or version there is
// no schema for.
var ErrUnsupported = errors.New("unsupported SBOM format")

// Detect tells the format and spec version of a JSON SBOM.
func Detect(data []byte) (format, version string, err error) {
	var probe struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion any    `json:"specVersion"`
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", "", fmt.Errorf("the SBOM is not JSON: %w (CycloneDX and SPDX JSON are read)", err)
	}
	switch {
	case strings.EqualFold(probe.BOMFormat, CycloneDX):
		v, _ := probe.SpecVersion.(string)
		if v == "" {
			return CycloneDX, "", fmt.Errorf("%w: CycloneDX document without a specVersion string", ErrUnsupported)
		}
		return CycloneDX, v, nil
	case strings.HasPrefix(probe.SPDXVersion, "SPDX-"):
		return SPDX, strings.TrimPrefix(probe.SPDXVersion, "SPDX-"), nil
	}
	return "", "", fmt.Errorf("%w: neither CycloneDX (bomFormat) nor SPDX (spdxVersion) JSON", ErrUnsupported)
}

// SchemaResult is the outcome of schema validation.
type SchemaResult struct {
	// Schema names the schema checked against ("CycloneDX 1.6").
	Schema string `json:"schema"`
	Valid  bool   `json:"valid"`
	// Errors are "instance location: message" lines, at most MaxErrors.
	Errors []string `json:"errors,omitempty"`
	// More counts errors beyond MaxErrors.
	More int `json:"moreErrors,omitempty"`
}

// MaxErrors bounds the schema errors reported, maxLine each one's length.
const (
	MaxErrors = 50
	maxLine   = 300
)

var (
	compileMu sync.Mutex
	compiled  = map[string]*jsonschema.Schema{}
)

// schemaFor compiles (once) the schema for a format version.
func schemaFor(key string) (*jsonschema.Schema, error) {
	compileMu.Lock()
	defer compileMu.Unlock()
	if s, ok := compiled[key]; ok {
		return s, nil
	}
	file, ok := schemaFiles[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s (schemas: %s)", ErrUnsupported, key, strings.Join(Supported(), ", "))
	}
	c := jsonschema.NewCompiler()
	// Formats (date-time, iri-reference, email) are asserted: a document
	// that breaks them is invalid for consumers that check.
	c.AssertFormat()
	var mainURL string
	entries, err := fs.ReadDir(schemaFS, path.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("read embedded schemas: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := path.Dir(file) + "/" + e.Name()
		b, err := schemaFS.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read embedded schema %s: %w", p, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("embedded schema %s: %w", p, err)
		}
		// Each schema is registered under its file URL, so relative $refs
		// ("spdx.schema.json") resolve inside the embedded set, never over
		// the network; its $id (shared by SPDX versions) is not used.
		url := "file:///" + p
		if m, ok := doc.(map[string]any); ok {
			delete(m, "$id")
		}
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("embedded schema %s: %w", p, err)
		}
		if p == file {
			mainURL = url
		}
	}
	s, err := c.Compile(mainURL)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", file, err)
	}
	compiled[key] = s
	return s, nil
}

// Schema validates a JSON SBOM against the schema of its format version.
func Schema(data []byte) (SchemaResult, error) {
	format, version, err := Detect(data)
	if err != nil {
		return SchemaResult{}, err
	}
	key := format + " " + version
	res := SchemaResult{Schema: key}
	s, err := schemaFor(key)
	if err != nil {
		return res, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return res, fmt.Errorf("read SBOM JSON: %w", err)
	}
	err = s.Validate(inst)
	if err == nil {
		res.Valid = true
		return res, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return res, fmt.Errorf("validate against %s: %w", key, err)
	}
	seen := map[string]bool{}
	var leaves func(e *jsonschema.ValidationError, depth int)
	leaves = func(e *jsonschema.ValidationError, depth int) {
		// The leaves say what is wrong; the inner nodes only that a
		// sub-schema failed. Depth is bounded by the schema's nesting, a
		// guard keeps it so.
		if len(e.Causes) > 0 && depth < 64 {
			for _, c := range e.Causes {
				leaves(c, depth+1)
			}
			return
		}
		line := "/" + strings.Join(e.InstanceLocation, "/") + ": " + e.ErrorKind.LocalizedString(printer)
		if len(line) > maxLine {
			// Enums of every SPDX licence id make lines of kilobytes.
			line = line[:maxLine] + "..."
		}
		if seen[line] {
			return
		}
		seen[line] = true
		if len(res.Errors) >= MaxErrors {
			res.More++
			return
		}
		res.Errors = append(res.Errors, line)
	}
	leaves(ve, 0)
	if len(res.Errors) == 0 {
		res.Errors = []string{ve.Error()}
	}
	return res, nil
}
