// Package all lists every cataloger bulkhead runs by default. A new
// ecosystem is one line here.
package all

import (
	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/apk"
	"github.com/bulkhead-sec/bulkhead/catalog/dotnet"
	"github.com/bulkhead-sec/bulkhead/catalog/dpkg"
	"github.com/bulkhead-sec/bulkhead/catalog/golang"
	"github.com/bulkhead-sec/bulkhead/catalog/java"
	"github.com/bulkhead-sec/bulkhead/catalog/npm"
	"github.com/bulkhead-sec/bulkhead/catalog/php"
	"github.com/bulkhead-sec/bulkhead/catalog/python"
	"github.com/bulkhead-sec/bulkhead/catalog/rpm"
	"github.com/bulkhead-sec/bulkhead/catalog/ruby"
	"github.com/bulkhead-sec/bulkhead/catalog/rust"
)

// Catalogers returns a fresh set of the default catalogers.
func Catalogers() []catalog.Cataloger {
	return []catalog.Cataloger{
		apk.New(),
		dpkg.New(),
		rpm.New(),
		npm.New(),
		npm.NewManifest(),
		npm.NewLock(),
		ruby.New(),
		ruby.NewLock(),
		python.New(),
		python.NewLock(),
		java.New(),
		java.NewLock(),
		golang.NewBinary(),
		golang.NewLock(),
		rust.NewLock(),
		rust.NewBinary(),
		php.NewLock(),
		php.NewInstalled(),
		dotnet.NewDeps(),
		dotnet.NewLock(),
	}
}
