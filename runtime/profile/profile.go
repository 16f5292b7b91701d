// Package profile learns what the containers of each image do — the
// executables they run, where they connect, the ports they listen on, the
// files they write outside temporary paths — over a learning window, and
// afterwards marks what is new. Profiles are YAML files, one per image id,
// that people read, edit (add entries, use patterns) and promote to Falco
// allow-list rules.
package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// APIVersion and Kind identify a profile document.
const (
	APIVersion = "bulkhead.dev/v1"
	Kind       = "RuntimeProfile"
)

// States of a profile.
const (
	Learning  = "learning"
	Enforcing = "enforcing"
)

// Limits for hostile or runaway profiles.
const (
	// MaxFileBytes is the largest profile file read.
	MaxFileBytes = 16 << 20
	// MaxEntries is the most entries one list may hold; learning stops
	// adding to a full list (and says so).
	MaxEntries = 10000
	// maxEntryBytes is the longest entry.
	maxEntryBytes = 4096
)

// Profile is the learned (and possibly edited) behaviour of one image.
//
// Entries are exact values or patterns:
//   - executables, writes: absolute paths; "*", "?" and "[...]" match
//     within one path element (path.Match), and a trailing "/**" matches
//     everything below a directory;
//   - outbound: "ADDR:PORT/PROTO" where ADDR is an address, a CIDR network
//     or "*", PORT a number or "*", PROTO tcp or udp ("[::1]:53/udp" for
//     IPv6);
//   - listening: "PORT/PROTO";
//   - dns: a name, or "*.example.com" for any name below example.com.
type Profile struct {
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	Kind       string `yaml:"kind" json:"kind"`
	// Image is the image id ("sha256:...").
	Image string `yaml:"image" json:"image"`
	// Names are the image references and containers seen (for people).
	Names []string `yaml:"names,omitempty" json:"names,omitempty"`
	// State is learning until LearningEnds, then enforcing.
	State           string    `yaml:"state" json:"state"`
	LearningStarted time.Time `yaml:"learningStarted" json:"learningStarted"`
	LearningEnds    time.Time `yaml:"learningEnds" json:"learningEnds"`

	Executables []string `yaml:"executables" json:"executables"`
	Outbound    []string `yaml:"outbound" json:"outbound"`
	DNS         []string `yaml:"dns" json:"dns"`
	Listening   []string `yaml:"listening" json:"listening"`
	Writes      []string `yaml:"writes" json:"writes"`
}

// lists returns the profile's lists by kind.
func (p *Profile) lists() []struct {
	kind string
	list *[]string
} {
	return []struct {
		kind string
		list *[]string
	}{
		{event.ProfileExec, &p.Executables}, {event.ProfileOutbound, &p.Outbound}, {event.ProfileDNS, &p.DNS},
		{event.ProfileListen, &p.Listening}, {event.ProfileWrite, &p.Writes},
	}
}

func (p *Profile) list(kind string) *[]string {
	for _, l := range p.lists() {
		if l.kind == kind {
			return l.list
		}
	}
	return nil
}

var imageRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })

// DecodeError is a profile that cannot be used, with where and why.
type DecodeError struct {
	File  string // the file name given to Decode
	Field string // "outbound[3]", "state", ... ("" for the document)
	Err   error
}

func (e *DecodeError) Error() string {
	where := e.File
	if e.Field != "" {
		where += ": " + e.Field
	}
	return fmt.Sprintf("profile %s: %v (fix or delete the entry; see `bulkhead runtime profile --help` for the format)", where, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Decode reads one profile document and checks every entry. name labels
// errors.
func Decode(r io.Reader, name string) (*Profile, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, &DecodeError{File: name, Err: err}
	}
	if len(data) > MaxFileBytes {
		return nil, &DecodeError{File: name, Err: fmt.Errorf("larger than %d bytes", MaxFileBytes)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Profile
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty document")
		}
		return nil, &DecodeError{File: name, Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &DecodeError{File: name, Err: errors.New("more than one YAML document; a profile file holds one")}
	}
	if err := p.Validate(); err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			de.File = name
		}
		return nil, err
	}
	return &p, nil
}

// Validate checks the header and every entry.
func (p *Profile) Validate() error {
	bad := func(field string, format string, a ...any) error {
		return &DecodeError{Field: field, Err: fmt.Errorf(format, a...)}
	}
	if p.APIVersion != APIVersion {
		return bad("apiVersion", "%q, want %s", p.APIVersion, APIVersion)
	}
	if p.Kind != Kind {
		return bad("kind", "%q, want %s", p.Kind, Kind)
	}
	if !imageRe().MatchString(p.Image) {
		return bad("image", "%q is not an image id (sha256: and 64 lower-case hex digits)", p.Image)
	}
	if p.State != Learning && p.State != Enforcing {
		return bad("state", "%q, want learning or enforcing", p.State)
	}
	if p.State == Learning && p.LearningEnds.IsZero() {
		return bad("learningEnds", "a learning profile needs the end of its window")
	}
	if len(p.Names) > MaxEntries {
		return bad("names", "more than %d entries", MaxEntries)
	}
	for _, l := range p.lists() {
		if len(*l.list) > MaxEntries {
			return bad(listName(l.kind), "more than %d entries", MaxEntries)
		}
		for i, e := range *l.list {
			if _, err := compile(l.kind, e); err != nil {
				return bad(fmt.Sprintf("%s[%d]", listName(l.kind), i), "%v", err)
			}
		}
	}
	return nil
}

func listName(kind string) string {
	switch kind {
	case event.ProfileExec:
		return "executables"
	case event.ProfileListen:
		return "listening"
	case event.ProfileWrite:
		return "writes"
	}
	return kind
}

// Encode writes the profile as YAML.
func (p *Profile) Encode(w io.Writer) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return err
	}
	return enc.Close()
}

// matcher is one compiled entry.
type matcher func(item string) bool

// compile checks an entry of a kind and returns what it matches.
func compile(kind, e string) (matcher, error) {
	if e == "" || len(e) > maxEntryBytes || strings.ContainsAny(e, "\x00\n") {
		return nil, fmt.Errorf("%q: empty, too long or with a NUL or newline", e)
	}
	switch kind {
	case event.ProfileExec, event.ProfileWrite:
		return pathMatcher(e)
	case event.ProfileOutbound:
		return outboundMatcher(e)
	case event.ProfileListen:
		port, proto, err := portProto(e)
		if err != nil {
			return nil, err
		}
		return func(item string) bool {
			p, pr, err := portProto(item)
			return err == nil && pr == proto && (port == "*" || p == port)
		}, nil
	case event.ProfileDNS:
		name := strings.ToLower(strings.TrimSuffix(e, "."))
		if strings.ContainsAny(name, " /:") {
			return nil, fmt.Errorf("%q is not a DNS name", e)
		}
		if suffix, ok := strings.CutPrefix(name, "*."); ok {
			return func(item string) bool {
				return strings.HasSuffix(strings.ToLower(strings.TrimSuffix(item, ".")), "."+suffix)
			}, nil
		}
		return func(item string) bool { return strings.EqualFold(strings.TrimSuffix(item, "."), name) }, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

func pathMatcher(e string) (matcher, error) {
	if !strings.HasPrefix(e, "/") {
		return nil, fmt.Errorf("%q is not an absolute path", e)
	}
	if dir, ok := strings.CutSuffix(e, "/**"); ok {
		if strings.ContainsAny(dir, "*?[") {
			return nil, fmt.Errorf("%q: a /** pattern takes a plain directory", e)
		}
		return func(item string) bool { return strings.HasPrefix(item, dir+"/") }, nil
	}
	if strings.ContainsAny(e, "*?[\\") {
		if _, err := path.Match(e, ""); err != nil {
			return nil, fmt.Errorf("%q: %v", e, err)
		}
		return func(item string) bool { ok, _ := path.Match(e, item); return ok }, nil
	}
	return func(item string) bool { return item == e }, nil
}

// portProto splits "PORT/PROTO" ("*" allowed for the port).
func portProto(s string) (port, proto string, err error) {
	port, proto, ok := strings.Cut(s, "/")
	if !ok || (proto != "tcp" && proto != "udp") {
		return "", "", fmt.Errorf("%q: want PORT/tcp or PORT/udp", s)
	}
	if port != "*" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || strconv.FormatUint(n, 10) != port {
			return "", "", fmt.Errorf("%q: the port must be a number from 0 to 65535 or *", s)
		}
	}
	return port, proto, nil
}

// splitOutbound splits "ADDR:PORT/PROTO".
func splitOutbound(s string) (addr, port, proto string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", "", fmt.Errorf("%q: want ADDR:PORT/PROTO", s)
	}
	addr = s[:i]
	if port, proto, err = portProto(s[i+1:]); err != nil {
		return "", "", "", fmt.Errorf("%q: want ADDR:PORT/PROTO (%v)", s, err)
	}
	if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
		addr = addr[1 : len(addr)-1]
	}
	return addr, port, proto, nil
}

func outboundMatcher(e string) (matcher, error) {
	addr, port, proto, err := splitOutbound(e)
	if err != nil {
		return nil, err
	}
	var in func(netip.Addr) bool
	switch {
	case addr == "*":
		in = func(netip.Addr) bool { return true }
	case strings.Contains(addr, "/"):
		pfx, err := netip.ParsePrefix(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", e, err)
		}
		pfx = pfx.Masked()
		in = pfx.Contains
	default:
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", e, err)
		}
		in = func(b netip.Addr) bool { return a == b }
	}
	return func(item string) bool {
		a, p, pr, err := splitOutbound(item)
		if err != nil || pr != proto || (port != "*" && p != port) {
			return false
		}
		ip, err := netip.ParseAddr(a)
		return err == nil && in(ip.Unmap())
	}, nil
}

// Outbound renders a destination as a profile entry.
func Outbound(a netip.Addr, port uint16, proto string) string {
	return netip.AddrPortFrom(a.Unmap(), port).String() + "/" + proto
}
