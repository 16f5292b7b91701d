package report

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
)

// InformationURI is the project's home, shown by SARIF viewers.
const InformationURI = "https://github.com/bulkhead-sec/bulkhead"

// securitySeverity is the numeric rating GitHub code scanning reads from a
// rule's "security-severity" property when no CVSS score is known.
var securitySeverity = map[finding.Severity]float64{
	finding.Critical: 9.5,
	finding.High:     8.0,
	finding.Medium:   5.5,
	finding.Low:      2.0,
	finding.Unknown:  0.0,
}

func sarifLevel(s finding.Severity) string {
	switch s {
	case finding.Critical, finding.High:
		return "error"
	case finding.Medium:
		return "warning"
	}
	return "note"
}

// SARIF writes the findings as a SARIF 2.1.0 log, one rule per finding id,
// in the shape GitHub code scanning accepts. Suppressed findings are written
// with a suppression (VEX or ignore file) so viewers show them as such.
func SARIF(w io.Writer, r *Result, toolVersion string) error {
	if r == nil || r.Inventory == nil {
		return fmt.Errorf("write SARIF: no result")
	}
	log, err := sarif.New(sarif.Version210)
	if err != nil {
		return err
	}
	run := sarif.NewRunWithInformationURI("bulkhead", InformationURI)
	run.Tool.Driver.Version = &toolVersion
	run.Tool.Driver.FullName = strPtr("bulkhead container security scanner")

	each := r.each
	if r.Store != nil {
		r.Store.Sort()
	} else {
		fs := append([]finding.Finding(nil), r.Findings...)
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].ID < fs[j].ID })
		each = (&Result{Inventory: r.Inventory, Findings: fs}).each
	}
	// First pass: the rules and the files (few); the results (maybe
	// millions) are written one at a time in the second.
	rules := map[string]int{}
	artifacts := map[string]bool{}
	each(func(f *finding.Finding) error {
		if _, ok := rules[f.ID]; !ok {
			rule := run.AddRule(f.ID).
				WithName(ruleName(*f)).
				WithShortDescription(sarif.NewMultiformatMessageString(orDefault(f.Title, f.ID))).
				WithFullDescription(sarif.NewMultiformatMessageString(orDefault(truncate(f.Description, 2000), orDefault(f.Title, f.ID)))).
				WithHelp(sarif.NewMultiformatMessageString(help(*f)).WithMarkdown(helpMarkdown(*f)))
			if len(f.References) > 0 {
				rule.WithHelpURI(f.References[0])
			}
			score := securitySeverity[f.Severity]
			for _, c := range f.CVSS {
				if c.Score > 0 {
					score = c.Score
					break
				}
			}
			pb := sarif.NewPropertyBag()
			pb.Add("security-severity", fmt.Sprintf("%.1f", score))
			pb.Add("tags", []string{"security", string(f.Kind), f.Severity.String()})
			pb.Add("precision", "very-high")
			rule.AttachPropertyBag(pb)
			rule.WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(sarifLevel(f.Severity)))
			rules[f.ID] = len(run.Tool.Driver.Rules) - 1
		}
		if uri, _ := sarifLocation(r, *f); !artifacts[uri] {
			artifacts[uri] = true
			run.AddDistinctArtifact(uri)
		}
		return nil
	})
	addNotifications(run, r.AllDiagnostics())
	log.AddRun(run)
	head, err := json.MarshalIndent(log, "", "  ")
	if err != nil {
		return fmt.Errorf("write SARIF: %w", err)
	}
	const slot = "\n      \"results\": []"
	i := bytes.Index(head, []byte(slot))
	if i < 0 {
		return fmt.Errorf("write SARIF: no results slot")
	}
	i += len(slot) - 1
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head[:i])
	n := 0
	err = each(func(f *finding.Finding) error {
		uri, region := sarifLocation(r, *f)
		res := sarif.NewRuleResult(f.ID).
			WithRuleIndex(rules[f.ID]).
			WithLevel(sarifLevel(f.Severity)).
			WithMessage(sarif.NewTextMessage(message(*f)))
		loc := sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation(uri)).WithRegion(region)
		res.AddLocation(sarif.NewLocationWithPhysicalLocation(loc))
		if f.Suppressed != nil {
			just := strings.TrimSpace(strings.Join([]string{f.Suppressed.Kind, f.Suppressed.Status, f.Suppressed.Justification, f.Suppressed.Statement}, " "))
			// go-sarif v2 writes unset suppression fields as null, which the
			// schema rejects: fill them all.
			res.AddSuppression(sarif.NewSuppression("external").
				WithJustifcation(just).
				WithStatus("accepted").
				WithGuid(guid(f.ID + "\x00" + uri + "\x00" + message(*f))).
				WithLocation(sarif.NewLocationWithPhysicalLocation(loc)))
		}
		b, err := json.MarshalIndent(res, "        ", "  ")
		if err != nil {
			return err
		}
		if n > 0 {
			bw.WriteByte(',')
		}
		n++
		bw.WriteString("\n        ")
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("write SARIF: %w", err)
	}
	if n > 0 {
		bw.WriteString("\n      ")
	}
	bw.Write(head[i:])
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write SARIF: %w", err)
	}
	return nil
}

func strPtr(s string) *string { return &s }

// guid derives a stable GUID from a string.
func guid(s string) string {
	h := sha256.Sum256([]byte(s))
	// A name-based (version 5 style) UUID: version and variant bits set.
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func orDefault(s, d string) string {
	if strings.TrimSpace(s) == "" {
		return d
	}
	return s
}

func ruleName(f finding.Finding) string {
	switch f.Kind {
	case finding.KindVulnerability:
		return "Vulnerability"
	case finding.KindSecret:
		return "Secret"
	}
	return "Misconfiguration"
}

// sarifLocation is the file a finding is in: the package database or
// lockfile for a vulnerability (relative to the image root), the file and
// lines for a misconfiguration or secret.
func sarifLocation(r *Result, f finding.Finding) (string, *sarif.Region) {
	region := sarif.NewSimpleRegion(1, 1)
	path := ""
	switch {
	case f.Location != nil:
		path = f.Location.Path
		if f.Location.StartLine > 0 {
			end := f.Location.EndLine
			if end < f.Location.StartLine {
				end = f.Location.StartLine
			}
			region = sarif.NewSimpleRegion(f.Location.StartLine, end)
		}
	case f.Package != nil && f.Package.Path != "":
		path = f.Package.Path
	}
	if path == "" {
		path = r.Inventory.Target.Name
	}
	return strings.TrimPrefix(path, "/"), region
}

func message(f finding.Finding) string {
	if f.Kind == finding.KindVulnerability && f.Package != nil {
		msg := fmt.Sprintf("Package: %s\nInstalled version: %s\nVulnerability: %s\nSeverity: %s", f.Package.Name, f.Package.Version, f.ID, f.Severity)
		if len(f.FixedVersions) > 0 {
			msg += "\nFixed version: " + strings.Join(f.FixedVersions, ", ")
		} else {
			msg += "\nFixed version: none yet"
		}
		if f.Package.Layer != nil && f.Package.Layer.DiffID != "" {
			msg += "\nLayer: " + f.Package.Layer.DiffID
		}
		return msg
	}
	// A misconfiguration's description says where and who (the container,
	// the subjects holding an RBAC role): the rule's text is shared by
	// every result, so it goes in each result's message.
	if f.Kind == finding.KindMisconfiguration && f.Description != "" && f.Description != f.Title {
		return orDefault(f.Title, f.ID) + "\n" + truncate(f.Description, 2000)
	}
	return orDefault(f.Title, f.ID)
}

func help(f finding.Finding) string {
	s := f.ID + ": " + orDefault(f.Title, "")
	if f.Fix != "" {
		s += "\nFix: " + f.Fix
	}
	if len(f.References) > 0 {
		s += "\n" + strings.Join(f.References, "\n")
	}
	return s
}

func helpMarkdown(f finding.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** (%s)\n\n%s\n", f.ID, f.Severity, orDefault(f.Title, ""))
	if len(f.Aliases) > 0 {
		fmt.Fprintf(&b, "\nAliases: %s\n", strings.Join(f.Aliases, ", "))
	}
	if f.Fix != "" {
		fmt.Fprintf(&b, "\nFix: %s\n", f.Fix)
	}
	for _, ref := range f.References {
		fmt.Fprintf(&b, "\n- %s", ref)
	}
	return b.String()
}

// notificationLevel is a diagnostic severity as a SARIF notification level.
func notificationLevel(s diag.Severity) string {
	switch s {
	case diag.Error:
		return "error"
	case diag.Info:
		return "note"
	}
	return "warning"
}

// addNotifications records the run's diagnostics as SARIF 2.1.0 tool
// execution notifications (§3.20.21) of one invocation, each with its
// level and a descriptor (§3.58.2) naming its code among the driver's
// notification descriptors (§3.19.24). The invocation is always written:
// executionSuccessful is required, and a scan that produced a report ran.
func addNotifications(run *sarif.Run, ds []diag.Diagnostic) {
	inv := sarif.NewInvocation().WithExecutionSuccess(true)
	index := map[diag.Code]int{}
	for _, d := range ds {
		code := d.Code
		if code == "" {
			code = diag.Unclassified
		}
		i, ok := index[code]
		if !ok {
			i = len(run.Tool.Driver.Notifications)
			index[code] = i
			run.Tool.Driver.AddNotification(sarif.NewRule(string(code)).
				WithShortDescription(sarif.NewMultiformatMessageString(string(code))))
		}
		n := sarif.NewNotification().
			WithLevel(notificationLevel(d.Severity)).
			WithMessage(sarif.NewTextMessage(d.Message)).
			WithDescriptor(sarif.NewReportingDescriptorReference().WithId(string(code)).WithIndex(i))
		if loc := d.Location; !loc.IsZero() {
			l := sarif.NewLocation()
			if loc.Path != "" {
				pl := sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation(strings.TrimPrefix(loc.Path, "/")))
				if loc.Line > 0 {
					pl.WithRegion(sarif.NewSimpleRegion(loc.Line, loc.Line))
				}
				l.WithPhysicalLocation(pl)
			}
			var logical []string
			if loc.Layer != "" {
				logical = append(logical, "layer "+loc.Layer)
			}
			if loc.Object != "" {
				logical = append(logical, loc.Object)
			}
			if len(logical) > 0 {
				l.WithLogicalLocations([]*sarif.LogicalLocation{sarif.NewLogicalLocation().WithFullyQualifiedName(strings.Join(logical, " "))})
			}
			n.WithLocations([]*sarif.Location{l})
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	run.AddInvocations(inv)
}
