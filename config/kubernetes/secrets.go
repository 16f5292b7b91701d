package kubernetes

import (
	"encoding/base64"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// SecretValueFindings runs the secret scanner over the values of a
// committed Secret object: data values base64-decoded (base64 is not
// encryption), stringData values as written. Each match is a secret
// finding on the key's line, with the value redacted (secret.Redact);
// nothing of a value appears unredacted in a finding.
func SecretValueFindings(o *Object, sc *secret.Scanner) []finding.Finding {
	if typ, _ := o.Raw["type"].(string); typ == string(corev1.SecretTypeServiceAccountToken) {
		return nil
	}
	if sc == nil {
		sc = secret.Default()
	}
	var out []finding.Finding
	for _, field := range []string{"data", "stringData"} {
		m, _ := o.Raw[field].(map[string]any)
		for _, k := range sortedAnyKeys(m) {
			raw, _ := m[k].(string)
			if strings.TrimSpace(raw) == "" || isTemplated(raw) {
				continue
			}
			val, how := raw, ""
			if field == "data" {
				b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(raw), ""))
				switch {
				case err != nil:
					how = " (not valid base64: scanned as written)"
				case secret.IsBinary(b):
					continue // a keystore or other binary: no text rule applies
				default:
					val, how = string(b), " (base64-decoded)"
				}
			}
			path := Field(Field(o.Path, field), k)
			for _, mt := range sc.ValueMatches(k, val) {
				f := secret.NewFinding(o.File, mt)
				f.Location.StartLine, f.Location.EndLine = o.LineOf(path), 0
				f.Description = fmt.Sprintf("%s in Secret %s, %s.%s%s: %s", mt.Title, objectName(o), field, k, how, mt.Redacted)
				f.Fix = "Remove the Secret from the repository and rotate the value: anyone with the repository has it. Keep it in an external store (External Secrets Operator, Sealed Secrets, the Secrets Store CSI driver) or encrypt it (SOPS)."
				out = append(out, f)
			}
		}
	}
	return out
}

// ExternalSecretKinds are the objects of external secret stores: the
// External Secrets Operator, the Secrets Store CSI driver and
// sealed-secrets. They hold references or ciphertext, never a secret in
// clear: the good practice, never flagged. A pod that mounts a
// secrets-store.csi.k8s.io CSI volume is not flagged for it either.
var ExternalSecretKinds = map[string][]string{
	"external-secrets.io":            {"ExternalSecret", "ClusterExternalSecret", "SecretStore", "ClusterSecretStore", "PushSecret"},
	"secrets-store.csi.x-k8s.io":     {"SecretProviderClass"},
	"bitnami.com":                    {"SealedSecret"},
	"generators.external-secrets.io": nil,
}

// IsExternalSecretStore says whether o is an object of an external secret
// store (ExternalSecretKinds).
func IsExternalSecretStore(o *Object) bool {
	group, _, _ := strings.Cut(o.APIVersion, "/")
	kinds, ok := ExternalSecretKinds[group]
	if !ok {
		return false
	}
	if kinds == nil {
		return true
	}
	for _, k := range kinds {
		if k == o.Kind {
			return true
		}
	}
	return false
}

func base64Decode(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	return string(b), err
}
