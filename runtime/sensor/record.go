package sensor

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Record kinds, numbered as in bpf/sensor.bpf.c.
const (
	kNone = iota
	kExecve
	kExecveat
	kProcexit
	kOpen
	kOpenat
	kOpenat2
	kCreat
	kConnect
	kAccept
	kAccept4
	kBind
	kListen
	kSocket
	kUnlink
	kUnlinkat
	kRename
	kRenameat
	kRenameat2
	kChmod
	kFchmod
	kFchmodat
	kSetuid
	kSetgid
	kSetresuid
	kSetresgid
	kCapset
	kPtrace
	kMount
	kUmount2
	kInitModule
	kFinitModule
	kDup
	kDup2
	kDup3
	kSymlink
	kSymlinkat
	kLink
	kLinkat
	kMkdir
	kMkdirat
	kMemfdCreate
	kSendto
	kWrite
	kSendmsg
	kSendmmsg
	kMax
)

// kindNames are the Falco event type names of the kinds.
var kindNames = [kMax]string{
	kExecve: "execve", kExecveat: "execveat", kProcexit: "procexit",
	kOpen: "open", kOpenat: "openat", kOpenat2: "openat2", kCreat: "creat",
	kConnect: "connect", kAccept: "accept", kAccept4: "accept4", kBind: "bind", kListen: "listen", kSocket: "socket",
	kUnlink: "unlink", kUnlinkat: "unlinkat", kRename: "rename", kRenameat: "renameat", kRenameat2: "renameat2",
	kChmod: "chmod", kFchmod: "fchmod", kFchmodat: "fchmodat",
	kSetuid: "setuid", kSetgid: "setgid", kSetresuid: "setresuid", kSetresgid: "setresgid", kCapset: "capset",
	kPtrace: "ptrace", kMount: "mount", kUmount2: "umount2", kInitModule: "init_module", kFinitModule: "finit_module",
	kDup: "dup", kDup2: "dup2", kDup3: "dup3",
	kSymlink: "symlink", kSymlinkat: "symlinkat", kLink: "link", kLinkat: "linkat",
	kMkdir: "mkdir", kMkdirat: "mkdirat", kMemfdCreate: "memfd_create", kSendto: "sendto",
	kWrite: "write", kSendmsg: "sendmsg", kSendmmsg: "sendmmsg",
}

// kindStrings is how many strings each kind's record carries (a relative
// path is two: the path and its base directory). An exec record carries a
// fifth, the environment, when the sensor was opened with Options.Env.
var kindStrings = [kMax]int{
	kExecve: 4, kExecveat: 4,
	kOpen: 2, kOpenat: 2, kOpenat2: 2, kCreat: 2,
	kConnect: 1, kBind: 1,
	// Sends: the address given ("" for write) and the buffer, recorded
	// only for a DNS query (up to 512 bytes; write, sendmsg and sendmmsg
	// are reported only then).
	kSendto: 2, kWrite: 2, kSendmsg: 2, kSendmmsg: 2,
	kUnlink: 2, kUnlinkat: 2, kMkdir: 2, kMkdirat: 2, kChmod: 2, kFchmodat: 2, kFchmod: 1,
	kRename: 4, kRenameat: 4, kRenameat2: 4, kLink: 4, kLinkat: 4,
	kSymlink: 3, kSymlinkat: 3,
	kMount: 3, kUmount2: 1, kInitModule: 1, kFinitModule: 2, kMemfdCreate: 1,
}

// fd types of the header.
const (
	ftNone = iota
	ftFile
	ftDir
	ftSock
	ftPipe
	ftOther
)

// Exec flags of the header, as Falco names them.
const (
	exeWritable   = 1
	exeUpperLayer = 2
	exeFromMemfd  = 4
	exeLowerLayer = 8
)

// hdrSize is sizeof(struct hdr) in the C program; record_amd64_test.go
// checks it against the generated Go type.
const hdrSize = 224

// maxRecord bounds one record: the header and the string area of the
// program's scratch buffer.
const maxRecord = hdrSize + 8192 + 4096 + 8

// record is one decoded ring-buffer record.
type record struct {
	ts       uint64
	cgroup   uint64
	args     [6]uint64
	ret      int64
	capEff   uint64
	capPrm   uint64
	capInh   uint64
	start    uint64
	kind     uint32
	pid      uint32
	tid      uint32
	ppid     uint32
	uid      uint32
	gid      uint32
	loginuid uint32
	tty      uint32
	vpid     uint32
	flags    uint32
	sid      uint32
	pgid     uint32
	comm     string
	fd       int32
	fdType   uint16
	family   uint16
	sport    uint16
	dport    uint16
	sockType uint16
	protocol uint16
	saddr    [16]byte
	daddr    [16]byte
	strs     [5][]byte
	nstr     int
}

var errShort = errors.New("record shorter than its header")

// decode parses one record. The strings alias b.
func decode(b []byte, r *record) error {
	if len(b) < hdrSize {
		return fmt.Errorf("%w: %d bytes", errShort, len(b))
	}
	if len(b) > maxRecord {
		return fmt.Errorf("record of %d bytes exceeds the %d-byte maximum", len(b), maxRecord)
	}
	le := binary.LittleEndian
	r.ts = le.Uint64(b[0:])
	r.cgroup = le.Uint64(b[8:])
	for i := range r.args {
		r.args[i] = le.Uint64(b[16+8*i:])
	}
	r.ret = int64(le.Uint64(b[64:]))
	r.capEff = le.Uint64(b[72:])
	r.capPrm = le.Uint64(b[80:])
	r.capInh = le.Uint64(b[88:])
	r.start = le.Uint64(b[96:])
	r.kind = le.Uint32(b[104:])
	r.pid = le.Uint32(b[108:])
	r.tid = le.Uint32(b[112:])
	r.ppid = le.Uint32(b[116:])
	r.uid = le.Uint32(b[120:])
	r.gid = le.Uint32(b[124:])
	r.loginuid = le.Uint32(b[128:])
	r.tty = le.Uint32(b[132:])
	r.vpid = le.Uint32(b[136:])
	r.flags = le.Uint32(b[140:])
	r.sid = le.Uint32(b[144:])
	r.pgid = le.Uint32(b[148:])
	r.comm = cstring(b[152:168])
	r.fd = int32(le.Uint32(b[168:]))
	r.fdType = le.Uint16(b[172:])
	r.family = le.Uint16(b[174:])
	r.sport = le.Uint16(b[176:])
	r.dport = le.Uint16(b[178:])
	r.sockType = le.Uint16(b[180:])
	r.protocol = le.Uint16(b[182:])
	copy(r.saddr[:], b[184:200])
	copy(r.daddr[:], b[200:216])
	nstr := int(le.Uint16(b[216:]))
	if r.kind == kNone || r.kind >= kMax {
		return fmt.Errorf("record of unknown kind %d", r.kind)
	}
	if nstr > len(r.strs) {
		return fmt.Errorf("%s record with %d strings, at most %d expected", kindNames[r.kind], nstr, len(r.strs))
	}
	rest := b[hdrSize:]
	r.nstr = nstr
	for i := 0; i < nstr; i++ {
		if len(rest) < 2 {
			return fmt.Errorf("%s record: string %d truncated", kindNames[r.kind], i)
		}
		n := int(le.Uint16(rest))
		if len(rest) < 2+n {
			return fmt.Errorf("%s record: string %d of %d bytes overruns the record", kindNames[r.kind], i, n)
		}
		r.strs[i] = rest[2 : 2+n]
		rest = rest[2+n:]
	}
	for i := nstr; i < len(r.strs); i++ {
		r.strs[i] = nil
	}
	return nil
}

// str returns string i ("" when the record has fewer).
func (r *record) str(i int) string {
	if i >= r.nstr {
		return ""
	}
	return cstring(r.strs[i])
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
