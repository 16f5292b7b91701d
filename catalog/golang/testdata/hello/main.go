// Command hello is built by the tests into real Go binaries: it links modules
// from the module proxy, one replaced by an older version, one by a fork
// under another path, one (at one version only) by another version, and one
// by a local directory.
package main

import (
	"fmt"

	"example.com/local"
	"github.com/dgrijalva/jwt-go"
	"github.com/google/uuid"
	"github.com/pkg/errors"
	"golang.org/x/xerrors"
)

func main() {
	fmt.Println(uuid.NewString(), errors.New("e"), xerrors.New("x"), jwt.ErrInvalidKey, local.Name)
}
