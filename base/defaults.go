package base

import (
	_ "embed"
	"strings"
)

//go:embed defaults.txt
var defaultsTxt string

// Scratch is the reference of the empty image.
const Scratch = "scratch"

// Defaults are the common minimal and hardened bases that `base index
// --defaults` indexes when their registries answer.
func Defaults() []string {
	var out []string
	for _, l := range strings.Split(defaultsTxt, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
