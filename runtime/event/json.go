package event

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MarshalJSON writes the arguments as one JSON object, keeping their order.
func (a Args) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, arg := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(arg.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(arg.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an object of string values, keeping the key order.
// Numbers and booleans are accepted and kept in their JSON spelling, so a
// hand-written fixture may say "fd": 3.
func (a *Args) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		*a = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("args must be a JSON object of name: value")
	}
	var out Args
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		tok, err = dec.Token()
		if err != nil {
			return err
		}
		var val string
		switch v := tok.(type) {
		case string:
			val = v
		case json.Number:
			val = v.String()
		case bool:
			val = fmt.Sprint(v)
		case nil:
			val = ""
		default:
			return fmt.Errorf("arg %q: value must be a string, number or boolean", name)
		}
		out = append(out, Arg{Name: name, Value: val})
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*a = out
	return nil
}

// Marshal returns the event's one-line JSON form, the --record format.
func Marshal(ev *Event) ([]byte, error) {
	return json.Marshal(ev)
}

// DefaultMaxLine bounds one recorded event; real events are a few KB (argv
// and environment are truncated by the sensor), so 1 MiB leaves ample room
// while keeping a corrupt stream from exhausting memory.
const DefaultMaxLine = 1 << 20

// Reader streams events from a JSON-lines recording.
type Reader struct {
	sc      *bufio.Scanner
	line    int
	name    string
	maxLine int
}

// NewReader reads one JSON object per line from r. name labels errors (a
// file name, or "-" for stdin). Lines longer than maxLine bytes are an error;
// maxLine <= 0 means DefaultMaxLine.
func NewReader(r io.Reader, name string, maxLine int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64*1024, maxLine)), maxLine)
	return &Reader{sc: sc, name: name, maxLine: maxLine}
}

// Next decodes the next event into ev. It returns io.EOF at the end of the
// stream; blank lines are skipped. Errors name the line number.
func (r *Reader) Next(ev *Event) error {
	for r.sc.Scan() {
		r.line++
		line := bytes.TrimSpace(r.sc.Bytes())
		if len(line) == 0 {
			continue
		}
		*ev = Event{}
		if err := json.Unmarshal(line, ev); err != nil {
			return fmt.Errorf("%s:%d: decode event: %w", r.name, r.line, err)
		}
		if ev.Type == "" {
			return fmt.Errorf("%s:%d: event has no \"type\"; every recorded event needs its syscall name", r.name, r.line)
		}
		return nil
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: event line longer than the %d-byte limit; is this a bulkhead event recording?", r.name, r.line+1, r.maxLine)
		}
		return fmt.Errorf("%s:%d: read events: %w", r.name, r.line+1, err)
	}
	return io.EOF
}

// Line is the line number of the event last returned by Next.
func (r *Reader) Line() int { return r.line }

// ReadAll decodes every event of a recording.
func ReadAll(rd io.Reader, name string) ([]Event, error) {
	r := NewReader(rd, name, 0)
	var out []Event
	for {
		var ev Event
		err := r.Next(&ev)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}
