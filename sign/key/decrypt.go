package key

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

var randReader = rand.Reader

// decrypt opens go-securesystemslib's scrypt + secretbox envelope. The
// library refuses scrypt parameters other than its three known sets, so a
// hostile key file cannot make the KDF allocate gigabytes.
func decrypt(ciphertext, pass []byte) ([]byte, error) {
	der, err := encrypted.Decrypt(ciphertext, pass)
	if err == nil {
		return der, nil
	}
	// secretbox's authentication failure is the library's "decryption
	// failed" error: almost always the wrong password.
	if strings.Contains(err.Error(), "decryption failed") {
		return nil, errors.New("decrypt private key: wrong password (check COSIGN_PASSWORD)")
	}
	return nil, fmt.Errorf("decrypt private key: %w", err)
}
