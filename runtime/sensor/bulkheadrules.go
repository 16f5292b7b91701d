package sensor

import _ "embed"

// BulkheadRules are bulkhead's own rules in Falco's format (drift from the
// image, package managers in containers, learned behaviour profiles),
// loaded before the others when drift detection or profiles are on.
//
//go:embed bulkhead_rules.yaml
var BulkheadRules []byte

// BulkheadRulesName labels BulkheadRules in diagnostics.
const BulkheadRulesName = "bulkhead_rules.yaml (bundled)"
