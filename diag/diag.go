// Package diag holds structured diagnostics: the problems a scan, a check
// or a policy decision met that did not stop it (an unsafe tar entry, a
// package database over a limit, stale vulnerability data, an expired
// exemption). Each has a stable Code a program can act on, a Severity, an
// optional Location and a Message for people.
//
// It is a leaf package (the standard library only), so that every layer,
// from the walk to the CLI, can make and carry diagnostics.
package diag

import (
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Severity is how much a diagnostic matters.
type Severity string

const (
	// Info is a note: nothing is missing from the result.
	Info Severity = "info"
	// Warning: the result is complete enough to use, but something was
	// skipped, read another way, or is out of date.
	Warning Severity = "warning"
	// Error: a part of the input could not be read or checked at all.
	Error Severity = "error"
)

// Code is a diagnostic's stable identifier, "area.what" (see codes.go and
// the README's table). Codes are never renamed; new ones may be added.
type Code string

// Location is where a diagnostic points; every field is optional.
type Location struct {
	// Layer is the image layer (its digest, or its index when the digest
	// is unknown).
	Layer string `json:"layer,omitempty"`
	// Path is a path inside the image, or a file on disk.
	Path string `json:"path,omitempty"`
	// Line is a line in Path (1-based).
	Line int `json:"line,omitempty"`
	// Object is a named thing: a Kubernetes object, a policy rule, an image
	// reference, a package, an ecosystem.
	Object string `json:"object,omitempty"`
}

// IsZero reports whether l points nowhere.
func (l *Location) IsZero() bool { return l == nil || *l == Location{} }

// String is "path:line" (or the layer, or the object), "" when zero.
func (l *Location) String() string {
	if l.IsZero() {
		return ""
	}
	var parts []string
	if l.Layer != "" {
		parts = append(parts, "layer "+l.Layer)
	}
	if l.Path != "" {
		p := l.Path
		if l.Line > 0 {
			p = fmt.Sprintf("%s:%d", p, l.Line)
		}
		parts = append(parts, p)
	}
	if l.Object != "" {
		parts = append(parts, l.Object)
	}
	return strings.Join(parts, " ")
}

// Diagnostic is one problem met. Message is whole on its own: it names
// what Location points at, so a reader of the text alone loses nothing.
type Diagnostic struct {
	Code     Code      `json:"code"`
	Severity Severity  `json:"severity"`
	Location *Location `json:"location,omitempty"`
	Message  string    `json:"message"`
}

// New makes a diagnostic.
func New(code Code, sev Severity, msg string) Diagnostic {
	return Diagnostic{Code: code, Severity: sev, Message: msg}
}

// Warnf makes a warning with a formatted message.
func Warnf(code Code, format string, args ...any) Diagnostic {
	return New(code, Warning, fmt.Sprintf(format, args...))
}

// Infof makes a note with a formatted message.
func Infof(code Code, format string, args ...any) Diagnostic {
	return New(code, Info, fmt.Sprintf(format, args...))
}

// Errorf makes an error diagnostic with a formatted message.
func Errorf(code Code, format string, args ...any) Diagnostic {
	return New(code, Error, fmt.Sprintf(format, args...))
}

// At returns d pointing at loc.
func (d Diagnostic) At(loc Location) Diagnostic {
	if loc != (Location{}) {
		d.Location = &loc
	}
	return d
}

// String is the diagnostic as one line: "warning: message [code]".
func (d Diagnostic) String() string {
	sev := d.Severity
	if sev == "" {
		sev = Warning
	}
	if d.Code == "" {
		return string(sev) + ": " + d.Message
	}
	return fmt.Sprintf("%s: %s [%s]", sev, d.Message, d.Code)
}

// Messages are the diagnostics' messages, in order: the plain warning
// strings the reports had before diagnostics were structured.
func Messages(ds []Diagnostic) []string {
	if len(ds) == 0 {
		return nil
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Message
	}
	return out
}

// Warnings are the messages of the diagnostics that are not Info, in
// order: what a list of warning strings holds.
func Warnings(ds []Diagnostic) []string {
	var out []string
	for _, d := range ds {
		if d.Severity != Info {
			out = append(out, d.Message)
		}
	}
	return out
}

// Wrap makes a warning of code for each message.
func Wrap(code Code, msgs []string) []Diagnostic {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]Diagnostic, len(msgs))
	for i, m := range msgs {
		out[i] = New(code, Warning, m)
	}
	return out
}

// Merge returns ds followed by a warning of code Unclassified for each
// legacy string that no diagnostic in ds has as its message: the shim for
// warning strings set by code that does not make diagnostics yet, so none
// is lost.
func Merge(ds []Diagnostic, legacy []string) []Diagnostic {
	if len(legacy) == 0 {
		return ds
	}
	have := make(map[string]int, len(ds))
	for _, d := range ds {
		have[d.Message]++
	}
	out := append([]Diagnostic(nil), ds...)
	for _, w := range legacy {
		if have[w] > 0 {
			have[w]--
			continue
		}
		out = append(out, New(Unclassified, Warning, w))
	}
	return out
}

// Has reports whether any diagnostic has the code.
func Has(ds []Diagnostic, code Code) bool {
	for _, d := range ds {
		if d.Code == code {
			return true
		}
	}
	return false
}

// Fprint writes each diagnostic on its own line as String does, with the
// control characters a hostile name could hold (escape sequences, new
// lines) replaced by '?' rather than sent to the terminal. It is the one
// printer of diagnostics on a terminal.
func Fprint(w io.Writer, ds []Diagnostic) error {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(safe(d.String()))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// safe replaces control characters, C1 ones included, with '?'.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
