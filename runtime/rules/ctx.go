package rules

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// evalCtx is the per-event state of one evaluation. Derived strings (a
// command line, an fd tuple, a transformed value) are built into an arena
// that is reset per event, and the common ones are cached for the event, so
// evaluating a whole ruleset allocates nothing once the arena has grown.
type evalCtx struct {
	ev       *event.Event
	hostname string
	arena    []byte

	have     uint32
	cmdline  string
	pcmdline string
	args     string
	fdname   string
}

const (
	haveCmdline = 1 << iota
	havePcmdline
	haveArgs
	haveFdname
)

func (c *evalCtx) reset(ev *event.Event) {
	c.ev = ev
	c.arena = c.arena[:0]
	c.have = 0
}

// str returns the arena bytes from start as a string without copying. The
// arena is only appended to during an event, and a reallocation leaves
// earlier strings pointing at the old array, which the GC keeps alive.
func (c *evalCtx) str(start int) string {
	if len(c.arena) == start {
		return ""
	}
	return unsafe.String(&c.arena[start], len(c.arena)-start)
}

func (c *evalCtx) join(first string, rest []string) string {
	start := len(c.arena)
	c.arena = append(c.arena, first...)
	for _, a := range rest {
		c.arena = append(c.arena, ' ')
		c.arena = append(c.arena, a...)
	}
	return c.str(start)
}

func (c *evalCtx) joinArgs(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return c.join(args[0], args[1:])
}

func (c *evalCtx) procCmdline() string {
	if c.have&haveCmdline == 0 {
		p := &c.ev.Proc
		c.cmdline = c.join(p.Name, p.Args)
		c.have |= haveCmdline
	}
	return c.cmdline
}

func (c *evalCtx) procArgs() string {
	if c.have&haveArgs == 0 {
		c.args = c.joinArgs(c.ev.Proc.Args)
		c.have |= haveArgs
	}
	return c.args
}

func (c *evalCtx) parent() *event.Ancestor {
	if len(c.ev.Proc.Ancestors) == 0 {
		return nil
	}
	return &c.ev.Proc.Ancestors[0]
}

func (c *evalCtx) parentCmdline() (string, bool) {
	a := c.parent()
	if a == nil {
		return "", false
	}
	if c.have&havePcmdline == 0 {
		c.pcmdline = c.join(a.Name, a.Args)
		c.have |= havePcmdline
	}
	return c.pcmdline, true
}

// fdName is fd.name: the path for files, the connection tuple for IP
// sockets ("cip:cport->sip:sport"), as libsinsp renders it.
func (c *evalCtx) fdName() (string, bool) {
	fd := c.ev.FD
	if fd == nil {
		return "", false
	}
	if fd.Name != "" {
		return fd.Name, true
	}
	if fd.Type != event.FDIPv4 && fd.Type != event.FDIPv6 {
		return "", false
	}
	if c.have&haveFdname == 0 {
		start := len(c.arena)
		c.arena = c.appendEndpoint(c.arena, fd.CIP, fd.CPort)
		c.arena = append(c.arena, "->"...)
		c.arena = c.appendEndpoint(c.arena, fd.SIP, fd.SPort)
		c.fdname = c.str(start)
		c.have |= haveFdname
	}
	return c.fdname, true
}

func (c *evalCtx) appendEndpoint(b []byte, ip netip.Addr, port uint16) []byte {
	if ip.IsValid() {
		b = ip.AppendTo(b)
	} else {
		b = append(b, "0.0.0.0"...)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(port), 10)
}

func (c *evalCtx) appendString(fn func(b []byte) []byte) string {
	start := len(c.arena)
	c.arena = fn(c.arena)
	return c.str(start)
}

// fdLocal reports the local and remote ends of an IP socket.
func fdLocal(fd *event.FD) (lip netip.Addr, lport uint16, rip netip.Addr, rport uint16) {
	if fd.Server {
		return fd.SIP, fd.SPort, fd.CIP, fd.CPort
	}
	return fd.CIP, fd.CPort, fd.SIP, fd.SPort
}

func isIPFD(fd *event.FD) bool {
	return fd != nil && (fd.Type == event.FDIPv4 || fd.Type == event.FDIPv6)
}

// fdDirectory is fd.directory: the directory holding a file, or the
// directory itself for a directory fd.
func fdDirectory(fd *event.FD, name string) string {
	if fd.Type == event.FDDirectory {
		return name
	}
	i := strings.LastIndexByte(name, '/')
	switch {
	case i < 0:
		return ""
	case i == 0:
		return "/"
	}
	return name[:i]
}

func fdFilename(name string) string {
	i := strings.LastIndexByte(name, '/')
	return name[i+1:]
}

// typechar maps fd.type to libsinsp's one-letter fd.typechar.
func typechar(t string) string {
	switch t {
	case event.FDFile:
		return "f"
	case event.FDDirectory:
		return "d"
	case event.FDIPv4:
		return "4"
	case event.FDIPv6:
		return "6"
	case event.FDUnix:
		return "u"
	case event.FDPipe:
		return "p"
	case event.FDEvent:
		return "e"
	case event.FDSignal:
		return "s"
	case event.FDEventPoll:
		return "l"
	case event.FDInotify:
		return "i"
	case event.FDTimer:
		return "t"
	case event.FDNetlink:
		return "n"
	case event.FDBPF:
		return "b"
	case event.FDUserfault:
		return "u"
	case event.FDIOUring:
		return "r"
	case event.FDMemfd:
		return "m"
	case event.FDPidfd:
		return "P"
	}
	return "o"
}

// Falco's time renderings.
const (
	isoLayout = "2006-01-02T15:04:05.000000000-0700"
	timeNano  = "15:04:05.000000000"
	timeSec   = "15:04:05"
	dateNano  = "2006-01-02 15:04:05.000000000"
	dateSec   = "2006-01-02 15:04:05"
)

func (c *evalCtx) timeString(layout string) string {
	t := c.ev.Time.UTC()
	return c.appendString(func(b []byte) []byte { return t.AppendFormat(b, layout) })
}

// capNames are the Linux capability names by bit, as Falco prints them.
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func (c *evalCtx) caps(mask uint64) string {
	return c.appendString(func(b []byte) []byte {
		first := true
		for i, n := range capNames {
			if mask&(1<<uint(i)) == 0 {
				continue
			}
			if !first {
				b = append(b, ' ')
			}
			b = append(b, n...)
			first = false
		}
		return b
	})
}

// evtArgs renders evt.args: "name=value name=value".
func (c *evalCtx) evtArgs() string {
	return c.appendString(func(b []byte) []byte {
		for i, a := range c.ev.Args {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, a.Name...)
			b = append(b, '=')
			b = append(b, a.Value...)
		}
		return b
	})
}

func durationSince(ev *event.Event, start time.Time) (int64, bool) {
	if start.IsZero() || ev.Time.IsZero() {
		return 0, false
	}
	return ev.Time.Sub(start).Nanoseconds(), true
}
