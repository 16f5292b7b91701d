package rules

import (
	"fmt"
	"strings"
)

// Diagnostic codes, named as Falco's load results so that messages can be
// compared with Falco's own (falco_load_result.h).
const (
	ErrYAMLParse        = "LOAD_ERR_YAML_PARSE"
	ErrYAMLValidate     = "LOAD_ERR_YAML_VALIDATE"
	ErrValidate         = "LOAD_ERR_VALIDATE"
	ErrCompileCondition = "LOAD_ERR_COMPILE_CONDITION"
	ErrCompileOutput    = "LOAD_ERR_COMPILE_OUTPUT"

	WarnUnknownSource    = "LOAD_UNKNOWN_SOURCE"
	WarnUnknownFilter    = "LOAD_UNKNOWN_FILTER"
	WarnUnknownField     = "LOAD_UNKNOWN_FIELD" // bulkhead: a Falco field the sensor does not supply
	WarnUnusedMacro      = "LOAD_UNUSED_MACRO"
	WarnUnusedList       = "LOAD_UNUSED_LIST"
	WarnNoEvttype        = "LOAD_NO_EVTTYPE"
	WarnDeprecatedItem   = "LOAD_DEPRECATED_ITEM"
	WarnUnknownItem      = "LOAD_UNKNOWN_ITEM"
	WarnAppendNoValues   = "LOAD_APPEND_NO_VALUES"
	WarnInvalidName      = "LOAD_INVALID_NAME"
	WarnMissingPlugin    = "LOAD_MISSING_PLUGIN"
	WarnCompileCondition = "LOAD_COMPILE_CONDITION"
)

// Diagnostic is one load error or warning, located in a rules file.
type Diagnostic struct {
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	ItemType string `json:"item_type,omitempty"` // rule, macro, list, exception, ...
	ItemName string `json:"item_name,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		if d.Line > 0 {
			fmt.Fprintf(&b, ":%d", d.Line)
			if d.Column > 0 {
				fmt.Fprintf(&b, ":%d", d.Column)
			}
		}
		b.WriteString(": ")
	}
	if d.ItemType != "" {
		b.WriteString(d.ItemType)
		if d.ItemName != "" {
			fmt.Fprintf(&b, " '%s'", d.ItemName)
		}
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// LoadError is returned when rules fail to load; it carries Falco's code.
type LoadError struct{ Diagnostic }

func (e *LoadError) Error() string { return e.Diagnostic.String() }

// ctxInfo locates an item while reading.
type ctxInfo struct {
	file      string
	line, col int
	itemType  string
	itemName  string
}

func (c ctxInfo) diag(code, msg string) Diagnostic {
	return Diagnostic{File: c.file, Line: c.line, Column: c.col, ItemType: c.itemType, ItemName: c.itemName, Code: code, Message: msg}
}

func (c ctxInfo) err(code, msg string) *LoadError {
	return &LoadError{c.diag(code, msg)}
}
