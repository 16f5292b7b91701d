package cli

import (
	"io"
	"sort"

	"github.com/bulkhead-sec/bulkhead/report"
	htmlreport "github.com/bulkhead-sec/bulkhead/report/html"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
)

// encoder writes a scan result in one output format; color says whether the
// writer is a terminal that wants colour.
type encoder func(w io.Writer, res *report.Result, color bool) error

// formats are the --format values; a new report format is one entry.
var formats = map[string]encoder{
	"table": func(w io.Writer, res *report.Result, color bool) error {
		return report.ResultTable(w, res, report.Options{Color: color})
	},
	"json": func(w io.Writer, res *report.Result, _ bool) error {
		if len(res.Scanners) == 0 {
			return report.JSON(w, res.Inventory)
		}
		return report.ResultJSON(w, res)
	},
	"sarif": func(w io.Writer, res *report.Result, _ bool) error {
		return report.SARIF(w, res, Version)
	},
	"cyclonedx": func(w io.Writer, res *report.Result, _ bool) error {
		if len(res.Scanners) == 0 {
			return cyclonedx.Encode(w, res.Inventory, sbom.Options{ToolVersion: Version})
		}
		return cyclonedx.EncodeWithVulnerabilities(w, res.Inventory, res.Findings, sbom.Options{ToolVersion: Version})
	},
	"html": func(w io.Writer, res *report.Result, _ bool) error {
		return htmlreport.Result(w, res, htmlreport.Options{ToolVersion: Version})
	},
	"spdx-json": func(w io.Writer, res *report.Result, _ bool) error {
		return spdx.Encode(w, res.Inventory, sbom.Options{ToolVersion: Version})
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
