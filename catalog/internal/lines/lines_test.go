package lines

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func read(in string, max int) ([]string, *Reader) {
	r := NewReader(strings.NewReader(in), max)
	var out []string
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, r
		}
		out = append(out, string(l))
	}
}

func TestSkippedAndUnterminated(t *testing.T) {
	for _, tc := range []struct {
		in           string
		lines        int
		skipped      int
		unterminated bool
	}{
		{"a\nb\n", 2, 0, false},
		{"a\nb", 2, 0, true},
		{"a\r\nb\r", 2, 0, true},
		{"", 0, 0, false},
		{"a\n" + strings.Repeat("x", 100) + "\nb\n", 2, 1, false},
		{"a\n" + strings.Repeat("x", 100), 1, 1, true},
		// Over-long and ending exactly at a buffer boundary.
		{"a\n" + strings.Repeat("x", 64<<10), 1, 1, true},
	} {
		got, r := read(tc.in, 10)
		if len(got) != tc.lines || r.Skipped() != tc.skipped || r.Unterminated() != tc.unterminated {
			t.Errorf("%.20q: %d lines, %d skipped, unterminated %v; want %d, %d, %v", tc.in, len(got), r.Skipped(), r.Unterminated(), tc.lines, tc.skipped, tc.unterminated)
		}
	}
}
