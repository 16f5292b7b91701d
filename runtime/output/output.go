// Package output delivers rule alerts: Falco's JSON alert lines or text
// lines to a writer, a falcosidekick-compatible HTTP webhook that never
// blocks the caller, and Prometheus metrics of the sensor and the rules.
package output

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/bulkhead-sec/bulkhead/runtime/rules"
)

// Sink receives alerts.
type Sink interface {
	Alert(a *rules.Alert) error
}

// Writer writes alerts one per line, as Falco's json_output does ("json")
// or as its text output ("text": "time: Priority message").
type Writer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	json bool
}

// NewWriter returns a Writer for format "json" or "text".
func NewWriter(w io.Writer, format string) (*Writer, error) {
	switch format {
	case "json", "text":
	default:
		return nil, fmt.Errorf("output format %q: use json or text", format)
	}
	return &Writer{w: bufio.NewWriter(w), json: format == "json"}, nil
}

// Alert writes one alert line and flushes it: alerts are rare and a
// reader (tail -f, a log shipper) should see each one at once.
func (w *Writer) Alert(a *rules.Alert) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.json {
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode alert: %w", err)
		}
		w.w.Write(b)
	} else {
		w.w.WriteString(a.Output)
	}
	w.w.WriteByte('\n')
	return w.w.Flush()
}
