package rules

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// quoteItem is Falco's quote_item: a list or exception value with a blank
// is quoted unless it already starts with a quote.
func quoteItem(s string) string {
	if strings.Contains(s, " ") && s != "" && s[0] != '"' && s[0] != '\'' {
		return `"` + s + `"`
	}
	return s
}

func parenItem(s string) string {
	if s == "" || s[0] != '(' {
		return "(" + s + ")"
	}
	return s
}

// buildExceptions appends a rule's exceptions to its condition as
// "and not (...)", textually, exactly as Falco's rule compiler does.
func buildExceptions(cond string, exs []exceptionInfo) (string, error) {
	cond = "(" + cond + ")"
	for _, ex := range exs {
		var icond strings.Builder
		if !ex.fields.isList {
			n := 0
			for _, v := range ex.values {
				if v.isList {
					return "", ex.ctx.err(ErrValidate, "Expected values array to contain a list of strings")
				}
				if n == 0 {
					icond.WriteString("(" + ex.fields.item + " " + ex.comps.item + " (")
				} else {
					icond.WriteString(", ")
				}
				icond.WriteString(quoteItem(v.item))
				n++
			}
			if n > 0 {
				icond.WriteString("))")
			}
		} else {
			icond.WriteString("(")
			first := true
			for _, vals := range ex.values {
				if len(ex.fields.items) != len(vals.items) {
					return "", ex.ctx.err(ErrValidate, "Fields and values lists must have equal length")
				}
				if !first {
					icond.WriteString(" or ")
				}
				first = false
				icond.WriteString("(")
				for k, f := range ex.fields.items {
					if k > 0 {
						icond.WriteString(" and ")
					}
					var istr string
					if vals.items[k].isList {
						parts := make([]string, 0, len(vals.items[k].items))
						for _, v := range vals.items[k].items {
							parts = append(parts, quoteItem(v.item))
						}
						istr = "(" + strings.Join(parts, ", ") + ")"
					} else {
						istr = vals.items[k].item
						if isListOp(ex.comps.items[k].item) {
							istr = parenItem(istr)
						} else {
							istr = quoteItem(istr)
						}
					}
					icond.WriteString(" " + f.item + " " + ex.comps.items[k].item + " " + istr)
				}
				icond.WriteString(")")
			}
			icond.WriteString(")")
		}
		s := icond.String()
		if s == "()" {
			s = ""
		}
		if s != "" {
			cond += " and not " + s
		}
	}
	return cond, nil
}

type compiledList struct {
	name  string
	items []string
	used  bool
}

// resolveList substitutes a list's items for its name wherever the name
// stands alone in a condition. It is textual, as in Falco, so that list
// values are parsed exactly as Falco parses them (quoting included).
func resolveList(cnd string, l *compiledList) (string, bool) {
	const blanks = " \t\n\r"
	const delims = blanks + "(),="
	used := false
	start := strings.Index(cnd, l.name)
	for start >= 0 {
		end := start + len(l.name)
		if (start == 0 || strings.IndexByte(delims, cnd[start-1]) >= 0) &&
			(end >= len(cnd) || strings.IndexByte(delims, cnd[end]) >= 0) {
			for start > 0 && strings.IndexByte(blanks, cnd[start-1]) >= 0 {
				start--
			}
			for end < len(cnd) && strings.IndexByte(blanks, cnd[end]) >= 0 {
				end++
			}
			parts := make([]string, len(l.items))
			for i, v := range l.items {
				parts[i] = quoteItem(v)
			}
			sub := strings.Join(parts, ", ")
			if sub == "" {
				if start > 0 && cnd[start-1] == ',' {
					start--
				} else if end < len(cnd) && cnd[end] == ',' {
					end++
				}
			}
			var nc strings.Builder
			if start > 0 {
				nc.WriteString(cnd[:start])
				nc.WriteString(" ")
			}
			nc.WriteString(sub)
			nc.WriteString(" ")
			if end <= len(cnd) {
				nc.WriteString(cnd[end:])
			}
			cnd = nc.String()
			start += len(sub) + 1
			used = true
		}
		next := strings.Index(cnd[min(start+1, len(cnd)):], l.name)
		if next < 0 {
			break
		}
		start = start + 1 + next
	}
	return cnd, used
}

type compiledMacro struct {
	info     *macroInfo
	ast      Expr
	resolved bool
	busy     bool
	used     bool
}

type compiler struct {
	lists    []*compiledList
	macros   []*compiledMacro
	byName   map[string]*compiledMacro
	warnings []Diagnostic
}

func (cp *compiler) parseCondition(cond string, c ctxInfo) (Expr, error) {
	for _, l := range cp.lists {
		var used bool
		cond, used = resolveList(cond, l)
		l.used = l.used || used
	}
	e, err := Parse(cond)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			c.line += pe.Pos.Line - 1
			if pe.Pos.Line > 1 {
				c.col = pe.Pos.Col
			}
			return nil, c.err(ErrCompileCondition, pe.Msg)
		}
		return nil, c.err(ErrCompileCondition, err.Error())
	}
	return e, nil
}

// resolve substitutes macros into e. visible reports which macros the
// expression may see.
func (cp *compiler) resolve(e Expr, visible func(*compiledMacro) bool, c ctxInfo, depth int) (Expr, error) {
	if depth > 100 {
		return nil, c.err(ErrValidate, "macros nest more than 100 levels deep (a macro that refers to itself?)")
	}
	switch x := e.(type) {
	case *AndExpr:
		kids, err := cp.resolveAll(x.Children, visible, c, depth)
		if err != nil {
			return nil, err
		}
		return &AndExpr{Pos: x.Pos, Children: kids}, nil
	case *OrExpr:
		kids, err := cp.resolveAll(x.Children, visible, c, depth)
		if err != nil {
			return nil, err
		}
		return &OrExpr{Pos: x.Pos, Children: kids}, nil
	case *NotExpr:
		k, err := cp.resolve(x.Child, visible, c, depth)
		if err != nil {
			return nil, err
		}
		return &NotExpr{Pos: x.Pos, Child: k}, nil
	case *IdentExpr:
		m := cp.byName[x.Name]
		if m == nil || !visible(m) {
			return nil, c.err(ErrValidate, "Undefined macro '"+x.Name+"' used in filter.")
		}
		m.used = true
		if err := cp.resolveMacro(m, depth+1); err != nil {
			return nil, err
		}
		return m.ast, nil
	}
	return e, nil
}

func (cp *compiler) resolveAll(es []Expr, visible func(*compiledMacro) bool, c ctxInfo, depth int) ([]Expr, error) {
	out := make([]Expr, len(es))
	for i, e := range es {
		r, err := cp.resolve(e, visible, c, depth)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func (cp *compiler) resolveMacro(m *compiledMacro, depth int) error {
	if m.resolved {
		return nil
	}
	if m.busy {
		return m.info.ctx.err(ErrValidate, "macro '"+m.info.name+"' refers to itself")
	}
	m.busy = true
	defer func() { m.busy = false }()
	vis := m.info.visibility
	r, err := cp.resolve(m.ast, func(o *compiledMacro) bool { return o.info.index < vis }, m.info.ctx, depth)
	if err != nil {
		return err
	}
	m.ast, m.resolved = r, true
	return nil
}

// Ruleset compiles everything loaded so far. It fails on the first error,
// like Falco; rules it cannot run are skipped and listed in Skipped.
func (l *Loader) Ruleset() (*Ruleset, error) {
	cp := &compiler{byName: map[string]*compiledMacro{}}
	col := &l.col

	for _, li := range col.lists {
		cl := &compiledList{name: li.name}
		for _, it := range li.items {
			if ref := col.list(it); ref != nil && ref.index < li.visibility {
				cl.items = append(cl.items, ref.items...)
				for _, o := range cp.lists {
					if o.name == ref.name {
						o.used = true
					}
				}
				continue
			}
			cl.items = append(cl.items, it)
		}
		cp.lists = append(cp.lists, cl)
	}
	for _, mi := range col.macros {
		e, err := cp.parseCondition(mi.cond, mi.condCtx)
		if err != nil {
			return nil, err
		}
		m := &compiledMacro{info: mi, ast: e}
		cp.macros = append(cp.macros, m)
		cp.byName[mi.name] = m
	}
	for _, m := range cp.macros {
		if err := cp.resolveMacro(m, 0); err != nil {
			return nil, err
		}
	}

	rs := &Ruleset{hostname: l.opts.hostname, minPriority: l.opts.minPriority}
	rs.Warnings = append(rs.Warnings, l.warnings...)
	for _, ri := range col.rules {
		if ri.unknownSource {
			rs.Skipped = append(rs.Skipped, SkippedRule{Name: ri.name, Source: ri.source, Reason: "source " + ri.source + " needs a Falco plugin bulkhead does not provide"})
			continue
		}
		r, skip, err := cp.compileRule(ri, rs)
		if err != nil {
			return nil, err
		}
		if skip != "" {
			rs.Skipped = append(rs.Skipped, SkippedRule{Name: ri.name, Source: ri.source, Reason: skip})
			continue
		}
		rs.all = append(rs.all, r)
	}
	rs.Warnings = append(rs.Warnings, cp.warnings...)
	for _, m := range cp.macros {
		if !m.used {
			rs.Warnings = append(rs.Warnings, m.info.ctx.diag(WarnUnusedMacro, "Macro not referred to by any other rule/macro"))
		}
	}
	for i, li := range col.lists {
		if !cp.lists[i].used {
			rs.Warnings = append(rs.Warnings, li.ctx.diag(WarnUnusedList, "List not referred to by any other rule/macro"))
		}
	}
	rs.index()
	return rs, nil
}

// fieldProblems lists, in order, the unknown and the unsupported fields
// a condition uses.
func fieldProblems(e Expr, unknown, unsupported *[]string) {
	visitField := func(f *FieldExpr) {
		if f == nil {
			return
		}
		_, _, _, err := lookupField(f)
		var ue *UnknownFieldError
		var se *UnsupportedFieldError
		switch {
		case errors.As(err, &ue):
			*unknown = appendOnce(*unknown, ue.Field)
		case errors.As(err, &se):
			*unsupported = appendOnce(*unsupported, se.Field)
		}
	}
	switch x := e.(type) {
	case *AndExpr:
		for _, k := range x.Children {
			fieldProblems(k, unknown, unsupported)
		}
	case *OrExpr:
		for _, k := range x.Children {
			fieldProblems(k, unknown, unsupported)
		}
	case *NotExpr:
		fieldProblems(x.Child, unknown, unsupported)
	case *CheckExpr:
		visitField(x.Field)
		visitField(x.RHS)
	}
}

func appendOnce(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// checkEventTypes fails on evt.type values that name no event, as Falco does.
func checkEventTypes(e Expr) error {
	switch x := e.(type) {
	case *AndExpr:
		for _, k := range x.Children {
			if err := checkEventTypes(k); err != nil {
				return err
			}
		}
	case *OrExpr:
		for _, k := range x.Children {
			if err := checkEventTypes(k); err != nil {
				return err
			}
		}
	case *NotExpr:
		return checkEventTypes(x.Child)
	case *CheckExpr:
		if x.Field.Name != "evt.type" || len(x.Field.Transformers) > 0 {
			return nil
		}
		switch x.Op {
		case "=", "==", "!=", "in", "intersects":
			for _, v := range x.Values {
				if !event.IsKnownType(v) {
					return fmt.Errorf("unknown event type %s", v)
				}
			}
		}
	}
	return nil
}

func (cp *compiler) compileRule(ri *ruleInfo, rs *Ruleset) (*Rule, string, error) {
	cond := ri.cond
	if len(ri.exceptions) > 0 {
		var err error
		if cond, err = buildExceptions(cond, ri.exceptions); err != nil {
			return nil, "", err
		}
	}
	format, err := compileFormat(ri.output)
	if err != nil {
		var ue *UnknownFieldError
		if errors.As(err, &ue) {
			msg := "invalid formatting token " + ue.Field
			if ri.skipUnknown {
				cp.warnings = append(cp.warnings, ri.outputCtx.diag(WarnUnknownFilter, msg))
				return nil, msg, nil
			}
			return nil, "", ri.outputCtx.err(ErrCompileOutput, msg)
		}
		return nil, "", ri.outputCtx.err(ErrCompileOutput, err.Error())
	}
	ast, err := cp.parseCondition(cond, ri.condCtx)
	if err != nil {
		return nil, "", err
	}
	ast, err = cp.resolve(ast, func(*compiledMacro) bool { return true }, ri.ctx, 0)
	if err != nil {
		return nil, "", err
	}
	var unknown, unsupported []string
	fieldProblems(ast, &unknown, &unsupported)
	unknownErr := ""
	if len(unknown) > 0 {
		unknownErr = "filter_check called with nonexistent field " + unknown[0]
	} else if err := checkEventTypes(ast); err != nil {
		unknownErr = err.Error()
	}
	if unknownErr != "" {
		if ri.skipUnknown {
			cp.warnings = append(cp.warnings, ri.condCtx.diag(WarnUnknownFilter, unknownErr))
			return nil, unknownErr, nil
		}
		return nil, "", ri.condCtx.err(ErrCompileCondition, unknownErr)
	}
	if len(unsupported) > 0 {
		msg := "needs field " + strings.Join(unsupported, ", ") + " which bulkhead's sensor does not supply"
		cp.warnings = append(cp.warnings, ri.ctx.diag(WarnUnknownField, "rule skipped: "+msg))
		return nil, msg, nil
	}
	n, err := compileExpr(ast)
	if err != nil {
		return nil, "", ri.condCtx.err(ErrCompileCondition, err.Error())
	}
	types := eventTypes(ast, false)
	registerNames(ast)
	fields := map[string]bool{}
	usedFields(ast, fields)
	for _, f := range format.fields {
		name, _, _ := strings.Cut(f.token, "[")
		fields[name] = true
	}
	if ri.warnEvttypes && (types.neg || len(types.names) > 100) {
		cp.warnings = append(cp.warnings, ri.ctx.diag(WarnNoEvttype, "Rule matches too many evt.type values. This has a significant performance penalty."))
	}
	r := &Rule{
		Name:      ri.name,
		Desc:      ri.desc,
		Condition: ri.cond,
		Output:    ri.output,
		Priority:  ri.priority,
		Source:    ri.source,
		Tags:      append([]string{}, ri.tags...),
		Enabled:   ri.enabled,
		cond:      n,
		format:    format,
		types:     types,
		fields:    fields,
	}
	if len(ri.exceptions) > 0 {
		r.Condition = cond
	}
	return r, "", nil
}

// typeSet is a set of event types, possibly complemented: neg means "every
// type except names".
type typeSet struct {
	neg   bool
	names map[string]bool
}

func allTypes() typeSet { return typeSet{neg: true, names: map[string]bool{}} }

func (s typeSet) complement() typeSet { return typeSet{neg: !s.neg, names: s.names} }

func (s typeSet) has(t string) bool { return s.names[t] != s.neg }

func union(a, b typeSet) typeSet {
	out := map[string]bool{}
	switch {
	case !a.neg && !b.neg:
		for k := range a.names {
			out[k] = true
		}
		for k := range b.names {
			out[k] = true
		}
		return typeSet{names: out}
	case a.neg && b.neg: // complement of the intersection of the exclusions
		for k := range a.names {
			if b.names[k] {
				out[k] = true
			}
		}
		return typeSet{neg: true, names: out}
	}
	if a.neg {
		a, b = b, a
	}
	// a positive, b negative: everything but b's exclusions not in a.
	for k := range b.names {
		if !a.names[k] {
			out[k] = true
		}
	}
	return typeSet{neg: true, names: out}
}

func intersect(a, b typeSet) typeSet {
	return union(a.complement(), b.complement()).complement()
}

// eventTypes computes the event types a condition can match, as Falco's
// evttype resolver: and intersects, or unites, not complements, and any
// check on another field matches every type.
func eventTypes(e Expr, negated bool) typeSet {
	switch x := e.(type) {
	case *AndExpr, *OrExpr:
		var kids []Expr
		isAnd := false
		if a, ok := x.(*AndExpr); ok {
			kids, isAnd = a.Children, true
		} else {
			kids = x.(*OrExpr).Children
		}
		if negated {
			isAnd = !isAnd
		}
		acc := eventTypes(kids[0], negated)
		for _, k := range kids[1:] {
			if isAnd {
				acc = intersect(acc, eventTypes(k, negated))
			} else {
				acc = union(acc, eventTypes(k, negated))
			}
		}
		return acc
	case *NotExpr:
		return eventTypes(x.Child, !negated)
	case *CheckExpr:
		if x.Field.Name != "evt.type" || len(x.Field.Transformers) > 0 || x.RHS != nil {
			return allTypes()
		}
		var s typeSet
		switch x.Op {
		case "=", "==", "in", "intersects":
			s = typeSet{names: map[string]bool{}}
			for _, v := range x.Values {
				s.names[v] = true
			}
		case "!=":
			s = typeSet{neg: true, names: map[string]bool{x.Values[0]: true}}
		default:
			return allTypes()
		}
		if negated {
			s = s.complement()
		}
		return s
	}
	return allTypes()
}

// names returns a positive set's types sorted.
func (s typeSet) sorted() []string {
	out := make([]string, 0, len(s.names))
	for k := range s.names {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
