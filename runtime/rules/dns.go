package rules

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fd.cip.name, fd.sip.name, fd.lip.name and fd.rip.name compare an
// address with domain names, as libsinsp's DNS manager does: the names a
// rule compares with are resolved in the background and refreshed, and
// the field matches a name whose current addresses include the fd's. The
// event loop never waits for DNS: the first evaluation starts the
// resolver, and until a name has resolved it matches nothing.

// dnsRefresh is how often the names are resolved again.
const dnsRefresh = 30 * time.Second

// dnsLookupTimeout bounds one name's resolution.
const dnsLookupTimeout = 5 * time.Second

type dnsName struct {
	name  string
	addrs atomic.Pointer[[]netip.Addr]
}

// dnsNames is the process's set of names rules compare with.
type dnsNames struct {
	mu      sync.Mutex
	byName  map[string]*dnsName
	list    atomic.Pointer[[]*dnsName]
	started atomic.Bool
	lookup  func(ctx context.Context, host string) ([]netip.Addr, error)
	// resolved is signalled after each resolution round (tests).
	resolved chan struct{}
}

var dns = &dnsNames{
	byName: map[string]*dnsName{},
	lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	},
	resolved: make(chan struct{}, 1),
}

// add registers a name a rule compares an fd.*ip.name field with.
func (d *dnsNames) add(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.byName[name]; ok || name == "" {
		return
	}
	n := &dnsName{name: name}
	d.byName[name] = n
	l := []*dnsName{}
	if p := d.list.Load(); p != nil {
		l = append(l, *p...)
	}
	l = append(l, n)
	d.list.Store(&l)
	if d.started.Load() {
		go d.resolve(n)
	}
}

// names returns the registered names, starting the resolver on first use.
func (d *dnsNames) names() []*dnsName {
	if !d.started.Load() && d.started.CompareAndSwap(false, true) {
		go d.loop()
	}
	if p := d.list.Load(); p != nil {
		return *p
	}
	return nil
}

func (d *dnsNames) loop() {
	for {
		if p := d.list.Load(); p != nil {
			for _, n := range *p {
				d.resolve(n)
			}
		}
		select {
		case d.resolved <- struct{}{}:
		default:
		}
		time.Sleep(dnsRefresh)
	}
}

func (d *dnsNames) resolve(n *dnsName) {
	ctx, cancel := context.WithTimeout(context.Background(), dnsLookupTimeout)
	defer cancel()
	addrs, err := d.lookup(ctx, n.name)
	if err != nil {
		// Keep the last answer through a failed refresh; a name that
		// never resolved keeps matching nothing.
		return
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	n.addrs.Store(&addrs)
}

// namesOf calls fn with each registered name that currently resolves to a.
func (d *dnsNames) namesOf(a netip.Addr, fn func(string) bool) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, n := range d.names() {
		if p := n.addrs.Load(); p != nil && slices.Contains(*p, a) {
			if fn(n.name) {
				return true
			}
		}
	}
	return false
}

// ipName builds fd.Xip.name over one end of the fd.
func ipName(pick func(c *evalCtx) (netip.Addr, bool)) func(string, int) getter {
	return func(string, int) getter {
		g := getter{typ: tString}
		g.get = func(c *evalCtx) (value, bool) {
			a, ok := pick(c)
			if !ok {
				return value{}, false
			}
			var name string
			dns.namesOf(a, func(n string) bool { name = n; return true })
			return value{s: name}, name != ""
		}
		g.each = func(c *evalCtx, fn func(value) bool) bool {
			a, ok := pick(c)
			if !ok {
				return false
			}
			return dns.namesOf(a, func(n string) bool { return fn(value{s: n}) })
		}
		return g
	}
}

// dnsFields are the fields whose compared values are domain names.
var dnsFields = map[string]bool{"fd.cip.name": true, "fd.sip.name": true, "fd.lip.name": true, "fd.rip.name": true}

// registerNames walks a condition for fd.*ip.name comparisons and adds
// their values to the resolver.
func registerNames(e Expr) {
	switch x := e.(type) {
	case *AndExpr:
		for _, k := range x.Children {
			registerNames(k)
		}
	case *OrExpr:
		for _, k := range x.Children {
			registerNames(k)
		}
	case *NotExpr:
		registerNames(x.Child)
	case *CheckExpr:
		if x.Field != nil && dnsFields[x.Field.Name] && len(x.Field.Transformers) == 0 {
			for _, v := range x.Values {
				dns.add(v)
			}
		}
	}
}

// usedFields adds the names of the fields a condition reads to set.
func usedFields(e Expr, set map[string]bool) {
	switch x := e.(type) {
	case *AndExpr:
		for _, k := range x.Children {
			usedFields(k, set)
		}
	case *OrExpr:
		for _, k := range x.Children {
			usedFields(k, set)
		}
	case *NotExpr:
		usedFields(x.Child, set)
	case *CheckExpr:
		if x.Field != nil {
			set[x.Field.Name] = true
		}
		if x.RHS != nil {
			set[x.RHS.Name] = true
		}
	}
}

// UsesField reports whether an active rule reads the field (in its
// condition or its output), so that a source can skip collecting what no
// rule needs (proc.env, for one).
func (rs *Ruleset) UsesField(name string) bool {
	for _, r := range rs.all {
		if rs.active(r) && r.fields[name] {
			return true
		}
	}
	return false
}
