package policy

import (
	"strings"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// MaxEcho is how much of a user-controlled string (an image reference, an
// object name) decision messages and logs repeat: a reference can be as
// long as the request allows (megabytes), and echoing it in every message
// would multiply it.
const MaxEcho = 256

// shortenIn replaces each long user-controlled string of subjects within
// msg by its Shorten form (errors from parsers and registries repeat the
// reference they failed on).
func shortenIn(msg string, subjects ...string) string {
	for _, s := range subjects {
		if len(s) > MaxEcho {
			msg = strings.ReplaceAll(msg, s, diag.Shorten(s, MaxEcho))
		}
	}
	return msg
}
