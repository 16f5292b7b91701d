// Package jsonstream writes a large JSON document the way encoding/json
// would, indented by two spaces and without HTML escaping, but without ever
// holding the whole document: its long arrays are written one element at a
// time.
//
// The caller encodes a skeleton of the document in which each long array
// holds at most one placeholder element, and names those arrays as Slots;
// Write encodes the skeleton, then writes it out with each slot's array
// replaced by the elements its Each yields, each encoded alone. The bytes
// are identical to encoding the full document with json.Encoder
// (SetIndent("", "  "), SetEscapeHTML(false)), because encoding/json
// writes an array element the same way whether alone or nested, once
// given the element's indentation as prefix.
//
// A slot is found by its key at its depth: a newline, two spaces per level
// of depth, the quoted key and ": ". A raw newline never occurs inside an
// encoded JSON string, so this matches only a key of an object at that
// depth; Write fails unless it matches exactly once.
package jsonstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Slot is one array of the document, written element by element.
type Slot struct {
	// Key is the array's key; Depth the depth of the object holding it
	// (1 for a field of the top-level object).
	Key   string
	Depth int
	// Each calls emit with every element, in order. It returns emit's
	// error, if any, or its own.
	Each func(emit func(v any) error) error
}

// Write writes skeleton with its slots filled to w.
func Write(w io.Writer, skeleton any, slots ...Slot) error {
	var head bytes.Buffer
	enc := json.NewEncoder(&head)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(skeleton); err != nil {
		return err
	}
	doc := head.Bytes()

	type span struct {
		slot       *Slot
		start, end int // the array's bytes, "[" to "]"
		indent     string
	}
	spans := make([]span, 0, len(slots))
	for i := range slots {
		s := &slots[i]
		indent := strings.Repeat("  ", s.Depth)
		key := []byte("\n" + indent + strconv.Quote(s.Key) + ": ")
		if n := bytes.Count(doc, key); n != 1 {
			return fmt.Errorf("jsonstream: key %q at depth %d occurs %d times in the skeleton, want once", s.Key, s.Depth, n)
		}
		start := bytes.Index(doc, key) + len(key)
		end, err := arrayEnd(doc, start, indent)
		if err != nil {
			return fmt.Errorf("jsonstream: %q: %w", s.Key, err)
		}
		spans = append(spans, span{s, start, end, indent})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return fmt.Errorf("jsonstream: slot %q lies inside slot %q", spans[i].slot.Key, spans[i-1].slot.Key)
		}
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	var one bytes.Buffer
	el := json.NewEncoder(&one)
	el.SetEscapeHTML(false)
	at := 0
	for _, sp := range spans {
		bw.Write(doc[at:sp.start])
		prefix := sp.indent + "  "
		el.SetIndent(prefix, "  ")
		bw.WriteByte('[')
		n := 0
		err := sp.slot.Each(func(v any) error {
			one.Reset()
			if err := el.Encode(v); err != nil {
				return err
			}
			if n > 0 {
				bw.WriteByte(',')
			}
			n++
			bw.WriteString("\n")
			bw.WriteString(prefix)
			_, err := bw.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
			return err
		})
		if err != nil {
			return err
		}
		if n > 0 {
			bw.WriteString("\n")
			bw.WriteString(sp.indent)
		}
		bw.WriteByte(']')
		at = sp.end
	}
	bw.Write(doc[at:])
	return bw.Flush()
}

// arrayEnd returns the index just past the array that starts at doc[start],
// written by encoding/json with the given indentation of its key: "[]", or
// "[", its elements, a newline, indent and "]".
func arrayEnd(doc []byte, start int, indent string) (int, error) {
	rest := doc[start:]
	switch {
	case bytes.HasPrefix(rest, []byte("[]")):
		return start + 2, nil
	case bytes.HasPrefix(rest, []byte("[\n")):
		// Elements are indented deeper: the first line holding exactly
		// indent and "]" closes the array.
		closing := []byte("\n" + indent + "]")
		i := bytes.Index(rest, closing)
		if i < 0 {
			return 0, fmt.Errorf("unterminated array")
		}
		return start + i + len(closing), nil
	default:
		return 0, fmt.Errorf("value is not an array")
	}
}
