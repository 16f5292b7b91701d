package cli

import (
	"io"
	"sort"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
)

// encoder writes an inventory in one output format; color says whether the
// writer is a terminal that wants colour.
type encoder func(w io.Writer, inv *inventory.Inventory, color bool) error

// formats are the --format values; a new report format is one entry.
var formats = map[string]encoder{
	"table": func(w io.Writer, inv *inventory.Inventory, color bool) error {
		return report.Table(w, inv, report.Options{Color: color})
	},
	"json": func(w io.Writer, inv *inventory.Inventory, _ bool) error {
		return report.JSON(w, inv)
	},
	"cyclonedx": func(w io.Writer, inv *inventory.Inventory, _ bool) error {
		return cyclonedx.Encode(w, inv, sbom.Options{ToolVersion: Version})
	},
	"spdx-json": func(w io.Writer, inv *inventory.Inventory, _ bool) error {
		return spdx.Encode(w, inv, sbom.Options{ToolVersion: Version})
	},
}

func formatNames() []string {
	var out []string
	for k := range formats {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
