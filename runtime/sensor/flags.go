package sensor

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
)

// Falco renders flag arguments as names joined by "|" (evt.arg.flags is
// "O_TRUNC|O_CREAT|O_WRONLY"); these tables follow libscap's flag tables
// and their order. Values are Linux x86_64's.

type flagName struct {
	v    uint64
	name string
}

var openFlagNames = []flagName{
	{0100000, "O_LARGEFILE"}, {0200000, "O_DIRECTORY"}, {040000, "O_DIRECT"}, {01000, "O_TRUNC"},
	{04000000, "O_SYNC"}, {04000, "O_NONBLOCK"}, {0400, "O_NOCTTY"}, {0200, "O_EXCL"}, {010000, "O_DSYNC"},
	{0100, "O_CREAT"}, {02000, "O_APPEND"}, {0400000, "O_NOFOLLOW"}, {01000000, "O_NOATIME"},
	{02000000, "O_CLOEXEC"}, {020000, "O_ASYNC"}, {010000000, "O_PATH"}, {020000000, "O_TMPFILE"},
}

// openFlags renders open(2) flags; the access mode comes first after the
// modifiers, as O_RDONLY, O_WRONLY or O_RDWR.
func openFlags(f uint64) string {
	var b strings.Builder
	for _, fl := range openFlagNames {
		if fl.v == 04000000 { // O_SYNC includes O_DSYNC's bit
			if f&04010000 == 04010000 {
				add(&b, fl.name)
				f &^= 04010000
			}
			continue
		}
		if f&fl.v != 0 {
			add(&b, fl.name)
		}
	}
	switch f & 3 {
	case 0:
		add(&b, "O_RDONLY")
	case 1:
		add(&b, "O_WRONLY")
	case 2:
		add(&b, "O_RDWR")
	}
	return b.String()
}

func add(b *strings.Builder, s string) {
	if b.Len() > 0 {
		b.WriteByte('|')
	}
	b.WriteString(s)
}

func flags(v uint64, names []flagName) string {
	var b strings.Builder
	for _, fl := range names {
		if v&fl.v == fl.v && fl.v != 0 {
			add(&b, fl.name)
		}
	}
	if b.Len() == 0 {
		return strconv.FormatUint(v, 10)
	}
	return b.String()
}

var exeFlagNames = []flagName{
	{exeWritable, "EXE_WRITABLE"}, {exeUpperLayer, "EXE_UPPER_LAYER"}, {exeFromMemfd, "EXE_FROM_MEMFD"}, {exeLowerLayer, "EXE_LOWER_LAYER"},
}

var modeNames = []flagName{
	{01, "S_IXOTH"}, {02, "S_IWOTH"}, {04, "S_IROTH"}, {010, "S_IXGRP"}, {020, "S_IWGRP"}, {040, "S_IRGRP"},
	{0100, "S_IXUSR"}, {0200, "S_IWUSR"}, {0400, "S_IRUSR"}, {01000, "S_ISVTX"}, {02000, "S_ISGID"}, {04000, "S_ISUID"},
}

var atFlagNames = []flagName{{0x200, "AT_REMOVEDIR"}, {0x400, "AT_SYMLINK_FOLLOW"}, {0x1000, "AT_EMPTY_PATH"}}

var renameFlagNames = []flagName{{1, "RENAME_NOREPLACE"}, {2, "RENAME_EXCHANGE"}, {4, "RENAME_WHITEOUT"}}

var mountFlagNames = []flagName{
	{1, "RDONLY"}, {2, "NOSUID"}, {4, "NODEV"}, {8, "NOEXEC"}, {16, "SYNCHRONOUS"}, {32, "REMOUNT"},
	{64, "MANDLOCK"}, {128, "DIRSYNC"}, {1024, "NOATIME"}, {2048, "NODIRATIME"}, {4096, "BIND"},
	{8192, "MOVE"}, {16384, "REC"}, {32768, "SILENT"}, {1 << 17, "UNBINDABLE"}, {1 << 18, "PRIVATE"},
	{1 << 19, "SLAVE"}, {1 << 20, "SHARED"}, {1 << 21, "RELATIME"},
}

var umountFlagNames = []flagName{{1, "FORCE"}, {2, "DETACH"}, {4, "EXPIRE"}, {8, "NOFOLLOW"}}

var familyNames = map[uint64]string{
	0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 3: "AF_AX25", 4: "AF_IPX", 5: "AF_APPLETALK", 6: "AF_NETROM",
	7: "AF_BRIDGE", 8: "AF_ATMPVC", 9: "AF_X25", 10: "AF_INET6", 11: "AF_ROSE", 12: "AF_DECnet",
	13: "AF_NETBEUI", 14: "AF_SECURITY", 15: "AF_KEY", 16: "AF_NETLINK", 17: "AF_PACKET", 18: "AF_ASH",
	19: "AF_ECONET", 20: "AF_ATMSVC", 21: "AF_RDS", 22: "AF_SNA", 23: "AF_IRDA", 24: "AF_PPPOX",
	25: "AF_WANPIPE", 26: "AF_LLC", 27: "AF_IB", 28: "AF_MPLS", 29: "AF_CAN", 30: "AF_TIPC",
	31: "AF_BLUETOOTH", 32: "AF_IUCV", 33: "AF_RXRPC", 34: "AF_ISDN", 35: "AF_PHONET", 36: "AF_IEEE802154",
	37: "AF_CAIF", 38: "AF_ALG", 39: "AF_NFC", 40: "AF_VSOCK", 41: "AF_KCM", 42: "AF_QIPCRTR", 43: "AF_SMC",
	44: "AF_XDP", 45: "AF_MCTP",
}

func family(v uint64) string {
	if n, ok := familyNames[v]; ok {
		return n
	}
	return strconv.FormatUint(v, 10)
}

var sockTypeNames = map[uint64]string{1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM", 5: "SOCK_SEQPACKET", 6: "SOCK_DCCP", 10: "SOCK_PACKET"}

func sockType(v uint64) string {
	n, ok := sockTypeNames[v&0xf]
	if !ok {
		n = strconv.FormatUint(v&0xf, 10)
	}
	if v&04000 != 0 {
		n += "|SOCK_NONBLOCK"
	}
	if v&02000000 != 0 {
		n += "|SOCK_CLOEXEC"
	}
	return n
}

var ptraceNames = map[uint64]string{
	0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSR", 4: "PTRACE_POKETEXT",
	5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 7: "PTRACE_CONT", 8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP",
	12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS", 14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS",
	16: "PTRACE_ATTACH", 17: "PTRACE_DETACH", 18: "PTRACE_GETFPXREGS", 19: "PTRACE_SETFPXREGS",
	24: "PTRACE_SYSCALL", 31: "PTRACE_SYSEMU", 32: "PTRACE_SYSEMU_SINGLESTEP",
	0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG", 0x4202: "PTRACE_GETSIGINFO",
	0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET", 0x4205: "PTRACE_SETREGSET",
	0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT", 0x4208: "PTRACE_LISTEN", 0x4209: "PTRACE_PEEKSIGINFO",
}

func ptraceRequest(v uint64) string {
	if n, ok := ptraceNames[v]; ok {
		return n
	}
	return strconv.FormatUint(v, 10)
}

// dirfd renders a directory descriptor argument.
func dirfd(v uint64) string {
	if int32(v) == -100 {
		return "AT_FDCWD"
	}
	return strconv.FormatInt(int64(int32(v)), 10)
}

func octal(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0" + strconv.FormatUint(v, 8)
}

// sockaddr is a decoded struct sockaddr.
type sockaddr struct {
	family uint16
	addr   netip.Addr
	port   uint16
	path   string // AF_UNIX; abstract names start with "@"
}

// parseSockaddr decodes the bytes a process passed to connect/bind/sendto.
func parseSockaddr(b []byte) (sockaddr, bool) {
	if len(b) < 2 {
		return sockaddr{}, false
	}
	sa := sockaddr{family: binary.LittleEndian.Uint16(b)}
	switch sa.family {
	case 2:
		if len(b) < 8 {
			return sa, false
		}
		sa.port = binary.BigEndian.Uint16(b[2:])
		sa.addr = netip.AddrFrom4([4]byte(b[4:8]))
	case 10:
		if len(b) < 24 {
			return sa, false
		}
		sa.port = binary.BigEndian.Uint16(b[2:])
		sa.addr = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	case 1:
		p := b[2:]
		if len(p) > 0 && p[0] == 0 {
			sa.path = "@" + cstring(p[1:])
		} else {
			sa.path = cstring(p)
		}
	default:
		return sa, false
	}
	return sa, true
}

func (sa sockaddr) String() string {
	switch sa.family {
	case 2, 10:
		return netip.AddrPortFrom(sa.addr, sa.port).String()
	case 1:
		return sa.path
	}
	return ""
}
