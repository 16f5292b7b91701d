package cli

import (
	"context"
	"errors"
	"slices"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// match uploads a local result (inventory and the findings of the local
// scanners) to bulkhead server and adds the server's vulnerability
// findings to it, filtered and suppressed with the local flags (vulns;
// nil when the vuln scanner was not asked for) exactly as a local match
// would: the report and the exit code are those of a local scan.
func (f *serverClientFlags) match(ctx context.Context, res *report.Result, vulns *pipeline.MatchOptions) error {
	c, err := client.New(f.url, client.Options{Token: f.tokenValue()})
	if err != nil {
		return err
	}
	rep, err := c.UploadResult(ctx, res, client.UploadOptions{})
	if err != nil {
		return err
	}
	if vulns == nil {
		return nil
	}
	opts, err := vulns.Load()
	if err != nil {
		return err
	}
	var fs []finding.Finding
	for _, fi := range rep.Findings {
		if fi.Kind == finding.KindVulnerability {
			fs = append(fs, fi)
		}
	}
	kept, warns := match.Suppress(fs, res.Inventory, opts)
	res.Findings = append(res.Findings, kept...)
	match.Sort(res.Findings)
	res.DB = rep.DB
	// The server's warnings (its matcher's notes) that are not the
	// inventory's own.
	for _, w := range rep.Inventory.Warnings {
		if !slices.Contains(res.Inventory.Warnings, w) && !slices.Contains(res.Warnings, w) {
			res.Warnings = append(res.Warnings, w)
		}
	}
	res.Diagnose(warns...)
	// The staleness check a local scan makes, on the data the server used.
	if res.DB != nil {
		age := vulndb.DataAge{Oldest: vulndb.Freshness{Ecosystem: res.DB.OldestEcosystem, AsOf: res.DB.UpdatedAt, Source: res.DB.Source}}
		if err := age.CheckAge(vulns.MaxAge); err != nil {
			var stale *vulndb.StaleError
			if errors.As(err, &stale) {
				res.Diagnose(stale.Diagnostic())
			} else {
				res.Warnings = append(res.Warnings, err.Error())
			}
		}
	}
	return nil
}
