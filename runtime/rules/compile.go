package rules

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// node is a compiled condition: a tree of closures over the field getters.
type node func(c *evalCtx) bool

// compileExpr turns a macro-resolved syntax tree into a node.
func compileExpr(e Expr) (node, error) {
	switch x := e.(type) {
	case *AndExpr:
		kids, err := compileAll(x.Children)
		if err != nil {
			return nil, err
		}
		if len(kids) == 2 {
			a, b := kids[0], kids[1]
			return func(c *evalCtx) bool { return a(c) && b(c) }, nil
		}
		return func(c *evalCtx) bool {
			for _, k := range kids {
				if !k(c) {
					return false
				}
			}
			return true
		}, nil
	case *OrExpr:
		kids, err := compileAll(x.Children)
		if err != nil {
			return nil, err
		}
		if len(kids) == 2 {
			a, b := kids[0], kids[1]
			return func(c *evalCtx) bool { return a(c) || b(c) }, nil
		}
		return func(c *evalCtx) bool {
			for _, k := range kids {
				if k(c) {
					return true
				}
			}
			return false
		}, nil
	case *NotExpr:
		k, err := compileExpr(x.Child)
		if err != nil {
			return nil, err
		}
		return func(c *evalCtx) bool { return !k(c) }, nil
	case *CheckExpr:
		return compileCheck(x)
	case *IdentExpr:
		return nil, fmt.Errorf("Undefined macro '%s' used in filter.", x.Name)
	}
	return nil, fmt.Errorf("internal error: unexpected node %T", e)
}

func compileAll(es []Expr) ([]node, error) {
	out := make([]node, 0, len(es))
	for _, e := range es {
		n, err := compileExpr(e)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// compileField resolves a field reference and applies its transformers.
func compileField(f *FieldExpr) (getter, error) {
	d, arg, idx, err := lookupField(f)
	if err != nil {
		return getter{}, err
	}
	g := d.mk(arg, idx)
	g.name = f.String()
	for _, t := range f.Transformers {
		g, err = transform(g, t)
		if err != nil {
			return getter{}, err
		}
	}
	return g, nil
}

func transform(g getter, t string) (getter, error) {
	var fn func(c *evalCtx, v value) (value, bool)
	out := tString
	switch t {
	case "tolower", "toupper", "b64", "basename":
		if g.typ != tString {
			return getter{}, fmt.Errorf("can't add field transformer: type '%s' is not supported by '%s' transformer applied on field '%s'", g.typ, t, g.name)
		}
	case "len":
		if g.typ != tString {
			return getter{}, fmt.Errorf("can't add field transformer: type '%s' is not supported by 'len' transformer applied on field '%s'", g.typ, g.name)
		}
		out = tNum
	}
	switch t {
	case "tolower":
		fn = func(c *evalCtx, v value) (value, bool) { return value{s: c.mapASCII(v.s, 'A', 'Z', 'a'-'A')}, true }
	case "toupper":
		fn = func(c *evalCtx, v value) (value, bool) { return value{s: c.mapASCII(v.s, 'a', 'z', 'A'-'a')}, true }
	case "basename":
		fn = func(_ *evalCtx, v value) (value, bool) { return value{s: fdFilename(v.s)}, true }
	case "len":
		fn = func(_ *evalCtx, v value) (value, bool) { return value{n: int64(len(v.s))}, true }
	case "b64":
		fn = func(c *evalCtx, v value) (value, bool) {
			start := len(c.arena)
			n := base64.StdEncoding.DecodedLen(len(v.s))
			c.arena = append(c.arena, make([]byte, n)...)
			m, err := base64.StdEncoding.Decode(c.arena[start:], []byte(v.s))
			if err != nil {
				c.arena = c.arena[:start]
				return value{}, false
			}
			c.arena = c.arena[:start+m]
			return value{s: c.str(start)}, true
		}
	default:
		return getter{}, fmt.Errorf("unknown transformer %s", t)
	}
	inner := g
	ng := getter{name: t + "(" + g.name + ")", typ: out}
	ng.get = func(c *evalCtx) (value, bool) {
		v, ok := inner.get(c)
		if !ok {
			return value{}, false
		}
		return fn(c, v)
	}
	if inner.each != nil {
		ng.each = func(c *evalCtx, pred func(value) bool) bool {
			return inner.each(c, func(v value) bool {
				tv, ok := fn(c, v)
				return ok && pred(tv)
			})
		}
	}
	return ng, nil
}

// mapASCII shifts bytes in [lo,hi] by delta, copying into the arena only
// when something changes.
func (c *evalCtx) mapASCII(s string, lo, hi byte, delta int) string {
	i := 0
	for i < len(s) && (s[i] < lo || s[i] > hi) {
		i++
	}
	if i == len(s) {
		return s
	}
	start := len(c.arena)
	c.arena = append(c.arena, s...)
	b := c.arena[start:]
	for ; i < len(b); i++ {
		if b[i] >= lo && b[i] <= hi {
			b[i] = byte(int(b[i]) + delta)
		}
	}
	return c.str(start)
}

func compileCheck(x *CheckExpr) (node, error) {
	g, err := compileField(x.Field)
	if err != nil {
		return nil, err
	}
	if x.Op == "exists" {
		if g.each != nil {
			return func(c *evalCtx) bool { return g.each(c, func(value) bool { return true }) }, nil
		}
		return func(c *evalCtx) bool { _, ok := g.get(c); return ok }, nil
	}
	if x.RHS != nil {
		return compileFieldCompare(g, x.Op, x.RHS)
	}
	pred, err := makePred(g.typ, x.Op, x.Values, x.IsList)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", g.name, x.Op, err)
	}
	if g.each != nil {
		each := g.each
		return func(c *evalCtx) bool { return each(c, pred) }, nil
	}
	get := g.get
	return func(c *evalCtx) bool {
		v, ok := get(c)
		return ok && pred(v)
	}, nil
}

// makePred compiles "op values" for a field of type t into a predicate.
func makePred(t ftype, op string, vals []string, isList bool) (func(value) bool, error) {
	switch op {
	case "in", "intersects", "pmatch":
	default:
		if len(vals) != 1 {
			return nil, fmt.Errorf("operator %s needs one value", op)
		}
	}
	switch t {
	case tString:
		return strPred(op, vals)
	case tNum, tBool:
		ns := make([]int64, len(vals))
		for i, v := range vals {
			n, err := parseNum(t, v)
			if err != nil {
				return nil, err
			}
			ns[i] = n
		}
		return numPred(op, ns)
	case tIP:
		return ipPred(op, vals)
	}
	return nil, fmt.Errorf("unsupported field type")
}

func parseNum(t ftype, v string) (int64, error) {
	if t == tBool {
		switch strings.ToLower(v) {
		case "true":
			return 1, nil
		case "false":
			return 0, nil
		}
		return 0, fmt.Errorf("'%s' is not a valid boolean (use true or false)", v)
	}
	n, err := strconv.ParseInt(v, 0, 64)
	if err == nil {
		return n, nil
	}
	if u, uerr := strconv.ParseUint(v, 0, 64); uerr == nil {
		return int64(u), nil
	}
	if f, ferr := strconv.ParseFloat(v, 64); ferr == nil && f == float64(int64(f)) {
		return int64(f), nil
	}
	return 0, fmt.Errorf("'%s' is not a valid number", v)
}

func strPred(op string, vals []string) (func(value) bool, error) {
	v := ""
	if len(vals) > 0 {
		v = vals[0]
	}
	switch op {
	case "=", "==":
		return func(x value) bool { return x.s == v }, nil
	case "!=":
		return func(x value) bool { return x.s != v }, nil
	case "<":
		return func(x value) bool { return x.s < v }, nil
	case "<=":
		return func(x value) bool { return x.s <= v }, nil
	case ">":
		return func(x value) bool { return x.s > v }, nil
	case ">=":
		return func(x value) bool { return x.s >= v }, nil
	case "contains":
		return func(x value) bool { return strings.Contains(x.s, v) }, nil
	case "icontains":
		lv := strings.ToLower(v)
		return func(x value) bool { return containsFold(x.s, lv) }, nil
	case "startswith":
		return func(x value) bool { return strings.HasPrefix(x.s, v) }, nil
	case "endswith":
		return func(x value) bool { return strings.HasSuffix(x.s, v) }, nil
	case "bcontains", "bstartswith":
		b, err := hex.DecodeString(strings.ReplaceAll(v, " ", ""))
		if err != nil {
			return nil, fmt.Errorf("'%s' is not a valid hex string", v)
		}
		bs := string(b)
		if op == "bcontains" {
			return func(x value) bool { return strings.Contains(x.s, bs) }, nil
		}
		return func(x value) bool { return strings.HasPrefix(x.s, bs) }, nil
	case "glob":
		return func(x value) bool { return globMatch(v, x.s, false) }, nil
	case "iglob":
		lv := strings.ToLower(v)
		return func(x value) bool { return globMatch(lv, x.s, true) }, nil
	case "regex":
		re, err := regexp.Compile(`^(?:` + v + `)$`)
		if err != nil {
			return nil, fmt.Errorf("invalid regex %q: %v", v, err)
		}
		return func(x value) bool { return re.MatchString(x.s) }, nil
	case "in", "intersects":
		return stringSet(vals), nil
	case "pmatch":
		pm := newPathMatcher(vals)
		return func(x value) bool { return pm.match(x.s) }, nil
	}
	return nil, fmt.Errorf("operator %s is not supported on string fields", op)
}

// stringSet tests membership; small lists scan, large ones use a map.
func stringSet(vals []string) func(value) bool {
	if len(vals) <= 8 {
		vs := append([]string(nil), vals...)
		return func(x value) bool {
			for _, v := range vs {
				if x.s == v {
					return true
				}
			}
			return false
		}
	}
	m := make(map[string]struct{}, len(vals))
	for _, v := range vals {
		m[v] = struct{}{}
	}
	return func(x value) bool { _, ok := m[x.s]; return ok }
}

func numPred(op string, ns []int64) (func(value) bool, error) {
	var v int64
	if len(ns) > 0 {
		v = ns[0]
	}
	switch op {
	case "=", "==":
		return func(x value) bool { return x.n == v }, nil
	case "!=":
		return func(x value) bool { return x.n != v }, nil
	case "<":
		return func(x value) bool { return x.n < v }, nil
	case "<=":
		return func(x value) bool { return x.n <= v }, nil
	case ">":
		return func(x value) bool { return x.n > v }, nil
	case ">=":
		return func(x value) bool { return x.n >= v }, nil
	case "in", "intersects":
		return func(x value) bool {
			for _, n := range ns {
				if x.n == n {
					return true
				}
			}
			return false
		}, nil
	}
	return nil, fmt.Errorf("operator %s is not supported on numeric fields", op)
}

// ipVal is an address or a network from a rule.
type ipVal struct {
	addr netip.Addr
	pfx  netip.Prefix
	net  bool
}

func (v ipVal) match(a netip.Addr) bool {
	a = a.Unmap()
	if v.net {
		return v.pfx.Contains(a)
	}
	return v.addr == a
}

func parseIPVal(s string) (ipVal, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return ipVal{}, fmt.Errorf("'%s' is not a valid network", s)
		}
		return ipVal{pfx: p.Masked(), net: true}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ipVal{}, fmt.Errorf("'%s' is not a valid IP address", s)
	}
	return ipVal{addr: a.Unmap()}, nil
}

func ipPred(op string, vals []string) (func(value) bool, error) {
	ips := make([]ipVal, len(vals))
	for i, s := range vals {
		v, err := parseIPVal(s)
		if err != nil {
			return nil, err
		}
		ips[i] = v
	}
	switch op {
	case "=", "==":
		v := ips[0]
		return func(x value) bool { return v.match(x.ip) }, nil
	case "!=":
		v := ips[0]
		return func(x value) bool { return !v.match(x.ip) }, nil
	case "in", "intersects":
		return func(x value) bool {
			for _, v := range ips {
				if v.match(x.ip) {
					return true
				}
			}
			return false
		}, nil
	}
	return nil, fmt.Errorf("operator %s is not supported on IP address fields", op)
}

// compileFieldCompare compares a field with another field (val(f) or a
// transformed field on the right-hand side).
func compileFieldCompare(g getter, op string, rf *FieldExpr) (node, error) {
	r, err := compileField(rf)
	if err != nil {
		return nil, err
	}
	if r.each != nil {
		return nil, fmt.Errorf("field '%s' can't be used as a right-hand side field", r.name)
	}
	lt, rt := g.typ, r.typ
	if lt == tBool {
		lt = tNum
	}
	if rt == tBool {
		rt = tNum
	}
	if lt != rt {
		return nil, fmt.Errorf("field '%s' has type '%s' while the right-hand side field '%s' has incompatible type '%s'", g.name, g.typ, r.name, r.typ)
	}
	var cmp func(a, b value) bool
	switch g.typ {
	case tString:
		switch op {
		case "=", "==", "in", "intersects":
			cmp = func(a, b value) bool { return a.s == b.s }
		case "!=":
			cmp = func(a, b value) bool { return a.s != b.s }
		case "contains":
			cmp = func(a, b value) bool { return strings.Contains(a.s, b.s) }
		case "icontains":
			cmp = func(a, b value) bool { return containsFold(strings.ToLower(a.s), strings.ToLower(b.s)) }
		case "startswith":
			cmp = func(a, b value) bool { return strings.HasPrefix(a.s, b.s) }
		case "endswith":
			cmp = func(a, b value) bool { return strings.HasSuffix(a.s, b.s) }
		case "glob":
			cmp = func(a, b value) bool { return globMatch(b.s, a.s, false) }
		case "pmatch":
			cmp = func(a, b value) bool { return pathPrefix(b.s, a.s) }
		case "<":
			cmp = func(a, b value) bool { return a.s < b.s }
		case "<=":
			cmp = func(a, b value) bool { return a.s <= b.s }
		case ">":
			cmp = func(a, b value) bool { return a.s > b.s }
		case ">=":
			cmp = func(a, b value) bool { return a.s >= b.s }
		}
	case tNum, tBool:
		switch op {
		case "=", "==", "in", "intersects":
			cmp = func(a, b value) bool { return a.n == b.n }
		case "!=":
			cmp = func(a, b value) bool { return a.n != b.n }
		case "<":
			cmp = func(a, b value) bool { return a.n < b.n }
		case "<=":
			cmp = func(a, b value) bool { return a.n <= b.n }
		case ">":
			cmp = func(a, b value) bool { return a.n > b.n }
		case ">=":
			cmp = func(a, b value) bool { return a.n >= b.n }
		}
	case tIP:
		switch op {
		case "=", "==", "in", "intersects":
			cmp = func(a, b value) bool { return a.ip.Unmap() == b.ip.Unmap() }
		case "!=":
			cmp = func(a, b value) bool { return a.ip.Unmap() != b.ip.Unmap() }
		}
	}
	if cmp == nil {
		return nil, fmt.Errorf("operator %s is not supported between fields of type %s", op, g.typ)
	}
	lget, rget := r.get, r.get
	lget = g.get
	if g.each != nil {
		each := g.each
		return func(c *evalCtx) bool {
			b, ok := rget(c)
			if !ok {
				return false
			}
			return each(c, func(a value) bool { return cmp(a, b) })
		}, nil
	}
	return func(c *evalCtx) bool {
		a, ok := lget(c)
		if !ok {
			return false
		}
		b, ok := rget(c)
		return ok && cmp(a, b)
	}, nil
}
