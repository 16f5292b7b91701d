package rules

// The collector holds the lists, macros and rules read so far, in
// definition order, with Falco's visibility rule: an item may refer only to
// lists/macros defined (index) before it was last defined or appended to
// (visibility).

type listInfo struct {
	name              string
	items             []string
	index, visibility int
	ctx               ctxInfo
}

type macroInfo struct {
	name              string
	cond              string
	index, visibility int
	ctx, condCtx      ctxInfo
}

type ruleInfo struct {
	name, cond, output, desc, source string
	priority                         Priority
	tags                             []string
	enabled, warnEvttypes            bool
	skipUnknown, unknownSource       bool
	exceptions                       []exceptionInfo
	index, visibility                int
	ctx, condCtx, outputCtx          ctxInfo
}

type collector struct {
	cur    int
	lists  []*listInfo
	macros []*macroInfo
	rules  []*ruleInfo
	li     map[string]int
	mi     map[string]int
	ri     map[string]int
}

func (c *collector) next() int {
	c.cur++
	return c.cur - 1
}

func (c *collector) list(name string) *listInfo {
	if i, ok := c.li[name]; ok {
		return c.lists[i]
	}
	return nil
}

func (c *collector) macro(name string) *macroInfo {
	if i, ok := c.mi[name]; ok {
		return c.macros[i]
	}
	return nil
}

func (c *collector) rule(name string) *ruleInfo {
	if i, ok := c.ri[name]; ok {
		return c.rules[i]
	}
	return nil
}

// A redefinition replaces the item in place (keeping its position and
// index) and makes everything defined so far visible to it.
func (c *collector) defineList(l *listInfo) {
	id := c.next()
	if c.li == nil {
		c.li = map[string]int{}
	}
	if i, ok := c.li[l.name]; ok {
		l.index, l.visibility = c.lists[i].index, id
		c.lists[i] = l
		return
	}
	l.index, l.visibility = id, id
	c.li[l.name] = len(c.lists)
	c.lists = append(c.lists, l)
}

func (c *collector) defineMacro(m *macroInfo) {
	id := c.next()
	if c.mi == nil {
		c.mi = map[string]int{}
	}
	if i, ok := c.mi[m.name]; ok {
		m.index, m.visibility = c.macros[i].index, id
		c.macros[i] = m
		return
	}
	m.index, m.visibility = id, id
	c.mi[m.name] = len(c.macros)
	c.macros = append(c.macros, m)
}

func (c *collector) defineRule(r *ruleInfo) {
	id := c.next()
	if c.ri == nil {
		c.ri = map[string]int{}
	}
	if i, ok := c.ri[r.name]; ok {
		r.index, r.visibility = c.rules[i].index, id
		c.rules[i] = r
		return
	}
	r.index, r.visibility = id, id
	c.ri[r.name] = len(c.rules)
	c.rules = append(c.rules, r)
}
