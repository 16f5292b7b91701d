package sign

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TLogPolicy is the choice every verification makes about transparency-log
// (Rekor) entries, as sigstore-go's verifier is never built without one.
// The zero value is TLogRequired: a caller that says nothing gets the strict
// answer, so the CLI, the gate and the webhook cannot drift apart by
// forgetting to set it. Skipping the log is only ever TLogInsecureIgnore,
// written out (cosign's --insecure-ignore-tlog, a policy's
// transparencyLog: ignore).
//
// bulkhead cannot check Rekor entries yet, so under TLogRequired every
// signature and attestation is rejected with a *TLogError, the ones that
// carry an entry too (an entry that is not checked proves nothing).
type TLogPolicy int

const (
	// TLogRequired rejects what has no checked transparency-log entry.
	TLogRequired TLogPolicy = iota
	// TLogInsecureIgnore accepts key-based signatures and attestations
	// without looking at the transparency log.
	TLogInsecureIgnore
)

// TLog values as written in policy files.
const (
	TLogRequiredName = "required"
	TLogIgnoreName   = "ignore"
)

// ParseTLogPolicy reads a policy file's transparencyLog value: required or
// ignore. The empty string (no field) is required.
func ParseTLogPolicy(s string) (TLogPolicy, error) {
	switch s {
	case "", TLogRequiredName:
		return TLogRequired, nil
	case TLogIgnoreName:
		return TLogInsecureIgnore, nil
	}
	return TLogRequired, fmt.Errorf("transparencyLog %q: use %s (the default) or %s (accept key-based signatures without a transparency-log entry: insecure, write it only if you sign offline)", s, TLogRequiredName, TLogIgnoreName)
}

// String is the policy-file spelling.
func (p TLogPolicy) String() string {
	if p == TLogInsecureIgnore {
		return TLogIgnoreName
	}
	return TLogRequiredName
}

// Ignored reports whether the transparency log is skipped.
func (p TLogPolicy) Ignored() bool { return p == TLogInsecureIgnore }

// TLogError rejects a signature or attestation that verified with the key
// because the transparency log is required and bulkhead cannot check it.
type TLogError struct {
	// HasEntry says the signature carries a transparency-log entry
	// (unchecked).
	HasEntry bool
}

func (e *TLogError) Error() string {
	what := "it has no transparency-log entry (signed offline, as with --tlog-upload=false)"
	if e.HasEntry {
		what = "it carries a transparency-log (Rekor) entry, which bulkhead cannot check yet"
	}
	return what + ", and the transparency log is required; to accept key-based signatures without it, say so explicitly: --insecure-ignore-tlog=true on the command line, transparencyLog: ignore in the policy rule"
}

// cosignRekorAnnotation holds the Rekor bundle of a legacy signature or
// attestation layer made with a transparency log.
const cosignRekorAnnotation = "dev.sigstore.cosign/bundle"

// check is the transparency-log verdict on one signature that verified.
func (p TLogPolicy) check(hasEntry bool) error {
	if p.Ignored() {
		return nil
	}
	return &TLogError{HasEntry: hasEntry}
}

// legacyHasTLog reports whether a legacy layer carries a Rekor bundle.
func legacyHasTLog(d v1.Descriptor) bool { return d.Annotations[cosignRekorAnnotation] != "" }
