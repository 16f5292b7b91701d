package dashboard

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

var funcs = template.FuncMap{
	"sevClass": func(s finding.Severity) string {
		if s < 0 {
			return "none"
		}
		return strings.ToLower(s.String())
	},
	"sevName":  sevName,
	"short":    shortDigest,
	"ts":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join":     strings.Join,
	"imageURL": func(digest string) string { return Prefix + "images/" + url.PathEscape(digest) },
	"vulnURL":  func(id string) string { return Prefix + "vulnerabilities/" + url.PathEscape(id) },
	"imagesWith": func(k, v string) string {
		return Prefix + "images?" + url.Values{k: {v}}.Encode()
	},
	"compareURL": func(a, b any) string {
		return Prefix + "compare?" + url.Values{"a": {toString(a)}, "b": {toString(b)}}.Encode()
	},
	"alertsWith":  func(k, v string) string { return Prefix + "alerts?" + url.Values{k: {v}}.Encode() },
	"add":         func(a, b int) int { return a + b },
	"pkgPath":     func(p inventory.Package) string { return pkgPath(&p) },
	"suppression": suppression,
	"sigWord": func(status string) string {
		return map[string]string{store.SignatureVerified: "verified", store.SignatureFailed: "failed", store.SignatureNoPolicy: "no policy covers this repository",
			store.SignatureNotChecked: "not checked"}[status]
	},
	"sum": func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	},
	"workload": func(s store.Sighting) string {
		parts := []string{}
		for _, p := range []string{s.Cluster, s.Namespace, s.Workload} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		return strings.Join(parts, " / ")
	},
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// sevName names a worst severity, NONE for store.NoFindings.
func sevName(s finding.Severity) string {
	if s < 0 {
		return "NONE"
	}
	return s.String()
}

// shortDigest is "sha256:" and 12 hex digits.
func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}
