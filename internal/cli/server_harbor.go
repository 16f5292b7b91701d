package cli

import (
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/harbor"
	"github.com/bulkhead-sec/bulkhead/server/harborscan"
)

// The Harbor adapter is mounted on every server: Harbor's Pluggable
// Scanner API at /api/v1/metadata, /api/v1/scan, /api/v1/scan/{id}/report,
// for tokens of role scan.
func init() {
	serverExtensions = append(serverExtensions, func() server.Extension {
		return harborscan.New(harborscan.Options{Harbor: harbor.Options{Scanner: harbor.Scanner{Version: Version}}})
	})
}
