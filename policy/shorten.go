package policy

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxEcho is how much of a user-controlled string (an image reference, an
// object name) decision messages and logs repeat: a reference can be as
// long as the request allows (megabytes), and echoing it in every message
// would multiply it.
const MaxEcho = 256

// Shorten returns s if it is at most max bytes, else its first bytes (cut
// on a rune boundary) with an ellipsis and the full length, so a reader
// sees that it was cut and by how much.
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

// shortenIn replaces each long user-controlled string of subjects within
// msg by its Shorten form (errors from parsers and registries repeat the
// reference they failed on).
func shortenIn(msg string, subjects ...string) string {
	for _, s := range subjects {
		if len(s) > MaxEcho {
			msg = strings.ReplaceAll(msg, s, Shorten(s, MaxEcho))
		}
	}
	return msg
}
