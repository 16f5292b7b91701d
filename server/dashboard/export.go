package dashboard

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// exportFormat is the ?format= of a list view: "", "csv" or "json".
func (q *request) exportFormat() (string, error) {
	switch f := q.param("format"); f {
	case "", "csv", "json":
		return f, nil
	default:
		return "", badRequest("format=%q: use csv or json (or leave it out for the page)", f)
	}
}

// export writes a whole list as CSV or JSON, reading it batch by batch
// with next (an empty batch ends it), at most MaxExport rows. The rows
// stream out: a large export holds one batch in memory.
func export[T any](d *Dashboard, q *request, format, name string, header []string, row func(*T) []string, next func() ([]T, error)) error {
	h := q.w.Header()
	first, err := next()
	if err != nil {
		return err
	}
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="bulkhead-%s.%s"`, name, format))
	h.Set("Cache-Control", "no-store")
	serverTiming(q)
	q.w.WriteHeader(http.StatusOK)
	var cw *csv.Writer
	var enc *json.Encoder
	if format == "csv" {
		cw = csv.NewWriter(q.w)
		cw.Write(header)
	} else {
		q.w.Write([]byte("[\n"))
		enc = json.NewEncoder(q.w)
	}
	n := 0
	batch := first
	for len(batch) > 0 && n < d.opt.MaxExport {
		for i := range batch {
			if n >= d.opt.MaxExport {
				break
			}
			if cw != nil {
				cw.Write(csvSafe(row(&batch[i])))
			} else {
				if n > 0 {
					q.w.Write([]byte(","))
				}
				enc.Encode(&batch[i])
			}
			n++
		}
		if cw != nil {
			cw.Flush()
		}
		if batch, err = next(); err != nil {
			// The status is sent: end the file visibly broken rather
			// than silently short.
			d.opt.Logger.Error("dashboard: export", "list", name, "err", err)
			if cw != nil {
				cw.Write([]string{"# export failed: " + err.Error()})
				cw.Flush()
			}
			return nil
		}
	}
	if enc != nil {
		q.w.Write([]byte("]\n"))
	}
	return nil
}

// csvSafe defuses cells a spreadsheet would run as a formula (image
// data is hostile): a leading =, +, -, @, tab or CR gets a quote.
func csvSafe(cells []string) []string {
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			cells[i] = "'" + c
		}
	}
	return cells
}

// once makes a next function of one batch.
func once[T any](rows []T) func() ([]T, error) {
	done := false
	return func() ([]T, error) {
		if done {
			return nil, nil
		}
		done = true
		return rows, nil
	}
}
