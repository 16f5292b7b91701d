// Package all lists every cataloger bulkhead runs by default. A new
// ecosystem is one line here.
package all

import (
	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/apk"
	"github.com/bulkhead-sec/bulkhead/catalog/dpkg"
	"github.com/bulkhead-sec/bulkhead/catalog/rpm"
)

// Catalogers returns a fresh set of the default catalogers.
func Catalogers() []catalog.Cataloger {
	return []catalog.Cataloger{
		apk.New(),
		dpkg.New(),
		rpm.New(),
	}
}
