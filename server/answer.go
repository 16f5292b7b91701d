package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
)

// encodedResult is an upload's inventory and findings encoded once: the
// store keeps the bytes (store.Scan.Encoded) and the answer is spliced
// from them, instead of encoding both twice (about 1 CPU-ms of an
// upload's ~17; BenchmarkUpload).
type encodedResult struct {
	inv                   *inventory.Inventory // as stored and answered: locations [] rather than null
	invJSON, findingsJSON []byte
}

// encodeResult encodes r's inventory as report.ResultJSONCompact writes it
// (every package's locations an array) and its findings.
func encodeResult(r *report.Result) (*encodedResult, error) {
	inv := *r.Inventory
	inv.Packages = make([]inventory.Package, len(r.Inventory.Packages))
	for i, p := range r.Inventory.Packages {
		if p.Locations == nil {
			p.Locations = []inventory.Location{}
		}
		inv.Packages[i] = p
	}
	fs := r.Findings
	if fs == nil {
		fs = []finding.Finding{}
	}
	e := &encodedResult{inv: &inv}
	var err error
	if e.invJSON, err = fastJSON.Marshal(&inv); err != nil {
		return nil, fmt.Errorf("encode the inventory: %w", err)
	}
	if len(e.invJSON) < 2 || e.invJSON[0] != '{' || e.invJSON[len(e.invJSON)-1] != '}' {
		return nil, fmt.Errorf("encode the inventory: not a JSON object")
	}
	if e.findingsJSON, err = fastJSON.Marshal(fs); err != nil {
		return nil, fmt.Errorf("encode the findings: %w", err)
	}
	return e, nil
}

// answer is the document report.ResultJSONCompact writes for r (whose
// inventory and findings e holds), its fields in the same order, spliced
// from e's bytes. Only for a result without warnings or diagnostics of its
// own (ResultJSONCompact adds those to the inventory's).
func (e *encodedResult) answer(r *report.Result) []byte {
	var b bytes.Buffer
	b.Grow(len(e.invJSON) + len(e.findingsJSON) + 256)
	b.WriteString(`{"schemaVersion":`)
	b.WriteString(strconv.Itoa(report.SchemaVersion))
	if len(e.invJSON) > 2 {
		b.WriteByte(',')
		b.Write(e.invJSON[1 : len(e.invJSON)-1])
	}
	// The small fields through encoding/json (no HTML escaping, as
	// ResultJSONCompact); the findings as encoded (a json.RawMessage
	// would be scanned and copied once more).
	small := func(key string, v any) {
		j, err := json.Marshal(v)
		if err != nil { // strings, a struct of strings and times, counts
			panic(fmt.Sprintf("encode the answer's %s: %v", key, err))
		}
		b.WriteString(`,"` + key + `":`)
		b.Write(j)
	}
	if len(r.Scanners) > 0 {
		small("scanners", r.Scanners)
	}
	if r.DB != nil {
		small("vulnerabilityDB", r.DB)
	}
	b.WriteString(`,"findings":`)
	b.Write(e.findingsJSON)
	small("summary", report.Summary(r.Findings))
	b.WriteByte('}')
	b.WriteByte('\n')
	return b.Bytes()
}
