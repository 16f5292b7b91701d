package rules

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// ftype is a field's value type.
type ftype int

const (
	tString ftype = iota
	tNum
	tBool // a number 0/1, written true/false in rules and outputs
	tIP   // an address; values may be addresses or CIDR networks
)

func (t ftype) String() string {
	return [...]string{"string", "number", "bool", "ipaddr"}[t]
}

// value is one extracted field value. Only the member of the field's type
// is meaningful.
type value struct {
	s  string
	n  int64
	ip netip.Addr
}

// getter extracts one field instance (field + argument) from an event.
// Single-valued fields set get; multi-valued ones (proc.aname without an
// index, fd.ip, fd.port, fd.net) set each, which calls fn per value and
// reports whether fn returned true for any, the way libsinsp compares them.
type getter struct {
	name string
	typ  ftype
	get  func(c *evalCtx) (value, bool)
	each func(c *evalCtx, fn func(value) bool) bool
}

// argMode says whether a field takes an argument in brackets (or, for
// evt.arg/evt.rawarg, after a dot).
type argMode int

const (
	argNone argMode = iota
	argIndex
	argOptIndex
	argName
	argOptName
)

type fieldDef struct {
	name string
	typ  ftype
	arg  argMode
	desc string
	// mk builds the getter for one use of the field. idx is the parsed
	// index for argIndex/argOptIndex fields (-1 when absent).
	mk func(arg string, idx int) getter
}

func str(f func(c *evalCtx) (string, bool)) func(string, int) getter {
	return func(string, int) getter {
		return getter{typ: tString, get: func(c *evalCtx) (value, bool) {
			s, ok := f(c)
			return value{s: s}, ok
		}}
	}
}

func num(f func(c *evalCtx) (int64, bool)) func(string, int) getter {
	return func(string, int) getter {
		return getter{typ: tNum, get: func(c *evalCtx) (value, bool) {
			n, ok := f(c)
			return value{n: n}, ok
		}}
	}
}

func boolean(f func(c *evalCtx) (bool, bool)) func(string, int) getter {
	return func(string, int) getter {
		return getter{typ: tBool, get: func(c *evalCtx) (value, bool) {
			b, ok := f(c)
			if b {
				return value{n: 1}, ok
			}
			return value{}, ok
		}}
	}
}

func ipf(f func(c *evalCtx) (netip.Addr, bool)) func(string, int) getter {
	return func(string, int) getter {
		return getter{typ: tIP, get: func(c *evalCtx) (value, bool) {
			a, ok := f(c)
			return value{ip: a}, ok && a.IsValid()
		}}
	}
}

func nonEmpty(s string) (string, bool) { return s, s != "" }

func withFD(f func(c *evalCtx, fd *event.FD) (string, bool)) func(string, int) getter {
	return str(func(c *evalCtx) (string, bool) {
		if c.ev.FD == nil {
			return "", false
		}
		return f(c, c.ev.FD)
	})
}

func ipEnd(pick func(fd *event.FD) (netip.Addr, uint16)) (func(string, int) getter, func(string, int) getter) {
	ip := ipf(func(c *evalCtx) (netip.Addr, bool) {
		if !isIPFD(c.ev.FD) {
			return netip.Addr{}, false
		}
		a, _ := pick(c.ev.FD)
		return a, true
	})
	port := num(func(c *evalCtx) (int64, bool) {
		if !isIPFD(c.ev.FD) {
			return 0, false
		}
		_, p := pick(c.ev.FD)
		return int64(p), true
	})
	return ip, port
}

// ancestor returns the n-th ancestor: 0 is the process itself, 1 the parent.
func ancestor(c *evalCtx, n int) (*event.Ancestor, bool) {
	if n <= 0 || n > len(c.ev.Proc.Ancestors) {
		return nil, false
	}
	return &c.ev.Proc.Ancestors[n-1], true
}

// aField builds proc.aname/apid/aexe/aexepath/acmdline: with an index the
// n-th ancestor's value (0 = the process itself); without, any ancestor
// from the parent up matches.
func aField(typ ftype, self func(c *evalCtx) value, anc func(c *evalCtx, a *event.Ancestor) value) func(string, int) getter {
	return func(_ string, idx int) getter {
		if idx >= 0 {
			return getter{typ: typ, get: func(c *evalCtx) (value, bool) {
				if idx == 0 {
					return self(c), true
				}
				a, ok := ancestor(c, idx)
				if !ok {
					return value{}, false
				}
				return anc(c, a), true
			}}
		}
		return getter{typ: typ,
			// Rendered in outputs as the parent's value.
			get: func(c *evalCtx) (value, bool) {
				a, ok := ancestor(c, 1)
				if !ok {
					return value{}, false
				}
				return anc(c, a), true
			},
			each: func(c *evalCtx, fn func(value) bool) bool {
				as := c.ev.Proc.Ancestors
				for i := range as {
					if fn(anc(c, &as[i])) {
						return true
					}
				}
				return false
			}}
	}
}

func openFlags(c *evalCtx) (string, bool) {
	switch c.ev.Type {
	case "open", "openat", "openat2", "open_by_handle_at":
		return c.ev.Args.Get("flags")
	}
	return "", false
}

func hasFlag(flags, name string) bool {
	for flags != "" {
		i := strings.IndexByte(flags, '|')
		f := flags
		if i >= 0 {
			f, flags = flags[:i], flags[i+1:]
		} else {
			flags = ""
		}
		if f == name {
			return true
		}
	}
	return false
}

// evtArg resolves evt.arg.NAME / evt.arg[N].
func evtArg(arg string, idx int) getter {
	return getter{typ: tString, get: func(c *evalCtx) (value, bool) {
		if idx >= 0 {
			if idx < len(c.ev.Args) {
				return value{s: c.ev.Args[idx].Value}, true
			}
			return value{}, false
		}
		s, ok := c.ev.Args.Get(arg)
		return value{s: s}, ok
	}}
}

func evtRawArg(arg string, idx int) getter {
	return getter{typ: tNum, get: func(c *evalCtx) (value, bool) {
		var s string
		var ok bool
		if idx >= 0 {
			if idx < len(c.ev.Args) {
				s, ok = c.ev.Args[idx].Value, true
			}
		} else {
			s, ok = c.ev.Args.Get(arg)
		}
		if !ok {
			return value{}, false
		}
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return value{}, false
		}
		return value{n: n}, true
	}}
}

var fieldTable = map[string]*fieldDef{}

// loadFields fills fieldTable and unsupportedFields on first use: a few
// hundred closures and map entries that every bulkhead command would pay
// for at start-up if package init built them.
var loadFields = sync.OnceFunc(func() {
	defineFields()
	defineUnsupportedFields()
	defineImageFields()
})

func def(name string, typ ftype, arg argMode, desc string, mk func(string, int) getter) {
	fieldTable[name] = &fieldDef{name: name, typ: typ, arg: arg, desc: desc, mk: mk}
}

func defineFields() {
	// evt.*
	// Falco numbers events from 1, and its stable rules use evt.num=0 as
	// "never true"; an unnumbered event (0) must not satisfy it.
	def("evt.num", tNum, argNone, "event sequence number", num(func(c *evalCtx) (int64, bool) { return int64(c.ev.Num), c.ev.Num != 0 }))
	def("evt.time", tString, argNone, "event time with nanoseconds", str(func(c *evalCtx) (string, bool) { return c.timeString(timeNano), true }))
	def("evt.time.s", tString, argNone, "event time without nanoseconds", str(func(c *evalCtx) (string, bool) { return c.timeString(timeSec), true }))
	def("evt.time.iso8601", tString, argNone, "event time in ISO 8601", str(func(c *evalCtx) (string, bool) { return c.timeString(isoLayout), true }))
	def("evt.datetime", tString, argNone, "event date and time", str(func(c *evalCtx) (string, bool) { return c.timeString(dateNano), true }))
	def("evt.datetime.s", tString, argNone, "event date and time without nanoseconds", str(func(c *evalCtx) (string, bool) { return c.timeString(dateSec), true }))
	def("evt.rawtime", tNum, argNone, "event time in ns since the epoch", num(func(c *evalCtx) (int64, bool) { return c.ev.Time.UnixNano(), true }))
	def("evt.rawtime.s", tNum, argNone, "seconds part of evt.rawtime", num(func(c *evalCtx) (int64, bool) { return c.ev.Time.Unix(), true }))
	def("evt.rawtime.ns", tNum, argNone, "nanoseconds part of evt.rawtime", num(func(c *evalCtx) (int64, bool) { return int64(c.ev.Time.Nanosecond()), true }))
	def("evt.type", tString, argNone, "event (syscall) name", str(func(c *evalCtx) (string, bool) { return c.ev.Type, true }))
	def("evt.dir", tString, argNone, "> for entry, < for exit", str(func(c *evalCtx) (string, bool) {
		if c.ev.Dir == "" {
			return event.DirExit, true
		}
		return c.ev.Dir, true
	}))
	def("evt.res", tString, argNone, "SUCCESS or the errno name", str(func(c *evalCtx) (string, bool) {
		if c.ev.Res >= 0 {
			return "SUCCESS", true
		}
		return errnoName(-c.ev.Res), true
	}))
	def("evt.rawres", tNum, argNone, "raw return value", num(func(c *evalCtx) (int64, bool) { return c.ev.Res, true }))
	def("evt.failed", tBool, argNone, "the call returned an error", boolean(func(c *evalCtx) (bool, bool) { return c.ev.Res < 0, true }))
	def("evt.is_open_read", tBool, argNone, "an open for reading", boolean(func(c *evalCtx) (bool, bool) {
		f, ok := openFlags(c)
		return ok && (hasFlag(f, "O_RDONLY") || hasFlag(f, "O_RDWR")), true
	}))
	def("evt.is_open_write", tBool, argNone, "an open for writing", boolean(func(c *evalCtx) (bool, bool) {
		f, ok := openFlags(c)
		return ok && (hasFlag(f, "O_WRONLY") || hasFlag(f, "O_RDWR")), true
	}))
	def("evt.is_open_create", tBool, argNone, "an open with O_CREAT", boolean(func(c *evalCtx) (bool, bool) {
		f, ok := openFlags(c)
		return ok && hasFlag(f, "O_CREAT"), true
	}))
	def("evt.hostname", tString, argNone, "host name", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.hostname) }))
	def("evt.source", tString, argNone, "event source", str(func(c *evalCtx) (string, bool) { return "syscall", true }))
	def("evt.arg", tString, argName, "an argument by name (evt.arg.NAME) or index (evt.arg[N])", evtArg)
	def("evt.rawarg", tNum, argName, "an argument as a number", evtRawArg)
	def("evt.args", tString, argNone, "all arguments as name=value", str(func(c *evalCtx) (string, bool) { return c.evtArgs(), true }))

	// proc.* and thread.*
	def("proc.pid", tNum, argNone, "process id", num(func(c *evalCtx) (int64, bool) { return c.ev.Proc.PID, true }))
	def("thread.tid", tNum, argNone, "thread id", num(func(c *evalCtx) (int64, bool) {
		if c.ev.Proc.TID != 0 {
			return c.ev.Proc.TID, true
		}
		return c.ev.Proc.PID, true
	}))
	def("proc.ppid", tNum, argNone, "parent process id", num(func(c *evalCtx) (int64, bool) {
		if c.ev.Proc.PPID != 0 {
			return c.ev.Proc.PPID, true
		}
		if p := c.parent(); p != nil {
			return p.PID, true
		}
		return 0, false
	}))
	def("proc.vpid", tNum, argNone, "pid in the pid namespace", num(func(c *evalCtx) (int64, bool) { return c.ev.Proc.VPID, c.ev.Proc.VPID != 0 }))
	def("proc.sid", tNum, argNone, "session id", num(func(c *evalCtx) (int64, bool) { return c.ev.Proc.SID, c.ev.Proc.SID != 0 }))
	def("proc.vpgid", tNum, argNone, "process group id in the pid namespace", num(func(c *evalCtx) (int64, bool) { return c.ev.Proc.VPGID, c.ev.Proc.VPGID != 0 }))
	def("proc.name", tString, argNone, "process name (comm)", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.Proc.Name) }))
	def("proc.exe", tString, argNone, "argv[0]", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.Proc.Exe) }))
	def("proc.exepath", tString, argNone, "executable path", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.Proc.ExePath) }))
	def("proc.args", tString, argNone, "arguments after argv[0]", str(func(c *evalCtx) (string, bool) { return c.procArgs(), true }))
	def("proc.cmdline", tString, argNone, "proc.name and proc.args", str(func(c *evalCtx) (string, bool) { return c.procCmdline(), c.ev.Proc.Name != "" }))
	def("proc.cmdnargs", tNum, argNone, "number of arguments", num(func(c *evalCtx) (int64, bool) { return int64(len(c.ev.Proc.Args)), true }))
	def("proc.cmdlenargs", tNum, argNone, "total length of the arguments", num(func(c *evalCtx) (int64, bool) {
		n := 0
		for _, a := range c.ev.Proc.Args {
			n += len(a)
		}
		if len(c.ev.Proc.Args) > 1 {
			n += len(c.ev.Proc.Args) - 1
		}
		return int64(n), true
	}))
	def("proc.cwd", tString, argNone, "working directory", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.Proc.Cwd) }))
	def("proc.tty", tNum, argNone, "controlling terminal, 0 if none", num(func(c *evalCtx) (int64, bool) { return int64(c.ev.Proc.TTY), true }))
	def("proc.duration", tNum, argNone, "ns since the process started", num(func(c *evalCtx) (int64, bool) { return durationSince(c.ev, c.ev.Proc.Start) }))
	def("proc.env", tString, argOptName, "environment, or one variable with proc.env[NAME]", func(arg string, _ int) getter {
		return getter{typ: tString, get: func(c *evalCtx) (value, bool) {
			env := c.ev.Proc.Env
			if arg == "" {
				return value{s: c.joinArgs(env)}, true
			}
			for _, kv := range env {
				if len(kv) > len(arg) && kv[len(arg)] == '=' && kv[:len(arg)] == arg {
					return value{s: kv[len(arg)+1:]}, true
				}
			}
			return value{}, false
		}}
	})
	def("proc.pname", tString, argNone, "parent name", str(func(c *evalCtx) (string, bool) {
		if p := c.parent(); p != nil {
			return nonEmpty(p.Name)
		}
		return "", false
	}))
	def("proc.pexe", tString, argNone, "parent argv[0]", str(func(c *evalCtx) (string, bool) {
		if p := c.parent(); p != nil {
			return nonEmpty(p.Exe)
		}
		return "", false
	}))
	def("proc.pexepath", tString, argNone, "parent executable path", str(func(c *evalCtx) (string, bool) {
		if p := c.parent(); p != nil {
			return nonEmpty(p.ExePath)
		}
		return "", false
	}))
	def("proc.pcmdline", tString, argNone, "parent command line", str(func(c *evalCtx) (string, bool) { return c.parentCmdline() }))
	def("proc.aname", tString, argOptIndex, "ancestor name; proc.aname[N] for the N-th", aField(tString,
		func(c *evalCtx) value { return value{s: c.ev.Proc.Name} },
		func(c *evalCtx, a *event.Ancestor) value { return value{s: a.Name} }))
	def("proc.apid", tNum, argOptIndex, "ancestor pid; proc.apid[N] for the N-th", aField(tNum,
		func(c *evalCtx) value { return value{n: c.ev.Proc.PID} },
		func(c *evalCtx, a *event.Ancestor) value { return value{n: a.PID} }))
	def("proc.aexe", tString, argOptIndex, "ancestor argv[0]", aField(tString,
		func(c *evalCtx) value { return value{s: c.ev.Proc.Exe} },
		func(c *evalCtx, a *event.Ancestor) value { return value{s: a.Exe} }))
	def("proc.aexepath", tString, argOptIndex, "ancestor executable path", aField(tString,
		func(c *evalCtx) value { return value{s: c.ev.Proc.ExePath} },
		func(c *evalCtx, a *event.Ancestor) value { return value{s: a.ExePath} }))
	def("proc.acmdline", tString, argOptIndex, "ancestor command line", aField(tString,
		func(c *evalCtx) value { return value{s: c.procCmdline()} },
		func(c *evalCtx, a *event.Ancestor) value { return value{s: c.join(a.Name, a.Args)} }))
	def("proc.is_exe_writable", tBool, argNone, "executable is writable by the user", boolean(func(c *evalCtx) (bool, bool) { return c.ev.Proc.IsExeWritable, true }))
	def("proc.is_exe_upper_layer", tBool, argNone, "executable is in an overlayfs upper layer", boolean(func(c *evalCtx) (bool, bool) { return c.ev.Proc.IsExeUpperLayer, true }))
	def("proc.is_exe_from_memfd", tBool, argNone, "executable is a memfd", boolean(func(c *evalCtx) (bool, bool) { return c.ev.Proc.IsExeFromMemfd, true }))
	def("thread.cap_effective", tString, argNone, "effective capabilities", str(func(c *evalCtx) (string, bool) { return c.caps(c.ev.Proc.CapEffective), true }))
	def("thread.cap_permitted", tString, argNone, "permitted capabilities", str(func(c *evalCtx) (string, bool) { return c.caps(c.ev.Proc.CapPermitted), true }))
	def("thread.cap_inheritable", tString, argNone, "inheritable capabilities", str(func(c *evalCtx) (string, bool) { return c.caps(c.ev.Proc.CapInheritable), true }))

	// user.* and group.*
	def("user.uid", tNum, argNone, "user id", num(func(c *evalCtx) (int64, bool) { return int64(c.ev.User.UID), true }))
	def("user.name", tString, argNone, "user name", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.User.Name) }))
	def("user.loginuid", tNum, argNone, "audit login uid, -1 if unset", num(func(c *evalCtx) (int64, bool) { return c.ev.User.LoginUID, true }))
	def("user.loginname", tString, argNone, "audit login user name", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.User.LoginName) }))
	def("user.homedir", tString, argNone, "home directory", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.User.HomeDir) }))
	def("user.shell", tString, argNone, "login shell", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.User.Shell) }))
	def("group.gid", tNum, argNone, "group id", num(func(c *evalCtx) (int64, bool) { return int64(c.ev.Group.GID), true }))
	def("group.name", tString, argNone, "group name", str(func(c *evalCtx) (string, bool) { return nonEmpty(c.ev.Group.Name) }))

	// fd.*
	def("fd.num", tNum, argNone, "descriptor number", num(func(c *evalCtx) (int64, bool) {
		if c.ev.FD == nil {
			return 0, false
		}
		return c.ev.FD.Num, true
	}))
	def("fd.type", tString, argNone, "file, directory, ipv4, ipv6, unix, pipe...", withFD(func(_ *evalCtx, fd *event.FD) (string, bool) { return nonEmpty(fd.Type) }))
	def("fd.typechar", tString, argNone, "fd.type as one character", withFD(func(_ *evalCtx, fd *event.FD) (string, bool) { return typechar(fd.Type), true }))
	def("fd.name", tString, argNone, "path or connection tuple", withFD(func(c *evalCtx, _ *event.FD) (string, bool) { return c.fdName() }))
	def("fd.nameraw", tString, argNone, "path as passed to the call", withFD(func(_ *evalCtx, fd *event.FD) (string, bool) {
		if fd.NameRaw != "" {
			return fd.NameRaw, true
		}
		return nonEmpty(fd.Name)
	}))
	def("fd.directory", tString, argNone, "directory of a file fd", withFD(func(c *evalCtx, fd *event.FD) (string, bool) {
		if fd.Type != event.FDFile && fd.Type != event.FDDirectory {
			return "", false
		}
		return nonEmpty(fdDirectory(fd, fd.Name))
	}))
	def("fd.filename", tString, argNone, "file name without directory", withFD(func(c *evalCtx, fd *event.FD) (string, bool) {
		if fd.Type != event.FDFile {
			return "", false
		}
		return nonEmpty(fdFilename(fd.Name))
	}))
	def("fd.l4proto", tString, argNone, "tcp, udp, icmp or raw", withFD(func(_ *evalCtx, fd *event.FD) (string, bool) { return nonEmpty(fd.L4Proto) }))
	def("fd.sockfamily", tString, argNone, "ip or unix", withFD(func(_ *evalCtx, fd *event.FD) (string, bool) {
		switch fd.Type {
		case event.FDIPv4, event.FDIPv6:
			return "ip", true
		case event.FDUnix:
			return "unix", true
		}
		return "", false
	}))
	def("fd.is_server", tBool, argNone, "the process is the server end", boolean(func(c *evalCtx) (bool, bool) {
		return isIPFD(c.ev.FD) && c.ev.FD.Server, isIPFD(c.ev.FD)
	}))
	def("fd.connected", tBool, argNone, "the socket is connected", boolean(func(c *evalCtx) (bool, bool) {
		return c.ev.FD != nil && c.ev.FD.Connected, c.ev.FD != nil
	}))
	def("fd.name_changed", tBool, argNone, "the event changed fd.name", boolean(func(c *evalCtx) (bool, bool) {
		return c.ev.FD != nil && c.ev.FD.NameChanged, c.ev.FD != nil
	}))
	for _, end := range []struct {
		p    string
		pick func(fd *event.FD) (netip.Addr, uint16)
	}{
		{"c", func(fd *event.FD) (netip.Addr, uint16) { return fd.CIP, fd.CPort }},
		{"s", func(fd *event.FD) (netip.Addr, uint16) { return fd.SIP, fd.SPort }},
		{"l", func(fd *event.FD) (netip.Addr, uint16) { a, p, _, _ := fdLocal(fd); return a, p }},
		{"r", func(fd *event.FD) (netip.Addr, uint16) { _, _, a, p := fdLocal(fd); return a, p }},
	} {
		ip, port := ipEnd(end.pick)
		def("fd."+end.p+"ip", tIP, argNone, "IP address", ip)
		def("fd."+end.p+"port", tNum, argNone, "port", port)
		def("fd."+end.p+"net", tIP, argNone, "IP address, compared with networks", ip)
	}
	bothIP := func(string, int) getter {
		g := getter{typ: tIP}
		g.get = func(c *evalCtx) (value, bool) {
			if !isIPFD(c.ev.FD) {
				return value{}, false
			}
			return value{ip: c.ev.FD.CIP}, c.ev.FD.CIP.IsValid()
		}
		g.each = func(c *evalCtx, fn func(value) bool) bool {
			if !isIPFD(c.ev.FD) {
				return false
			}
			return fn(value{ip: c.ev.FD.CIP}) || fn(value{ip: c.ev.FD.SIP})
		}
		return g
	}
	def("fd.ip", tIP, argNone, "client or server IP address (filter only)", bothIP)
	def("fd.net", tIP, argNone, "client or server IP network (filter only)", bothIP)
	def("fd.port", tNum, argNone, "client or server port (filter only)", func(string, int) getter {
		g := getter{typ: tNum}
		g.get = func(c *evalCtx) (value, bool) {
			if !isIPFD(c.ev.FD) {
				return value{}, false
			}
			return value{n: int64(c.ev.FD.CPort)}, true
		}
		g.each = func(c *evalCtx, fn func(value) bool) bool {
			if !isIPFD(c.ev.FD) {
				return false
			}
			return fn(value{n: int64(c.ev.FD.CPort)}) || fn(value{n: int64(c.ev.FD.SPort)})
		}
		return g
	})

	// container.*
	ctr := func(f func(ct *event.Container) string, host string) func(string, int) getter {
		return str(func(c *evalCtx) (string, bool) {
			if c.ev.Container == nil {
				return nonEmpty(host)
			}
			return nonEmpty(f(c.ev.Container))
		})
	}
	def("container.id", tString, argNone, "container id, host outside containers", ctr(func(ct *event.Container) string { return ct.ID }, "host"))
	def("container.name", tString, argNone, "container name", ctr(func(ct *event.Container) string { return ct.Name }, "host"))
	def("container.type", tString, argNone, "container runtime", ctr(func(ct *event.Container) string { return ct.Type }, ""))
	def("container.image", tString, argNone, "image reference", ctr(func(ct *event.Container) string { return ct.Image }, ""))
	def("container.image.repository", tString, argNone, "image repository", ctr(func(ct *event.Container) string { return ct.ImageRepository }, ""))
	def("container.image.tag", tString, argNone, "image tag", ctr(func(ct *event.Container) string { return ct.ImageTag }, ""))
	def("container.image.digest", tString, argNone, "image digest", ctr(func(ct *event.Container) string { return ct.ImageDigest }, ""))
	def("container.privileged", tBool, argNone, "the container is privileged", boolean(func(c *evalCtx) (bool, bool) {
		return c.ev.Container != nil && c.ev.Container.Privileged, c.ev.Container != nil
	}))
	def("container.start_ts", tNum, argNone, "container start time (ns)", num(func(c *evalCtx) (int64, bool) {
		if c.ev.Container == nil || c.ev.Container.StartTS == 0 {
			return 0, false
		}
		return c.ev.Container.StartTS, true
	}))
	def("container.duration", tNum, argNone, "ns since the container started", num(func(c *evalCtx) (int64, bool) {
		if c.ev.Container == nil || c.ev.Container.StartTS == 0 {
			return 0, false
		}
		return c.ev.Time.UnixNano() - c.ev.Container.StartTS, true
	}))
	def("container.label", tString, argName, "container label, container.label[KEY]", labelField(func(ct *event.Container) map[string]string { return ct.Labels }))
	def("container.labels", tString, argNone, "container labels as key:value pairs", labelsField(func(ct *event.Container) map[string]string { return ct.Labels }))

	// k8s.*: from the CRI labels of the container (or its podman pod).
	k8s := func(f func(ct *event.Container) string) func(string, int) getter {
		return str(func(c *evalCtx) (string, bool) {
			if c.ev.Container == nil {
				return "", false
			}
			return nonEmpty(f(c.ev.Container))
		})
	}
	def("k8s.ns.name", tString, argNone, "Kubernetes namespace", k8s(func(ct *event.Container) string { return ct.K8sNamespace }))
	def("k8s.pod.name", tString, argNone, "Kubernetes pod name", k8s(func(ct *event.Container) string { return ct.K8sPodName }))
	def("k8s.pod.uid", tString, argNone, "Kubernetes pod UID", k8s(func(ct *event.Container) string { return ct.K8sPodUID }))
	def("k8s.pod.id", tString, argNone, "Kubernetes pod UID (legacy name of k8s.pod.uid)", k8s(func(ct *event.Container) string { return ct.K8sPodUID }))
	def("k8s.pod.label", tString, argName, "Kubernetes pod label, k8s.pod.label[KEY]", labelField(func(ct *event.Container) map[string]string { return ct.K8sPodLabels }))
	def("k8s.pod.labels", tString, argNone, "Kubernetes pod labels as key:value pairs", labelsField(func(ct *event.Container) map[string]string { return ct.K8sPodLabels }))

	// fd.*ip.name: the domain names a rule compares with, resolved.
	for _, end := range []struct {
		p    string
		pick func(fd *event.FD) netip.Addr
	}{
		{"c", func(fd *event.FD) netip.Addr { return fd.CIP }},
		{"s", func(fd *event.FD) netip.Addr { return fd.SIP }},
		{"l", func(fd *event.FD) netip.Addr { a, _, _, _ := fdLocal(fd); return a }},
		{"r", func(fd *event.FD) netip.Addr { _, _, a, _ := fdLocal(fd); return a }},
	} {
		pick := end.pick
		def("fd."+end.p+"ip.name", tString, argNone, "a domain name compared with resolves to this address", ipName(func(c *evalCtx) (netip.Addr, bool) {
			if !isIPFD(c.ev.FD) {
				return netip.Addr{}, false
			}
			return pick(c.ev.FD), true
		}))
	}
}

// labelField is a KEY-indexed label map field (container.label[KEY]).
func labelField(m func(ct *event.Container) map[string]string) func(string, int) getter {
	return func(arg string, _ int) getter {
		return getter{typ: tString, get: func(c *evalCtx) (value, bool) {
			if c.ev.Container == nil {
				return value{}, false
			}
			v, ok := m(c.ev.Container)[arg]
			return value{s: v}, ok
		}}
	}
}

// labelsField is a whole label map: each "key:value" pair for comparisons
// (k8s.pod.labels contains app:web, in (...)), all of them sorted and
// joined with ", " in outputs.
func labelsField(m func(ct *event.Container) map[string]string) func(string, int) getter {
	return func(string, int) getter {
		g := getter{typ: tString}
		g.get = func(c *evalCtx) (value, bool) {
			if c.ev.Container == nil {
				return value{}, false
			}
			l := m(c.ev.Container)
			if l == nil {
				return value{}, false
			}
			keys := make([]string, 0, len(l))
			for k := range l {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			start := len(c.arena)
			for i, k := range keys {
				if i > 0 {
					c.arena = append(c.arena, ", "...)
				}
				c.arena = append(c.arena, k...)
				c.arena = append(c.arena, ':')
				c.arena = append(c.arena, l[k]...)
			}
			return value{s: c.str(start)}, true
		}
		g.each = func(c *evalCtx, fn func(value) bool) bool {
			if c.ev.Container == nil {
				return false
			}
			for k, v := range m(c.ev.Container) {
				start := len(c.arena)
				c.arena = append(c.arena, k...)
				c.arena = append(c.arena, ':')
				c.arena = append(c.arena, v...)
				if fn(value{s: c.str(start)}) {
					return true
				}
			}
			return false
		}
		return g
	}
}

// unsupportedFields are Falco syscall-source fields (libsinsp and the
// container/k8smeta plugins) that bulkhead's sensor does not supply. A rule
// whose condition needs one is skipped with a warning naming it; in an
// output it renders as <NA>. Any name in neither table is an error, as in
// Falco ("nonexistent field").
var unsupportedFields = map[string]bool{}

func defineUnsupportedFields() {
	for _, f := range strings.Fields(`
evt.cpu evt.deltatime evt.deltatime.s evt.deltatime.ns evt.outputtime evt.latency evt.latency.s
evt.latency.ns evt.latency.human evt.around evt.abspath evt.abspath.src evt.abspath.dst evt.is_io
evt.is_io_read evt.is_io_write evt.io_dir evt.is_wait evt.wait_latency evt.is_syslog evt.count
evt.count.error evt.count.error.file evt.count.error.net evt.count.error.memory evt.count.error.other
evt.count.exit evt.info evt.buffer evt.buflen evt.buflen.in evt.buflen.out evt.buflen.file
evt.buflen.file.in evt.buflen.file.out evt.buflen.net evt.buflen.net.in evt.buflen.net.out
evt.is_open_exec evt.category evt.plugininfo evt.pluginname evt.asynctype evt.rawarg evt.reltime
evt.reltime.s evt.reltime.ns evt.pluginoffset evt.rawtime.ms evt.time.ms evt.is_async
proc.exeline proc.loginshellid proc.fdopencount proc.fdlimit proc.fdusage proc.vmsize proc.vmrss
proc.vmswap proc.pfmajor proc.pfminor proc.nthreads proc.nchilds proc.ppid.duration proc.pid.ts
proc.ppid.ts proc.is_container_healthcheck proc.is_container_liveness_probe
proc.is_container_readiness_probe proc.exe_ino proc.exe_ino.ctime proc.exe_ino.mtime
proc.exe_ino.ctime_duration_proc_start proc.exe_ino.ctime_duration_pidns_start
proc.pidns_init_start_ts proc.sname proc.sid.exe proc.sid.exepath proc.sid.name proc.vpgid.name
proc.vpgid.exe proc.vpgid.exepath proc.is_vpgid_leader proc.is_sid_leader proc.stdin.type
proc.stdout.type proc.stderr.type proc.stdin.name proc.stdout.name proc.stderr.name proc.aenv
proc.pvpid proc.pgid proc.pgid.name proc.pgid.exe proc.pgid.exepath proc.is_pgid_leader
proc.cmdnargs.e proc.exe_ino.ctime_duration proc.cgroups proc.fd
thread.cgroups thread.cgroup thread.exectime thread.totexectime thread.vtid thread.ismain
thread.nametid thread.cpu thread.cpu.user thread.cpu.system thread.vmsize thread.vmrss
thread.vmsize.b thread.vmrss.b thread.pfmajor thread.pfminor
fd.uid fd.containername fd.containerdirectory fd.proto fd.cproto fd.sproto fd.lproto fd.rproto
fd.cip.name fd.sip.name fd.lip.name fd.rip.name fd.dev fd.dev.major fd.dev.minor fd.ino fd.types
fd.is_upper_layer fd.is_lower_layer fd.cipname fd.sipname
fdlist.nums fdlist.names fdlist.cips fdlist.sips fdlist.cports fdlist.sports
container.image.id container.mounts container.mount container.mount.source container.mount.dest
container.mount.mode container.mount.rdwr container.mount.propagation container.healthcheck
container.liveness_probe container.readiness_probe container.ip container.cni.json
container.host_pid container.host_network container.host_ipc container.full_id container.label
container.labels container.cmdline container.user container.info
k8s.pod.name k8s.pod.id k8s.pod.uid k8s.pod.sandbox_id k8s.pod.full_sandbox_id k8s.pod.label
k8s.pod.labels k8s.pod.ip k8s.pod.cni.json k8s.rc.name k8s.rc.id k8s.rc.label k8s.rc.labels
k8s.svc.name k8s.svc.id k8s.svc.label k8s.svc.labels k8s.ns.name k8s.ns.id k8s.ns.label
k8s.ns.labels k8s.rs.name k8s.rs.id k8s.rs.label k8s.rs.labels k8s.deployment.name
k8s.deployment.id k8s.deployment.label k8s.deployment.labels
fs.path.name fs.path.nameraw fs.path.source fs.path.sourceraw fs.path.target fs.path.targetraw
syslog.facility.str syslog.facility syslog.severity.str syslog.severity syslog.message
span.id span.time span.ntags span.nargs span.tags span.tag span.args span.arg span.enterargs
span.enterarg span.duration span.duration.human
evtin.span.id evtin.span.ntags evtin.span.nargs evtin.span.tags evtin.span.tag evtin.span.args
evtin.span.arg evtin.span.p.id evtin.span.p.ntags evtin.span.p.nargs evtin.span.p.tags
evtin.span.p.tag evtin.span.p.args evtin.span.p.arg
mesos.task.name mesos.task.id mesos.task.label mesos.task.labels mesos.framework.name
mesos.framework.id marathon.app.name marathon.app.id marathon.app.label marathon.app.labels
marathon.group.name marathon.group.id
`) {
		if _, ok := fieldTable[f]; !ok {
			unsupportedFields[f] = true
		}
	}
}

// UnsupportedFieldError says a rule needs a Falco field bulkhead's sensor
// does not supply; the rule is skipped, not failed.
type UnsupportedFieldError struct{ Field string }

func (e *UnsupportedFieldError) Error() string {
	return fmt.Sprintf("field %s is not supplied by bulkhead's sensor", e.Field)
}

// UnknownFieldError is a field no Falco syscall source defines.
type UnknownFieldError struct{ Field string }

func (e *UnknownFieldError) Error() string {
	return "filter_check called with nonexistent field " + e.Field
}

// lookupField resolves a field reference to its definition and argument.
func lookupField(f *FieldExpr) (*fieldDef, string, int, error) {
	loadFields()
	name, arg, hasArg := f.Name, f.Arg, f.HasArg
	d, ok := fieldTable[name]
	if !ok {
		// evt.arg.NAME / evt.rawarg.NAME: the field name swallows the
		// argument because it matches the dotted field-name token.
		for _, p := range []string{"evt.arg.", "evt.rawarg."} {
			if strings.HasPrefix(name, p) && !hasArg {
				d, arg, hasArg = fieldTable[strings.TrimSuffix(p, ".")], name[len(p):], true
				ok = true
				break
			}
		}
	}
	if !ok {
		if unsupportedFields[name] {
			return nil, "", 0, &UnsupportedFieldError{Field: name}
		}
		return nil, "", 0, &UnknownFieldError{Field: f.String()}
	}
	idx := -1
	switch d.arg {
	case argNone:
		if hasArg {
			return nil, "", 0, fmt.Errorf("field %s does not take an argument", name)
		}
	case argIndex, argOptIndex:
		if !hasArg {
			if d.arg == argIndex {
				return nil, "", 0, fmt.Errorf("field %s requires an index argument", name)
			}
			break
		}
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 {
			return nil, "", 0, fmt.Errorf("field %s: invalid index %q", name, arg)
		}
		idx = n
	case argName, argOptName:
		if !hasArg && d.arg == argName {
			return nil, "", 0, fmt.Errorf("field %s requires an argument", name)
		}
		// evt.arg[N] is an index, evt.arg.NAME and evt.arg[NAME] a name.
		if f.HasArg {
			if n, err := strconv.Atoi(arg); err == nil && n >= 0 {
				idx = n
			}
		}
	}
	return d, arg, idx, nil
}

// Field describes one supported field, for `rules --list-fields` style
// listings and documentation.
type Field struct {
	Name string
	Type string
	Desc string
}

// Fields lists the fields bulkhead supplies, sorted by name.
func Fields() []Field {
	loadFields()
	out := make([]Field, 0, len(fieldTable))
	for _, d := range fieldTable {
		out = append(out, Field{Name: d.name, Type: d.typ.String(), Desc: d.desc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// errnoNames maps Linux errno values to names for evt.res.
var errnoNames = map[int64]string{
	1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
	9: "EBADF", 10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
	16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
	23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
	30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM", 34: "ERANGE", 35: "EDEADLK", 36: "ENAMETOOLONG",
	37: "ENOLCK", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA", 75: "EOVERFLOW",
	88: "ENOTSOCK", 95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL",
	100: "ENETDOWN", 101: "ENETUNREACH", 103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS",
	106: "EISCONN", 107: "ENOTCONN", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH",
	114: "EALREADY", 115: "EINPROGRESS", 116: "ESTALE", 122: "EDQUOT", 125: "ECANCELED",
}

func errnoName(e int64) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "E" + strconv.FormatInt(e, 10)
}
