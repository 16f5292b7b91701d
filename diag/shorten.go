package diag

import (
	"fmt"
	"unicode/utf8"
)

// Shorten returns s if it is at most max bytes, else its first bytes (cut
// on a rune boundary) with an ellipsis and the full length, so a reader
// sees that it was cut and by how much. Messages use it for every
// user-controlled string they repeat (references, object names, parser
// details), which can be as long as the input allows.
func Shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:cut], len(s))
}
