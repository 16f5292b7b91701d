package rules

import (
	"fmt"
	"strings"
)

// The condition grammar is libsinsp's (userspace/libsinsp/filter/parser.h):
//
//	Expr        ::= OrExpr
//	OrExpr      ::= AndExpr ('or' (' ' AndExpr | '(' Expr ')'))*
//	AndExpr     ::= NotExpr ('and' (' ' NotExpr | '(' Expr ')'))*
//	NotExpr     ::= ('not ')* ('not(' Expr ')' | Check)
//	Check       ::= Field Condition | Transformer Condition | Identifier | '(' Expr ')'
//	Condition   ::= 'exists' | NumOp NumValue | StrOp StrValue | ListOp ListValue
//	                (each value may also be a transformer or val(field))
//	ListValue   ::= '(' (StrValue (',' StrValue)*)? ')' | Identifier
//	Field       ::= FieldName ('[' (QuotedStr | FieldArgBareStr) ']')?
//
// It is lexed by hand with the same token classes, so that conditions Falco
// accepts parse here and those it rejects fail with the same messages.

// Expr is a node of a parsed condition.
type Expr interface{ pos() Pos }

// Pos is a byte offset, line and column (1-based) in the condition text.
type Pos struct{ Idx, Line, Col int }

func (p Pos) pos() Pos { return p }

// AndExpr is true when every child is.
type AndExpr struct {
	Pos
	Children []Expr
}

// OrExpr is true when any child is.
type OrExpr struct {
	Pos
	Children []Expr
}

// NotExpr negates its child.
type NotExpr struct {
	Pos
	Child Expr
}

// IdentExpr is a bare identifier: a macro reference.
type IdentExpr struct {
	Pos
	Name string
}

// FieldExpr names a field, with optional argument and transformers.
type FieldExpr struct {
	Pos
	Name   string
	Arg    string
	HasArg bool
	// Transformers apply innermost first: tolower(b64(f)) is [b64, tolower].
	Transformers []string
}

// String renders the field as written (without transformers).
func (f *FieldExpr) String() string {
	if f.HasArg {
		return f.Name + "[" + f.Arg + "]"
	}
	return f.Name
}

// CheckExpr compares a field with values, another field (Field), or nothing
// (exists).
type CheckExpr struct {
	Pos
	Field *FieldExpr
	Op    string
	// Values holds the right-hand side: one value for scalar operators, the
	// list for in/intersects/pmatch. IsList says the source had a list.
	Values []string
	IsList bool
	// RHS is set when the right-hand side is a field (val(...) or a transformer).
	RHS *FieldExpr
}

var (
	unaryOps = []string{"exists"}
	numOps   = []string{"<=", "<", ">=", ">"}
	// The trailing blank is part of the word operators, exactly as in libsinsp.
	strOps       = []string{"==", "=", "!=", "glob ", "iglob ", "contains ", "icontains ", "bcontains ", "startswith ", "bstartswith ", "endswith ", "regex "}
	listOps      = []string{"intersects", "in", "pmatch"}
	transformers = []string{"tolower(", "toupper(", "b64(", "basename(", "len("}
)

// maxDepth bounds recursion, as Falco does (it sets 1000 for rules).
const maxDepth = 1000

// ParseError is a syntax error in a condition.
type ParseError struct {
	Pos Pos
	Msg string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s (at line %d, column %d)", e.Msg, e.Pos.Line, e.Pos.Col)
}

type parser struct {
	in    string
	p     Pos
	depth int
	last  string
}

// Parse parses a condition into its syntax tree.
func Parse(cond string) (expr Expr, err error) {
	if cond == "" {
		return nil, &ParseError{Pos: Pos{Line: 1, Col: 1}, Msg: "filter input string is empty"}
	}
	ps := &parser{in: cond, p: Pos{Line: 1, Col: 1}}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*ParseError)
			if !ok {
				panic(r)
			}
			expr, err = nil, pe
		}
	}()
	e := ps.parseOr()
	if ps.p.Idx != len(ps.in) {
		ps.fail("unexpected token after '" + ps.last + "', expecting 'or', 'and'")
	}
	return e, nil
}

func (ps *parser) fail(msg string) {
	panic(&ParseError{Pos: ps.p, Msg: msg})
}

func (ps *parser) enter() {
	ps.depth++
	if ps.depth >= maxDepth {
		ps.fail(fmt.Sprintf("exceeded max depth limit of %d", maxDepth))
	}
}

func (ps *parser) leave() { ps.depth-- }

func (ps *parser) advance(n int) {
	for i := 0; i < n; i++ {
		c := ps.in[ps.p.Idx]
		ps.p.Col++
		if c == '\r' || c == '\n' {
			ps.p.Col = 1
			ps.p.Line++
		}
		ps.p.Idx++
	}
}

func (ps *parser) rest() string { return ps.in[ps.p.Idx:] }

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\b' || c == '\r' || c == '\n'
}

// isSpace is POSIX [:space:] (used in the token regexes), which also has \v, \f.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func (ps *parser) lexBlank() bool {
	found := false
	for ps.p.Idx < len(ps.in) && isBlank(ps.in[ps.p.Idx]) {
		ps.advance(1)
		found = true
	}
	return found
}

func (ps *parser) lexStr(s string) bool {
	if strings.HasPrefix(ps.rest(), s) {
		ps.last = s
		ps.advance(len(s))
		return true
	}
	return false
}

func (ps *parser) lexStrList(list []string) bool {
	for _, s := range list {
		if ps.lexStr(s) {
			return true
		}
	}
	return false
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '_'
}

// identLen matches [a-zA-Z]+[a-zA-Z0-9_]* at the start of s.
func identLen(s string) int {
	if len(s) == 0 || !isAlpha(s[0]) {
		return 0
	}
	i := 1
	for i < len(s) && isIdentChar(s[i]) {
		i++
	}
	return i
}

// fieldNameLen matches Identifier('.' Identifier)+ at the start of s.
func fieldNameLen(s string) int {
	n := identLen(s)
	if n == 0 {
		return 0
	}
	segs := 0
	for n < len(s) && s[n] == '.' {
		m := identLen(s[n+1:])
		if m == 0 {
			break
		}
		n += 1 + m
		segs++
	}
	if segs == 0 {
		return 0
	}
	return n
}

func (ps *parser) lexLen(n int) bool {
	if n == 0 {
		return false
	}
	ps.last = ps.in[ps.p.Idx : ps.p.Idx+n]
	ps.advance(n)
	return true
}

func (ps *parser) lexIdentifier() bool { return ps.lexLen(identLen(ps.rest())) }
func (ps *parser) lexFieldName() bool  { return ps.lexLen(fieldNameLen(ps.rest())) }

// lexNot matches "not" followed by at least one POSIX space.
func (ps *parser) lexNot() bool {
	s := ps.rest()
	if !strings.HasPrefix(s, "not") {
		return false
	}
	i := 3
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == 3 {
		return false
	}
	return ps.lexLen(i)
}

// bare string: [^()"'[:space:]=,]+
func bareLen(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '(' || c == ')' || c == '"' || c == '\'' || c == '=' || c == ',' || isSpace(c) {
			break
		}
		i++
	}
	return i
}

// field argument bare string: [^][\"'[:space:]]+
func fieldArgBareLen(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '[' || c == ']' || c == '"' || c == '\'' || isSpace(c) {
			break
		}
		i++
	}
	return i
}

// number: [+\-]?[0-9]+[\.]?[0-9]*([eE][+\-][0-9]+)?  or hex 0[xX][0-9a-zA-Z]+
func numLen(s string) int {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		i := 2
		for i < len(s) && (isAlpha(s[i]) || isDigit(s[i])) {
			i++
		}
		if i > 2 {
			return i
		}
	}
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	d := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == d {
		return 0
	}
	if i < len(s) && s[i] == '.' {
		i++
	}
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i+2 < len(s) && (s[i] == 'e' || s[i] == 'E') && (s[i+1] == '+' || s[i+1] == '-') && isDigit(s[i+2]) {
		i += 2
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i
}

// lexQuoted reads a '...' or "..." string; the closing quote is the first
// one not preceded by a backslash. The token is unescaped like libsinsp.
func (ps *parser) lexQuoted() bool {
	s := ps.rest()
	if len(s) == 0 || (s[0] != '"' && s[0] != '\'') {
		return false
	}
	delim := s[0]
	prev := byte('\\')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == delim && prev != '\\' && i > 0 {
			v, err := unescape(s[:i+1])
			if err != nil {
				ps.fail(err.Error())
			}
			ps.advance(i + 1)
			ps.last = v
			return true
		}
		prev = c
	}
	return false
}

// unescape strips the quotes of a quoted token and resolves escapes, with
// the escapes libsinsp's unescape_str accepts.
func unescape(tok string) (string, error) {
	var b strings.Builder
	esc := false
	for i := 1; i < len(tok)-1; i++ {
		c := tok[i]
		if !esc {
			if c == '\\' {
				esc = true
			} else {
				b.WriteByte(c)
			}
			continue
		}
		switch c {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case ' ', '\\':
			b.WriteByte('\\')
		case '/':
			b.WriteByte('/')
		case '"', '\'':
			if tok[0] != c {
				return "", fmt.Errorf("invalid \\%c escape in %c-quoted string", c, tok[0])
			}
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("unsupported string escape sequence: \\%c", c)
		}
		esc = false
	}
	return b.String(), nil
}

func (ps *parser) parseOr() Expr {
	ps.enter()
	defer ps.leave()
	pos := ps.p
	ps.lexBlank()
	children := []Expr{ps.parseAnd()}
	ps.lexBlank()
	for ps.lexStr("or") {
		var child Expr
		if !ps.lexBlank() {
			if ps.lexStr("(") {
				child = ps.parseEmbedded()
			} else {
				ps.fail("expected blank or '(' after 'or'")
			}
		} else {
			child = ps.parseAnd()
		}
		children = append(children, child)
		ps.lexBlank()
	}
	if len(children) > 1 {
		return &OrExpr{Pos: pos, Children: children}
	}
	return children[0]
}

func (ps *parser) parseAnd() Expr {
	ps.enter()
	defer ps.leave()
	pos := ps.p
	ps.lexBlank()
	children := []Expr{ps.parseNot()}
	ps.lexBlank()
	for ps.lexStr("and") {
		var child Expr
		if !ps.lexBlank() {
			if ps.lexStr("(") {
				child = ps.parseEmbedded()
			} else {
				ps.fail("expected blank or '(' after 'and'")
			}
		} else {
			child = ps.parseNot()
		}
		children = append(children, child)
		ps.lexBlank()
	}
	if len(children) > 1 {
		return &AndExpr{Pos: pos, Children: children}
	}
	return children[0]
}

func (ps *parser) parseNot() Expr {
	ps.enter()
	defer ps.leave()
	pos := ps.p
	not := false
	ps.lexBlank()
	for ps.lexNot() {
		not = !not
	}
	var child Expr
	if ps.lexStr("not(") {
		not = !not
		child = ps.parseEmbedded()
	} else {
		child = ps.parseCheck()
	}
	if not {
		return &NotExpr{Pos: pos, Child: child}
	}
	return child
}

func (ps *parser) parseEmbedded() Expr {
	ps.enter()
	defer ps.leave()
	ps.lexBlank()
	child := ps.parseOr()
	ps.lexBlank()
	if !ps.lexStr(")") {
		ps.fail("expected a ')' token")
	}
	return child
}

func (ps *parser) parseCheck() Expr {
	ps.enter()
	defer ps.leave()
	pos := ps.p
	ps.lexBlank()
	if ps.lexStr("(") {
		return ps.parseEmbedded()
	}
	if ps.lexFieldName() {
		f := ps.parseFieldRemainder(ps.last, pos)
		return ps.parseCondition(f, pos)
	}
	if ps.lexStrList(transformers) {
		ps.lexBlank()
		name := strings.TrimSuffix(ps.last, "(")
		f := ps.parseTransformerRemainder(name, pos)
		return ps.parseCondition(f, pos)
	}
	if ps.lexIdentifier() {
		return &IdentExpr{Pos: pos, Name: ps.last}
	}
	ps.fail("expected a '(' token, a field check, or an identifier")
	return nil
}

func (ps *parser) parseFieldRemainder(name string, pos Pos) *FieldExpr {
	f := &FieldExpr{Pos: pos, Name: name}
	if ps.lexStr("[") {
		if !ps.lexQuoted() && !ps.lexLen(fieldArgBareLen(ps.rest())) {
			ps.fail("expected a valid field argument: a quoted string or a bare string")
		}
		f.Arg, f.HasArg = ps.last, true
		if !ps.lexStr("]") {
			ps.fail("expected a ']' token")
		}
	}
	return f
}

// parseTransformerRemainder parses "field)" or "transformer(...))" after a
// transformer's opening parenthesis.
func (ps *parser) parseTransformerRemainder(tr string, pos Pos) *FieldExpr {
	ps.enter()
	defer ps.leave()
	ps.lexBlank()
	argPos := ps.p
	var child *FieldExpr
	if ps.lexStrList(transformers) {
		ps.lexBlank()
		child = ps.parseTransformerRemainder(strings.TrimSuffix(ps.last, "("), argPos)
	} else if ps.lexFieldName() {
		child = ps.parseFieldRemainder(ps.last, argPos)
	}
	if child == nil {
		ps.fail("expected a field or a nested valid transformer: 'val', 'tolower', 'toupper', 'b64', 'basename', 'len'")
	}
	ps.lexBlank()
	if !ps.lexStr(")") {
		ps.fail("expected a ')' token closing the transformer")
	}
	child.Transformers = append(child.Transformers, tr)
	child.Pos = pos
	return child
}

func (ps *parser) parseCondition(f *FieldExpr, pos Pos) Expr {
	ps.enter()
	defer ps.leave()
	ps.lexBlank()
	if ps.lexStrList(unaryOps) {
		return &CheckExpr{Pos: pos, Field: f, Op: "exists"}
	}
	ps.lexBlank()
	c := &CheckExpr{Pos: pos, Field: f}
	switch {
	case ps.lexStrList(numOps):
		c.Op = ps.last
		ps.lexBlank()
		if rhs := ps.tryTransformerOrVal(); rhs != nil {
			c.RHS = rhs
		} else if ps.lexLen(numLen(ps.rest())) {
			c.Values = []string{ps.last}
		} else {
			ps.fail("expected a number value or a field with a valid transformer: 'val', 'tolower', 'toupper', 'b64', 'basename', 'len'")
		}
	case ps.lexStrList(strOps):
		c.Op = strings.TrimSpace(ps.last)
		ps.lexBlank()
		if rhs := ps.tryTransformerOrVal(); rhs != nil {
			c.RHS = rhs
		} else if v, ok := ps.strValue(); ok {
			c.Values = []string{v}
		} else {
			ps.fail("expected a string value or a field with a valid transformer: 'val', 'tolower', 'toupper', 'b64', 'basename', 'len'")
		}
	case ps.lexStrList(listOps):
		c.Op = ps.last
		ps.parseListValue(c)
	default:
		ps.fail("expected a valid check operator: one of 'exists', '<=', '<', '>=', '>', '==', '=', '!=', 'glob', 'iglob', 'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', 'endswith', 'regex', 'intersects', 'in', 'pmatch'")
	}
	return c
}

func (ps *parser) strValue() (string, bool) {
	if ps.lexQuoted() {
		return ps.last, true
	}
	if ps.lexLen(bareLen(ps.rest())) {
		return ps.last, true
	}
	return "", false
}

func (ps *parser) parseListValue(c *CheckExpr) {
	ps.enter()
	defer ps.leave()
	ps.lexBlank()
	if ps.lexStr("(") {
		c.IsList = true
		c.Values = []string{}
		ps.lexBlank()
		if v, ok := ps.strValue(); ok {
			c.Values = append(c.Values, v)
			ps.lexBlank()
			for ps.lexStr(",") {
				ps.lexBlank()
				v, ok := ps.strValue()
				if !ok {
					ps.fail("expected a string value")
				}
				c.Values = append(c.Values, v)
				ps.lexBlank()
			}
		}
		if !ps.lexStr(")") {
			ps.fail("expected a ')' token")
		}
		return
	}
	if rhs := ps.tryTransformerOrVal(); rhs != nil {
		c.RHS = rhs
		return
	}
	if ps.lexIdentifier() {
		c.Values = []string{ps.last}
		return
	}
	ps.fail("expected a list, an identifier, or a field with a valid transformer: 'val', 'tolower', 'toupper', 'b64', 'basename', 'len'")
}

// tryTransformerOrVal parses val(field) or transformer(...) on the right-hand
// side; it returns nil when neither starts here.
func (ps *parser) tryTransformerOrVal() *FieldExpr {
	ps.enter()
	defer ps.leave()
	ps.lexBlank()
	pos := ps.p
	if ps.lexStr("val(") {
		ps.lexBlank()
		fpos := ps.p
		if !ps.lexFieldName() {
			ps.fail("expected a field within 'val' transformer")
		}
		f := ps.parseFieldRemainder(ps.last, fpos)
		ps.lexBlank()
		if !ps.lexStr(")") {
			ps.fail("expected a ')' token closing the transformer")
		}
		return f
	}
	if ps.lexStrList(transformers) {
		ps.lexBlank()
		return ps.parseTransformerRemainder(strings.TrimSuffix(ps.last, "("), pos)
	}
	return nil
}
