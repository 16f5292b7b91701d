package profile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// DefaultTempPaths are the directories whose writes are not learned.
var DefaultTempPaths = []string{"/tmp", "/var/tmp", "/dev", "/proc", "/sys", "/run"}

// Options configure a Learner.
type Options struct {
	// Dir holds the profiles, one file per image id:
	// DIR/sha256-<hex>.yaml, when Store is nil.
	Dir string
	// Window is how long a new image's profile learns.
	Window time.Duration
	// TempPaths are directories whose writes are not learned (default
	// DefaultTempPaths).
	TempPaths []string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SaveEvery is how often a learning profile with news is saved
	// (default 10s); profiles are also saved when they start enforcing
	// and on Close.
	SaveEvery time.Duration
	// Stderr receives progress and problems (nil: discarded).
	Stderr io.Writer
	// Store keeps the profiles (default DirStore{Dir}); bulkhead server's
	// is another.
	Store Store
}

// Store keeps profiles by image id. Load's error wraps fs.ErrNotExist
// when the image has none.
type Store interface {
	Load(id string) (*Profile, error)
	Save(p *Profile) error
	// Where names where the profile of id is kept, for messages.
	Where(id string) string
}

// DirStore keeps profiles in a directory, DIR/sha256-<hex>.yaml.
type DirStore struct{ Dir string }

func (d DirStore) Load(id string) (*Profile, error) { return Load(File(d.Dir, id)) }
func (d DirStore) Save(p *Profile) error            { return Save(p, File(d.Dir, p.Image)) }
func (d DirStore) Where(id string) string           { return File(d.Dir, id) }

// Learner keeps the profiles of the images whose containers it sees.
// Enrich is not safe for concurrent use (the event loop calls it).
type Learner struct {
	o        Options
	profiles map[string]*state
	res      event.ProfileResult
}

type state struct {
	p    *Profile
	file string
	// sets of the entries as learned (exact) and their matchers (entries
	// edited into patterns).
	exact    map[string]map[string]bool
	patterns map[string][]matcher
	// reported are the unexpected items already alerted on.
	reported map[string]bool
	dirty    bool
	saved    time.Time
	full     bool
	// broken is set when the file could not be read: the image is then
	// neither learned nor enforced (the file is kept as it is).
	broken bool
}

// New returns a Learner.
func New(o Options) *Learner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TempPaths == nil {
		o.TempPaths = DefaultTempPaths
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 10 * time.Second
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Store == nil {
		o.Store = DirStore{Dir: o.Dir}
	}
	return &Learner{o: o, profiles: map[string]*state{}}
}

// EventTypes are the event types the learner needs.
func (l *Learner) EventTypes() []string {
	return []string{"execve", "execveat", "connect", "sendto", "listen", "bind", "open", "openat", "openat2", "creat",
		"write", "sendmsg", "sendmmsg"}
}

// File is where the profile of image id is kept.
func File(dir, id string) string {
	return filepath.Join(dir, strings.Replace(id, ":", "-", 1)+".yaml")
}

// Load reads a profile file.
func Load(file string) (*Profile, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Decode(f, file)
}

// Save writes p to file atomically.
func Save(p *Profile, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".profile-*")
	if err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = p.Encode(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("save profile %s: %w", file, err)
	}
	return nil
}

// dnsQuery returns the DNS name a send asks for (the sensor's "query"
// argument, decoded from the query it captured).
func dnsQuery(ev *event.Event) (string, bool) {
	switch ev.Type {
	case "sendto", "sendmsg", "sendmmsg", "write":
		if ev.Res < 0 {
			return "", false
		}
		q, ok := ev.Args.Get("query")
		return q, ok && q != ""
	}
	return "", false
}

// observe returns the behaviour an event shows, if any.
func (l *Learner) observe(ev *event.Event) (kind, item string) {
	switch ev.Type {
	case "execve", "execveat":
		if ev.Res == 0 && ev.Proc.ExePath != "" {
			return event.ProfileExec, ev.Proc.ExePath
		}
	case "connect", "sendto":
		fd := ev.FD
		if fd == nil || (fd.Type != event.FDIPv4 && fd.Type != event.FDIPv6) || fd.Server || !fd.SIP.IsValid() {
			return "", ""
		}
		if ev.Type == "connect" && !(ev.Res == 0 || ev.Res == -115) {
			return "", ""
		}
		if ev.Type == "sendto" && (!fd.NameChanged || ev.Res < 0) {
			return "", ""
		}
		if fd.L4Proto != "tcp" && fd.L4Proto != "udp" {
			return "", ""
		}
		return event.ProfileOutbound, Outbound(fd.SIP, fd.SPort, fd.L4Proto)
	case "listen", "bind":
		fd := ev.FD
		if ev.Res != 0 || fd == nil || (fd.Type != event.FDIPv4 && fd.Type != event.FDIPv6) || fd.SPort == 0 {
			return "", ""
		}
		// TCP servers are learned at listen, UDP ones at bind.
		if (ev.Type == "listen") != (fd.L4Proto == "tcp") {
			return "", ""
		}
		// A bind to port 0 takes an ephemeral port: a client (a DNS
		// resolver's socket), not a server.
		if a, ok := ev.Args.Get("addr"); ok && ev.Type == "bind" {
			if ap, err := netip.ParseAddrPort(a); err == nil && ap.Port() == 0 {
				return "", ""
			}
		}
		return event.ProfileListen, fmt.Sprintf("%d/%s", fd.SPort, fd.L4Proto)
	case "open", "openat", "openat2", "creat":
		if ev.Res < 0 || ev.FD == nil || ev.FD.Type != event.FDFile || ev.FD.Name == "" {
			return "", ""
		}
		if ev.Type != "creat" {
			fl, _ := ev.Args.Get("flags")
			if !hasFlag(fl, "O_WRONLY") && !hasFlag(fl, "O_RDWR") && !hasFlag(fl, "O_CREAT") {
				return "", ""
			}
		}
		for _, t := range l.o.TempPaths {
			if ev.FD.Name == t || strings.HasPrefix(ev.FD.Name, strings.TrimSuffix(t, "/")+"/") {
				return "", ""
			}
		}
		return event.ProfileWrite, ev.FD.Name
	}
	return "", ""
}

func hasFlag(flags, name string) bool {
	for f := range strings.SplitSeq(flags, "|") {
		if f == name {
			return true
		}
	}
	return false
}

// Enrich sets ev.Profile for events that show behaviour, learning it
// during the window and judging it afterwards. An unexpected item is
// reported once per image and run. ev.Profile points into the Learner
// and is reused by the next call.
func (l *Learner) Enrich(ev *event.Event) {
	ct := ev.Container
	if ct == nil || ct.ImageID == "" || ev.Proc.IsRuntimeInit() {
		return
	}
	kind, item := l.observe(ev)
	name, isDNS := dnsQuery(ev)
	if kind == "" && !isDNS {
		return
	}
	now := l.o.Now()
	s := l.state(ct, now)
	if s == nil || s.broken {
		return
	}
	if isDNS {
		// A DNS query shows two behaviours: the name looked up and (for
		// a send with an address) the resolver. The event carries the
		// unexpected one, the outbound one first when both are.
		if kind == "" {
			kind, item = event.ProfileDNS, name
		} else if l.judge(ct, s, now, kind, item); !l.res.Unexpected {
			kind, item = event.ProfileDNS, name
		} else {
			ev.Profile = &l.res
			return
		}
	}
	l.judge(ct, s, now, kind, item)
	ev.Profile = &l.res
}

// judge learns or judges one behaviour of a container of s's image into
// l.res.
func (l *Learner) judge(ct *event.Container, s *state, now time.Time, kind, item string) {
	if s.p.State == Learning && !now.Before(s.p.LearningEnds) {
		s.p.State = Enforcing
		s.dirty = true
		l.save(s, now)
		fmt.Fprintf(l.o.Stderr, "bulkhead: profile of image %s learned (%s), now enforcing\n", s.p.Image, s.summary())
	}
	l.res = event.ProfileResult{Image: s.p.Image, State: s.p.State, Kind: kind, Item: item}
	known := s.has(kind, item)
	if s.p.State == Learning {
		if !known {
			s.add(kind, item, l.o.Stderr)
			if ct.Name != "" && !slices.Contains(s.p.Names, ct.Name) && len(s.p.Names) < 64 {
				s.p.Names = append(s.p.Names, ct.Name)
			}
		}
		if s.dirty && now.Sub(s.saved) >= l.o.SaveEvery {
			l.save(s, now)
		}
		return
	}
	if known {
		return
	}
	key := kind + "\x00" + item
	if s.reported[key] {
		return
	}
	if len(s.reported) > MaxEntries {
		clear(s.reported)
	}
	s.reported[key] = true
	l.res.Unexpected = true
}

func (s *state) summary() string {
	return fmt.Sprintf("%d executables, %d outbound, %d dns, %d listening, %d writes",
		len(s.p.Executables), len(s.p.Outbound), len(s.p.DNS), len(s.p.Listening), len(s.p.Writes))
}

func (s *state) has(kind, item string) bool {
	if s.exact[kind][item] {
		return true
	}
	for _, m := range s.patterns[kind] {
		if m(item) {
			return true
		}
	}
	return false
}

func (s *state) add(kind, item string, stderr io.Writer) {
	list := s.p.list(kind)
	if len(*list) >= MaxEntries {
		if !s.full {
			s.full = true
			fmt.Fprintf(stderr, "bulkhead: profile of image %s: %s has %d entries, learning no more (edit it into patterns)\n", s.p.Image, listName(kind), MaxEntries)
		}
		return
	}
	*list = append(*list, item)
	s.exact[kind][item] = true
	s.dirty = true
}

// state returns the profile of the container's image, loading it from
// Dir or starting it.
func (l *Learner) state(ct *event.Container, now time.Time) *state {
	id := ct.ImageID
	if s, ok := l.profiles[id]; ok {
		return s
	}
	if !imageRe().MatchString(id) {
		return nil
	}
	s := &state{file: l.o.Store.Where(id), reported: map[string]bool{}}
	p, err := l.o.Store.Load(id)
	switch {
	case err == nil:
		fmt.Fprintf(l.o.Stderr, "bulkhead: profile of image %s loaded from %s (%s)\n", id, s.file, p.State)
	case errors.Is(err, fs.ErrNotExist):
		p = &Profile{APIVersion: APIVersion, Kind: Kind, Image: id, State: Learning,
			LearningStarted: now.UTC().Truncate(time.Second), LearningEnds: now.Add(l.o.Window).UTC().Truncate(time.Second)}
		if ct.Image != "" {
			p.Names = append(p.Names, ct.Image)
		}
		s.dirty = true
		fmt.Fprintf(l.o.Stderr, "bulkhead: profile of image %s: learning until %s into %s\n", id, p.LearningEnds.Format(time.RFC3339), s.file)
	default:
		fmt.Fprintf(l.o.Stderr, "bulkhead: %v; image %s is not profiled until it is fixed\n", err, id)
		s.broken = true
		l.profiles[id] = s
		return s
	}
	s.p = p
	s.index()
	l.profiles[id] = s
	return s
}

// index builds the sets from the profile's entries: exact values, and
// matchers for the entries that are patterns.
func (s *state) index() {
	s.exact = map[string]map[string]bool{}
	s.patterns = map[string][]matcher{}
	for _, li := range s.p.lists() {
		s.exact[li.kind] = map[string]bool{}
		for _, e := range *li.list {
			s.exact[li.kind][e] = true
			if isPattern(li.kind, e) {
				if m, err := compile(li.kind, e); err == nil {
					s.patterns[li.kind] = append(s.patterns[li.kind], m)
				}
			}
		}
	}
}

// isPattern reports whether an entry matches more than its own text.
func isPattern(kind, e string) bool {
	switch kind {
	case event.ProfileExec, event.ProfileWrite:
		return strings.ContainsAny(e, "*?[\\")
	case event.ProfileDNS:
		return strings.HasPrefix(e, "*.") || e != strings.ToLower(strings.TrimSuffix(e, "."))
	}
	// outbound and listening entries may be written in other forms
	// ("[::ffff:1.2.3.4]", CIDRs, "*"): always match them.
	return true
}

func (l *Learner) save(s *state, now time.Time) {
	if !s.dirty {
		return
	}
	if err := l.o.Store.Save(s.p); err != nil {
		fmt.Fprintf(l.o.Stderr, "bulkhead: %v\n", err)
	}
	s.dirty = false
	s.saved = now
}

// Close saves the profiles with news.
func (l *Learner) Close() error {
	now := l.o.Now()
	for _, s := range l.profiles {
		if !s.broken {
			l.save(s, now)
		}
	}
	return nil
}
