package key

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestIsKMSAndRedact(t *testing.T) {
	for ref, want := range map[string]bool{
		"awskms:///alias/release": true, "awskms://localhost:4566/alias/x": true,
		"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k": true,
		"azurekms://vault.vault.azure.net/key":                    true,
		"hashivault://release":                                    true, "openbao://release": true,
		"cosign.key": false, "env://KEY": false, "k8s://ns/s": false, "awskms": false,
	} {
		if IsKMS(ref) != want {
			t.Errorf("IsKMS(%q) = %v", ref, !want)
		}
	}
	for ref, want := range map[string]string{
		"awskms://user:hunter2@localhost:4566/alias/x": "awskms://REDACTED@localhost:4566/alias/x",
		"awskms:///alias/x":                            "awskms:///alias/x",
		"hashivault://key":                             "hashivault://key",
		"awskms://a:b%zz@host/alias/x":                 "awskms://REDACTED@host/alias/x",
	} {
		if got := Redact(ref); got != want || strings.Contains(got, "hunter2") {
			t.Errorf("Redact(%q) = %q, want %q", ref, got, want)
		}
	}
}

// vaultDenied is a Vault that refuses the token, answering as Vault does
// (HTTP 403, {"errors":["permission denied"]}, the error form of Vault's
// HTTP API docs), and records what it was asked.
type vaultDenied struct {
	mu   sync.Mutex
	reqs []string
}

func (v *vaultDenied) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.reqs = append(v.reqs, r.Method+" "+r.URL.Path+" token="+r.Header.Get("X-Vault-Token"))
	v.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	w.Write([]byte(`{"errors":["permission denied"]}` + "\n"))
}

// A hashivault:// key goes to the transit engine's key endpoint with the
// token in X-Vault-Token, and a refused call names the key and Vault's
// answer but never the token, in the error or in the log.
func TestVaultErrorsCarryNoToken(t *testing.T) {
	const token = "hvs.bulkheadTestToken9c1f2e"
	vd := &vaultDenied{}
	srv := httptest.NewServer(vd)
	defer srv.Close()
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", token)
	t.Setenv("TRANSIT_SECRET_ENGINE_PATH", "")
	var logs bytes.Buffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)

	ctx := context.Background()
	var msgs []string
	_, err := LoadPrivate(ctx, "hashivault://release", nil)
	if err == nil {
		t.Fatal("a refused Vault key loaded")
	}
	msgs = append(msgs, err.Error())
	var ke *KMSError
	if !errors.As(err, &ke) || ke.Ref != "hashivault://release" {
		t.Fatalf("not a KMSError naming the key: %v", err)
	}
	if !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the error does not carry Vault's answer: %v", err)
	}
	if _, err := LoadPublic(ctx, "hashivault://release", nil); err == nil {
		t.Fatal("a refused Vault key gave a public key")
	} else {
		msgs = append(msgs, err.Error())
	}
	if _, err := GenerateKMS(ctx, "hashivault://release"); err == nil {
		t.Fatal("creating a key with a refused token succeeded")
	} else {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n") + logs.String()
	if strings.Contains(all, token) || strings.Contains(all, "bulkheadTestToken") {
		t.Fatalf("the Vault token appears in errors or logs:\n%s", all)
	}
	// The requests had the shape of sigstore's Vault provider: the token
	// in its header, the transit engine's paths.
	vd.mu.Lock()
	defer vd.mu.Unlock()
	want := map[string]bool{"GET /v1/transit/keys/release token=" + token: false, "PUT /v1/transit/keys/release token=" + token: false}
	for _, r := range vd.reqs {
		if _, ok := want[r]; ok {
			want[r] = true
		}
	}
	for r, seen := range want {
		if !seen {
			t.Errorf("Vault was not asked %q; it was asked %q", r, vd.reqs)
		}
	}
}
