package jsonstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type item struct {
	Name  string            `json:"name"`
	Tags  []string          `json:"tags,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

type dep struct {
	Ref       string    `json:"ref"`
	DependsOn *[]string `json:"dependsOn,omitempty"`
}

type doc struct {
	Title string `json:"title"`
	// A decoy: keys named like the slots, deeper or in strings.
	Meta  map[string]any `json:"meta"`
	Items []item         `json:"items,omitempty"`
	Deps  []dep          `json:"dependencies"`
	Tail  []item         `json:"tail"`
}

func full(t *testing.T, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func each[T any](xs []T) func(func(any) error) error {
	return func(emit func(any) error) error {
		for i := range xs {
			if err := emit(&xs[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestWriteIdentical(t *testing.T) {
	items := []item{
		{Name: "a\n  \"items\": []", Tags: []string{"<&>", "x"}},
		{Name: "b", Attrs: map[string]string{"items": "[]", "z": "\u2028"}},
		{},
	}
	refs := []string{"r1", "r2 \"q\"", "r3\n      \"dependsOn\": ["}
	tail := []item{{Name: "t"}}
	for _, n := range []int{0, 1, 3} {
		want := doc{Title: "x", Meta: map[string]any{"items": []int{1}, "dependsOn": []any{}}, Items: items[:n], Tail: tail}
		r := refs[:n]
		want.Deps = []dep{{Ref: "root", DependsOn: &r}}
		skel := want
		if n > 0 {
			skel.Items = []item{{}}
		}
		one := []string{"placeholder"}
		skel.Deps = []dep{{Ref: "root", DependsOn: &one}}
		skel.Tail = nil
		skel.Tail = []item{}
		slots := []Slot{
			{Key: "tail", Depth: 1, Each: each(tail)}, // in any order
			{Key: "dependsOn", Depth: 3, Each: each(r)},
		}
		if n > 0 {
			// "items" is omitted when empty: a caller streams it only
			// when it has elements.
			slots = append(slots, Slot{Key: "items", Depth: 1, Each: each(items[:n])})
		}
		var b bytes.Buffer
		if err := Write(&b, skel, slots...); err != nil {
			t.Fatal(err)
		}
		if exp := full(t, want); !bytes.Equal(b.Bytes(), exp) {
			t.Errorf("n=%d: got\n%s\nwant\n%s", n, b.Bytes(), exp)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	none := func(func(any) error) error { return nil }
	var b bytes.Buffer
	if err := Write(&b, doc{}, Slot{Key: "items", Depth: 1, Each: none}); err == nil || !strings.Contains(err.Error(), "occurs 0 times") {
		t.Errorf("missing slot: %v", err)
	}
	if err := Write(&b, doc{}, Slot{Key: "title", Depth: 1, Each: none}); err == nil || !strings.Contains(err.Error(), "not an array") {
		t.Errorf("non-array slot: %v", err)
	}
	boom := errors.New("boom")
	if err := Write(&b, doc{Tail: []item{}}, Slot{Key: "tail", Depth: 1, Each: func(emit func(any) error) error { return boom }}); !errors.Is(err, boom) {
		t.Errorf("Each error: %v", err)
	}
	if err := Write(&b, doc{Tail: []item{}}, Slot{Key: "tail", Depth: 1, Each: func(emit func(any) error) error { return emit(func() {}) }}); err == nil {
		t.Error("no error for an element that does not encode")
	}
}
