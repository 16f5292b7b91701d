package cli

import (
	"encoding/json"
	"io"
	"sort"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// encoder writes an inventory in one output format; tty says whether the
// writer is a terminal (colour).
type encoder func(w io.Writer, inv *inventory.Inventory, tty bool) error

// formats are the --format values; a new report format is one entry.
var formats = map[string]encoder{
	"json": func(w io.Writer, inv *inventory.Inventory, _ bool) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
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
