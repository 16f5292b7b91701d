package sensor

import (
	"net/netip"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// converter turns records into events: it numbers them, keeps the process
// table and resolves containers and user names.
type converter struct {
	procs *procTable
	ctrs  *containers
	boot  time.Time
	num   uint64
	ids   map[string]*idNames // by container id; "" is the host
	anc   []event.Ancestor
	fd    event.FD
	// hostRoot is where the host's /etc/passwd and /etc/group are.
	hostRoot string
}

type idNames struct {
	users, groups passwd
}

func newConverter(procDir string, boot time.Time, sources []MetadataSource) *converter {
	return &converter{
		procs: newProcTable(procDir, boot),
		ctrs:  newContainers(procDir, sources),
		boot:  boot,
		ids:   map[string]*idNames{},

		hostRoot: "/",
	}
}

func (c *converter) wall(mono uint64) time.Time {
	return c.boot.Add(time.Duration(mono))
}

// names returns the user and group tables of the process's root: the
// container's /etc/passwd, as Falco resolves user.name inside containers.
func (c *converter) names(ct *event.Container, pid uint32) *idNames {
	key := ""
	if ct != nil {
		key = ct.ID
	}
	if n, ok := c.ids[key]; ok {
		return n
	}
	root := c.hostRoot
	if ct != nil {
		root = filepath.Join(c.procs.dir, strconv.FormatUint(uint64(pid), 10), "root")
	}
	n := &idNames{
		users:  readPasswd(filepath.Join(root, "etc", "passwd")),
		groups: readPasswd(filepath.Join(root, "etc", "group")),
	}
	if len(c.ids) > 4096 {
		clear(c.ids)
	}
	c.ids[key] = n
	return n
}

// convert fills ev from r. ev's slices and FD are reused by the next call.
func (c *converter) convert(r *record, ev *event.Event) {
	c.num++
	*ev = event.Event{
		Num:  c.num,
		Time: c.wall(r.ts),
		Type: kindNames[r.kind],
		Dir:  event.DirExit,
		Res:  r.ret,
	}
	var start time.Time
	if r.start != 0 {
		start = c.wall(r.start)
	}
	pid := int64(r.pid)
	isExec := r.kind == kExecve || r.kind == kExecveat
	// An exec record carries the new image, argv and cwd: a process first
	// seen at its exec needs nothing from /proc.
	p := c.procs.get(pid, int64(r.ppid), r.comm, start, !isExec)
	if isExec {
		c.exec(p, r)
	}
	ct := c.ctrs.lookup(r.cgroup, r.pid)
	ev.Container = ct
	ev.Proc = event.Process{
		PID: pid, TID: int64(r.tid), PPID: p.ppid, VPID: int64(r.vpid),
		Name: p.name, Exe: p.exe, ExePath: p.exepath, Args: p.args, Cwd: p.cwd,
		SID: int64(r.sid), VPGID: int64(r.pgid),
		TTY: r.tty, Start: p.start, Env: p.env,
		CapEffective: r.capEff, CapPermitted: r.capPrm, CapInheritable: r.capInh,
	}
	if r.kind == kExecve || r.kind == kExecveat {
		ev.Proc.IsExeWritable = r.flags&exeWritable != 0
		ev.Proc.IsExeUpperLayer = r.flags&exeUpperLayer != 0
		ev.Proc.IsExeFromMemfd = r.flags&exeFromMemfd != 0
	}
	c.anc = c.procs.ancestors(p, c.anc)
	ev.Proc.Ancestors = c.anc

	names := c.names(ct, r.pid)
	u := names.users.names[r.uid]
	ev.User = event.User{UID: r.uid, Name: u.name, HomeDir: u.home, Shell: u.shell, LoginUID: int64(int32(r.loginuid))}
	if r.loginuid != ^uint32(0) {
		ev.User.LoginName = names.users.names[r.loginuid].name
	}
	ev.Group = event.Group{GID: r.gid, Name: names.groups.names[r.gid].name}

	c.args(r, ev, p)
	if r.kind == kProcexit {
		c.procs.exit(pid, ev.Time)
	}
}

// exec updates the process entry with the new image.
func (c *converter) exec(p *proc, r *record) {
	argv := splitArgv(r.strs[1])
	p.exe, p.args = "", nil
	if len(argv) > 0 {
		p.exe, p.args = argv[0], argv[1:]
	}
	p.cwd = dirSlash(r.str(2))
	p.exepath = r.str(3)
	if p.exepath == "" {
		p.exepath = r.str(0)
	}
	p.name = r.comm
	p.env = nil
	if r.nstr > 4 {
		p.env = splitArgv(r.strs[4])
	}
}

// joinPath resolves a path argument against the directory it is relative
// to, and cleans it, as libsinsp computes fd.name.
func joinPath(raw, base string) string {
	if raw == "" {
		return ""
	}
	if !strings.HasPrefix(raw, "/") && base != "" {
		raw = base + "/" + raw
	}
	return path.Clean(raw)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func fdArg(v uint64) string { return itoa(int64(int32(v))) }

// fdOf fills the event's fd from the header's description of it.
func (c *converter) fdOf(r *record, ev *event.Event, num int64) *event.FD {
	c.fd = event.FD{Num: num}
	fd := &c.fd
	switch r.fdType {
	case ftFile:
		fd.Type = event.FDFile
	case ftDir:
		fd.Type = event.FDDirectory
	case ftPipe:
		fd.Type = event.FDPipe
	case ftSock:
		switch r.family {
		case 2:
			fd.Type = event.FDIPv4
		case 10:
			fd.Type = event.FDIPv6
		case 1:
			fd.Type = event.FDUnix
		case 16:
			fd.Type = event.FDNetlink
		case 17:
			fd.Type = event.FDPacket
		default:
			fd.Type = "socket"
		}
	}
	if fd.Type == event.FDIPv4 || fd.Type == event.FDIPv6 {
		var local, remote netip.Addr
		if r.family == 2 {
			local, remote = netip.AddrFrom4([4]byte(r.saddr[:4])), netip.AddrFrom4([4]byte(r.daddr[:4]))
		} else {
			local, remote = netip.AddrFrom16(r.saddr).Unmap(), netip.AddrFrom16(r.daddr).Unmap()
			if local.Is4() && remote.Is4() {
				fd.Type = event.FDIPv4
			}
		}
		// The header has the local end first; the event has client and
		// server ends, and Server says which one is this process.
		fd.CIP, fd.CPort, fd.SIP, fd.SPort = local, r.sport, remote, r.dport
		switch r.protocol {
		case 6:
			fd.L4Proto = "tcp"
		case 17:
			fd.L4Proto = "udp"
		case 1, 58:
			fd.L4Proto = "icmp"
		default:
			if r.sockType == 3 {
				fd.L4Proto = "raw"
			}
		}
	}
	ev.FD = fd
	return fd
}

// serverSide swaps the ends of an IP fd so that the local end is the server.
func serverSide(fd *event.FD) {
	fd.CIP, fd.CPort, fd.SIP, fd.SPort = fd.SIP, fd.SPort, fd.CIP, fd.CPort
	fd.Server = true
}

// args renders the syscall arguments in Falco's names and formats, and
// the fd the call acted on.
func (c *converter) args(r *record, ev *event.Event, p *proc) {
	a := r.args
	res := itoa(r.ret)
	if r.ret < 0 {
		res = errName(-r.ret)
	}
	set := func(kv ...string) {
		args := make(event.Args, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			args = append(args, event.Arg{Name: kv[i], Value: kv[i+1]})
		}
		ev.Args = args
	}
	switch r.kind {
	case kExecve, kExecveat:
		set("res", res, "exe", p.exe, "args", strings.Join(p.args, " "), "tid", itoa(int64(r.tid)),
			"pid", itoa(int64(r.pid)), "ptid", itoa(p.ppid), "cwd", p.cwd, "comm", r.comm,
			"tty", strconv.FormatUint(uint64(r.tty), 10), "loginuid", itoa(int64(int32(r.loginuid))),
			"flags", flags(uint64(r.flags), exeFlagNames), "uid", strconv.FormatUint(uint64(r.uid), 10),
			"trusted_exepath", p.exepath, "gid", strconv.FormatUint(uint64(r.gid), 10), "filename", r.str(0))
	case kProcexit:
		set("status", itoa(r.ret), "ret", itoa(r.ret>>8&0xff), "sig", itoa(r.ret&0x7f), "core", strconv.FormatBool(r.ret&0x80 != 0))
	case kOpen, kOpenat, kOpenat2, kCreat:
		raw := r.str(0)
		fl := a[1]
		mode := a[2]
		switch r.kind {
		case kOpenat, kOpenat2:
			fl, mode = a[2], a[3]
		case kCreat:
			fl, mode = 01|0100|01000, a[1] // O_WRONLY|O_CREAT|O_TRUNC
		}
		fdn := r.ret
		if fdn < 0 {
			fdn = -1
		}
		fd := c.fdOf(r, ev, fdn)
		if fd.Type == "" {
			fd.Type = event.FDFile
		}
		fd.Name = joinPath(raw, r.str(1))
		if raw != fd.Name {
			fd.NameRaw = raw
		}
		switch r.kind {
		case kOpen:
			set("fd", res, "name", raw, "flags", openFlags(fl), "mode", octal(mode))
		case kCreat:
			set("fd", res, "name", raw, "mode", octal(mode))
		case kOpenat:
			set("fd", res, "dirfd", dirfd(a[0]), "name", raw, "flags", openFlags(fl), "mode", octal(mode))
		case kOpenat2:
			set("fd", res, "dirfd", dirfd(a[0]), "name", raw, "flags", openFlags(fl), "mode", octal(mode), "resolve", strconv.FormatUint(a[4], 10))
		}
	case kConnect, kSendto:
		fd := c.fdOf(r, ev, int64(int32(a[0])))
		sa, ok := parseSockaddr(r.strs[0])
		if ok && sa.family == 1 {
			fd.Type = event.FDUnix
			fd.Name = sa.path
		} else if ok && (fd.Type == event.FDIPv4 || fd.Type == event.FDIPv6) && (!fd.SIP.IsValid() || fd.SIP.IsUnspecified() || fd.SPort == 0) {
			// A failed or UDP connect may leave the socket without its
			// peer: take it from the address the process passed.
			fd.SIP, fd.SPort = sa.addr, sa.port
		}
		fd.Connected = r.kind == kConnect && (r.ret == 0 || -r.ret == 115 /* EINPROGRESS */)
		fd.NameChanged = r.kind == kSendto
		tuple := tupleString(fd)
		if r.kind == kConnect {
			set("fd", fdArg(a[0]), "addr", sa.String(), "res", res, "tuple", tuple)
		} else {
			set("fd", fdArg(a[0]), "size", strconv.FormatUint(a[2], 10), "tuple", tuple, "res", res)
			addQuery(ev, r.strs[1])
		}
	case kWrite, kSendmsg, kSendmmsg:
		// Reported only for DNS queries (the kernel side filters).
		fd := c.fdOf(r, ev, int64(int32(a[0])))
		if sa, ok := parseSockaddr(r.strs[0]); ok && (fd.Type == event.FDIPv4 || fd.Type == event.FDIPv6) && (!fd.SIP.IsValid() || fd.SPort == 0) {
			fd.SIP, fd.SPort = sa.addr, sa.port
		}
		if r.kind == kWrite {
			set("fd", fdArg(a[0]), "size", strconv.FormatUint(a[2], 10), "res", res)
		} else {
			set("fd", fdArg(a[0]), "tuple", tupleString(fd), "res", res)
		}
		addQuery(ev, r.strs[1])
	case kAccept, kAccept4:
		if r.ret < 0 {
			set("fd", res)
			break
		}
		fd := c.fdOf(r, ev, r.ret)
		if fd.Type == event.FDIPv4 || fd.Type == event.FDIPv6 {
			serverSide(fd)
		}
		fd.Connected = true
		if r.kind == kAccept4 {
			set("fd", res, "tuple", tupleString(fd), "flags", strconv.FormatUint(a[3], 10))
		} else {
			set("fd", res, "tuple", tupleString(fd))
		}
	case kBind:
		fd := c.fdOf(r, ev, int64(int32(a[0])))
		sa, ok := parseSockaddr(r.strs[0])
		if ok && sa.family == 1 {
			fd.Type, fd.Name = event.FDUnix, sa.path
		} else if fd.Type == event.FDIPv4 || fd.Type == event.FDIPv6 {
			if ok && r.ret < 0 {
				fd.CIP, fd.CPort = sa.addr, sa.port
			}
			serverSide(fd)
		}
		set("fd", fdArg(a[0]), "addr", sa.String(), "res", res)
	case kListen:
		fd := c.fdOf(r, ev, int64(int32(a[0])))
		if fd.Type == event.FDIPv4 || fd.Type == event.FDIPv6 {
			serverSide(fd)
		}
		set("fd", fdArg(a[0]), "backlog", strconv.FormatUint(a[1], 10), "res", res)
	case kSocket:
		if r.ret >= 0 {
			fd := c.fdOf(r, ev, r.ret)
			if fd.Type == "" || fd.Type == "socket" {
				fd.Type = socketFDType(a[0])
			}
			// A new socket has no ends yet.
			fd.CIP, fd.SIP = netip.Addr{}, netip.Addr{}
		}
		set("domain", family(a[0]), "type", sockType(a[1]), "proto", strconv.FormatUint(a[2], 10), "fd", res)
	case kDup, kDup2, kDup3:
		fdn := r.ret
		if fdn < 0 {
			fdn = int64(int32(a[0]))
		}
		fd := c.fdOf(r, ev, fdn)
		if fd.Type == event.FDFile || fd.Type == event.FDDirectory {
			fd.Name = r.str(0)
		}
		switch r.kind {
		case kDup:
			set("res", res, "oldfd", fdArg(a[0]))
		case kDup2:
			set("res", res, "oldfd", fdArg(a[0]), "newfd", fdArg(a[1]))
		case kDup3:
			set("res", res, "oldfd", fdArg(a[0]), "newfd", fdArg(a[1]), "flags", strconv.FormatUint(a[2], 10))
		}
	case kUnlink:
		set("res", res, "path", r.str(0))
	case kUnlinkat:
		set("res", res, "dirfd", dirfd(a[0]), "name", r.str(0), "flags", flags(a[2], atFlagNames))
	case kMkdir:
		set("res", res, "path", r.str(0), "mode", octal(a[1]))
	case kMkdirat:
		set("res", res, "dirfd", dirfd(a[0]), "path", r.str(0), "mode", octal(a[2]))
	case kChmod:
		set("res", res, "filename", r.str(0), "mode", flags(a[1], modeNames))
	case kFchmodat:
		set("res", res, "dirfd", dirfd(a[0]), "filename", r.str(0), "mode", flags(a[2], modeNames))
	case kFchmod:
		set("res", res, "fd", fdArg(a[0]), "mode", flags(a[1], modeNames))
		if name := r.str(0); name != "" {
			c.fd = event.FD{Num: int64(int32(a[0])), Type: event.FDFile, Name: name}
			ev.FD = &c.fd
		}
	case kRename:
		set("res", res, "oldpath", r.str(0), "newpath", r.str(2))
	case kRenameat:
		set("res", res, "olddirfd", dirfd(a[0]), "oldpath", r.str(0), "newdirfd", dirfd(a[2]), "newpath", r.str(2))
	case kRenameat2:
		set("res", res, "olddirfd", dirfd(a[0]), "oldpath", r.str(0), "newdirfd", dirfd(a[2]), "newpath", r.str(2), "flags", flags(a[4], renameFlagNames))
	case kLink:
		set("res", res, "oldpath", r.str(0), "newpath", r.str(2))
	case kLinkat:
		set("res", res, "olddir", dirfd(a[0]), "oldpath", r.str(0), "newdir", dirfd(a[2]), "newpath", r.str(2), "flags", flags(a[4], atFlagNames))
	case kSymlink:
		set("res", res, "target", r.str(0), "linkpath", r.str(1))
	case kSymlinkat:
		set("res", res, "target", r.str(0), "linkdirfd", dirfd(a[1]), "linkpath", r.str(1))
	case kSetuid:
		set("res", res, "uid", strconv.FormatUint(uint64(uint32(a[0])), 10))
	case kSetgid:
		set("res", res, "gid", strconv.FormatUint(uint64(uint32(a[0])), 10))
	case kSetresuid:
		set("res", res, "ruid", idArg(a[0]), "euid", idArg(a[1]), "suid", idArg(a[2]))
	case kSetresgid:
		set("res", res, "rgid", idArg(a[0]), "egid", idArg(a[1]), "sgid", idArg(a[2]))
	case kCapset:
		set("res", res, "cap_inheritable", strconv.FormatUint(r.capInh, 10), "cap_permitted", strconv.FormatUint(r.capPrm, 10),
			"cap_effective", strconv.FormatUint(r.capEff, 10))
	case kPtrace:
		set("request", ptraceRequest(a[0]), "pid", itoa(int64(int32(a[1]))), "res", res)
	case kMount:
		set("res", res, "dev", r.str(0), "dir", r.str(1), "type", r.str(2), "flags", flags(a[3], mountFlagNames))
	case kUmount2:
		set("res", res, "name", r.str(0), "flags", flags(a[1], umountFlagNames))
	case kInitModule:
		set("res", res, "length", strconv.FormatUint(a[1], 10), "uargs", r.str(0))
	case kFinitModule:
		set("res", res, "fd", fdArg(a[0]), "uargs", r.str(0), "flags", strconv.FormatUint(a[2], 10))
		if name := r.str(1); name != "" {
			c.fd = event.FD{Num: int64(int32(a[0])), Type: event.FDFile, Name: name}
			ev.FD = &c.fd
		}
	case kMemfdCreate:
		set("fd", res, "name", r.str(0), "flags", strconv.FormatUint(a[1], 10))
		if r.ret >= 0 {
			c.fd = event.FD{Num: r.ret, Type: event.FDMemfd, Name: r.str(0)}
			ev.FD = &c.fd
		}
	}
}

// idArg renders a uid/gid argument, -1 meaning unchanged.
func idArg(v uint64) string {
	if uint32(v) == ^uint32(0) {
		return "-1"
	}
	return strconv.FormatUint(uint64(uint32(v)), 10)
}

func socketFDType(domain uint64) string {
	switch domain {
	case 1:
		return event.FDUnix
	case 2:
		return event.FDIPv4
	case 10:
		return event.FDIPv6
	case 16:
		return event.FDNetlink
	case 17:
		return event.FDPacket
	}
	return "socket"
}

// tupleString is Falco's "cip:cport->sip:sport" rendering of a socket.
func tupleString(fd *event.FD) string {
	if fd.Type != event.FDIPv4 && fd.Type != event.FDIPv6 {
		return fd.Name
	}
	return endpoint(fd.CIP, fd.CPort) + "->" + endpoint(fd.SIP, fd.SPort)
}

func endpoint(a netip.Addr, port uint16) string {
	if !a.IsValid() {
		return ":" + strconv.Itoa(int(port))
	}
	if a.Is6() {
		return "[" + a.String() + "]:" + strconv.Itoa(int(port))
	}
	return a.String() + ":" + strconv.Itoa(int(port))
}

var errnoNames = map[int64]string{
	1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC", 9: "EBADF",
	10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 18: "EXDEV",
	19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE", 25: "ENOTTY",
	26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE", 30: "EROFS", 31: "EMLINK", 32: "EPIPE",
	36: "ENAMETOOLONG", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 88: "ENOTSOCK", 95: "EOPNOTSUPP",
	97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 101: "ENETUNREACH", 103: "ECONNABORTED",
	104: "ECONNRESET", 106: "EISCONN", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH",
	114: "EALREADY", 115: "EINPROGRESS",
}

// errName is the errno's name as Falco renders a failed result.
func errName(e int64) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "E" + itoa(e)
}
