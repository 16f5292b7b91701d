package sensor

import (
	"strings"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// maxDNSQuery is the most of a query the kernel side records.
const maxDNSQuery = 512

// dnsQueryName decodes the name a DNS query asks for: the first
// question of a message that is a query (not a response), standard
// opcode. The name is lower-cased, without the final dot. A buffer that is
// not such a query (a truncated capture, another protocol on port 53)
// gives false.
func dnsQueryName(b []byte) (string, bool) {
	if len(b) > maxDNSQuery {
		b = b[:maxDNSQuery]
	}
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil || h.Response || h.OpCode != 0 {
		return "", false
	}
	q, err := p.Question()
	if err != nil {
		return "", false
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	if name == "" || strings.ContainsAny(name, " /:\x00\n") {
		// The root, or a name that is no host name (dnsmessage renders
		// odd bytes escaped; a profile entry cannot hold these).
		return "", false
	}
	return name, true
}

// addQuery adds the "query" argument, the DNS name a send asks for, when
// the record carries a query.
func addQuery(ev *event.Event, payload []byte) {
	if len(payload) == 0 {
		return
	}
	if name, ok := dnsQueryName(payload); ok {
		ev.Args = append(ev.Args, event.Arg{Name: "query", Value: name})
	}
}
