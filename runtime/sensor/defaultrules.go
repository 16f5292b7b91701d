package sensor

import _ "embed"

// DefaultRules is Falco's stable ruleset (falcosecurity/rules
// rules/falco_rules.yaml at c72713ee2e6330195979124de4f656546ad1e0fd,
// Apache-2.0, see LICENSE-falco-rules.txt), the rules `bulkhead runtime`
// runs when no --rules is given.
//
//go:embed falco_rules.yaml
var DefaultRules []byte

// DefaultRulesName labels DefaultRules in diagnostics.
const DefaultRulesName = "falco_rules.yaml (bundled stable ruleset)"
