// Package event holds the runtime event model: what the sensor produces, what
// `runtime replay` reads and what the rule engine evaluates. One Event is one
// system call (or process exit) seen on the node, already enriched with the
// process, file descriptor, user and container it belongs to, so that rule
// evaluation never has to look anything up.
//
// The JSON form (Marshal/Reader) is bulkhead's stable recording format: one
// object per line, field names fixed by the struct tags below.
package event

import (
	"net/netip"
	"time"
)

// Direction values for Event.Dir, as in Falco's evt.dir.
const (
	DirEnter = ">"
	DirExit  = "<"
)

// Event is one observed kernel event.
type Event struct {
	// Num is the sensor's sequence number (evt.num), from 1; 0 means
	// unnumbered, and evt.num then has no value.
	Num uint64 `json:"num,omitempty"`
	// Time is when the event happened (evt.time, evt.rawtime).
	Time time.Time `json:"time"`
	// Type is the syscall or event name: execve, openat, connect, procexit...
	Type string `json:"type"`
	// Dir is "<" for an exit event (the default when empty) or ">" for entry.
	Dir string `json:"dir,omitempty"`
	// Res is the raw return value: a file descriptor, 0, or -errno (evt.rawres).
	Res int64 `json:"res"`
	// Args are the syscall arguments in Falco's rendering (evt.arg.NAME,
	// evt.arg[N]): e.g. flags "O_WRONLY|O_CREAT|O_TRUNC", domain "AF_PACKET".
	Args Args `json:"args,omitempty"`

	Proc      Process    `json:"proc"`
	User      User       `json:"user"`
	Group     Group      `json:"group"`
	FD        *FD        `json:"fd,omitempty"`
	Container *Container `json:"container,omitempty"`

	// Drift and Profile are what the drift detector and the behaviour
	// profiles found about this event (runtime/drift, runtime/profile);
	// nil when they are off or have nothing to say.
	Drift   *Drift         `json:"drift,omitempty"`
	Profile *ProfileResult `json:"profile,omitempty"`
}

// Arg is one named syscall argument.
type Arg struct {
	Name  string
	Value string
}

// Args keeps arguments in syscall order (evt.arg[N] and evt.args depend on
// it); its JSON form is an object whose key order is preserved.
type Args []Arg

// Get returns the value of the argument called name.
func (a Args) Get(name string) (string, bool) {
	for i := range a {
		if a[i].Name == name {
			return a[i].Value, true
		}
	}
	return "", false
}

// Process describes the thread that made the call.
type Process struct {
	PID   int64 `json:"pid"`
	TID   int64 `json:"tid,omitempty"`
	PPID  int64 `json:"ppid,omitempty"`
	VPID  int64 `json:"vpid,omitempty"`
	SID   int64 `json:"sid,omitempty"`
	VPGID int64 `json:"vpgid,omitempty"`
	// Name is the kernel comm (at most 15 bytes), Falco's proc.name.
	Name string `json:"name"`
	// Exe is argv[0] (proc.exe); ExePath the resolved executable (proc.exepath).
	Exe     string   `json:"exe,omitempty"`
	ExePath string   `json:"exepath,omitempty"`
	Args    []string `json:"args,omitempty"`
	Cwd     string   `json:"cwd,omitempty"`
	Env     []string `json:"env,omitempty"`
	// TTY is the controlling terminal's device number, 0 when none.
	TTY uint32 `json:"tty,omitempty"`
	// Start is when the process started (proc.duration is Time - Start).
	Start time.Time `json:"start,omitzero"`
	// Capability sets as bit masks (thread.cap_*).
	CapEffective   uint64 `json:"cap_effective,omitempty"`
	CapPermitted   uint64 `json:"cap_permitted,omitempty"`
	CapInheritable uint64 `json:"cap_inheritable,omitempty"`
	// Executable provenance (proc.is_exe_*), from the exec event's flags.
	IsExeWritable   bool `json:"exe_writable,omitempty"`
	IsExeUpperLayer bool `json:"exe_upper_layer,omitempty"`
	IsExeFromMemfd  bool `json:"exe_from_memfd,omitempty"`
	// Ancestors are the parent, grandparent, ... (proc.pname, proc.aname[N]).
	Ancestors []Ancestor `json:"ancestors,omitempty"`
}

// Ancestor is one process up the parent chain.
type Ancestor struct {
	PID     int64     `json:"pid"`
	Name    string    `json:"name"`
	Exe     string    `json:"exe,omitempty"`
	ExePath string    `json:"exepath,omitempty"`
	Args    []string  `json:"args,omitempty"`
	Start   time.Time `json:"start,omitzero"`
}

// User is the thread's user (user.*).
type User struct {
	UID uint32 `json:"uid"`
	// Name is empty when the uid has no passwd entry.
	Name string `json:"name,omitempty"`
	// LoginUID is the audit login uid; -1 when unset (4294967295 in the kernel).
	LoginUID  int64  `json:"loginuid"`
	LoginName string `json:"loginname,omitempty"`
	HomeDir   string `json:"homedir,omitempty"`
	Shell     string `json:"shell,omitempty"`
}

// Group is the thread's primary group (group.*).
type Group struct {
	GID  uint32 `json:"gid"`
	Name string `json:"name,omitempty"`
}

// FD types, as Falco names them in fd.type.
const (
	FDFile      = "file"
	FDDirectory = "directory"
	FDIPv4      = "ipv4"
	FDIPv6      = "ipv6"
	FDUnix      = "unix"
	FDPipe      = "pipe"
	FDEvent     = "event"
	FDSignal    = "signalfd"
	FDEventPoll = "eventpoll"
	FDInotify   = "inotify"
	FDTimer     = "timerfd"
	FDNetlink   = "netlink"
	FDBPF       = "bpf"
	FDUserfault = "userfaultfd"
	FDIOUring   = "io_uring"
	FDMemfd     = "memfd"
	FDPidfd     = "pidfd"
	FDPacket    = "packet"
)

// FD is the file descriptor the event acted on (fd.*).
type FD struct {
	// Num is the descriptor number, -1 when the call failed.
	Num  int64  `json:"num"`
	Type string `json:"type"`
	// Name is the resolved path for files; for sockets it may be left empty
	// and is then derived as "cip:cport->sip:sport" (fd.name).
	Name string `json:"name,omitempty"`
	// NameRaw is the path exactly as passed to the call (fd.nameraw).
	NameRaw string `json:"nameraw,omitempty"`
	// L4Proto is tcp, udp, icmp or raw for IP sockets.
	L4Proto string `json:"l4proto,omitempty"`
	// Client and server ends of an IP connection.
	CIP   netip.Addr `json:"cip,omitzero"`
	CPort uint16     `json:"cport,omitempty"`
	SIP   netip.Addr `json:"sip,omitzero"`
	SPort uint16     `json:"sport,omitempty"`
	// Server is true when this process is the server end (accept, listen,
	// bind), which decides the local/remote fields (fd.lip, fd.rport...).
	Server    bool `json:"server,omitempty"`
	Connected bool `json:"connected,omitempty"`
	// NameChanged is true when the event changed fd.name (sendto on an
	// unconnected socket), used by Falco's outbound macro.
	NameChanged bool `json:"name_changed,omitempty"`
}

// Container identifies the container the process runs in; a nil
// *Container means the host (container.id "host").
type Container struct {
	ID              string `json:"id"`
	Name            string `json:"name,omitempty"`
	Type            string `json:"type,omitempty"` // podman, docker, containerd, cri-o
	Image           string `json:"image,omitempty"`
	ImageRepository string `json:"image_repository,omitempty"`
	ImageTag        string `json:"image_tag,omitempty"`
	ImageDigest     string `json:"image_digest,omitempty"`
	Privileged      bool   `json:"privileged,omitempty"`
	// StartTS is the container start time in ns since the epoch, 0 if unknown.
	StartTS int64 `json:"start_ts,omitempty"`
	// Labels are the container's labels (container.label[KEY]).
	Labels map[string]string `json:"labels,omitempty"`
	// Kubernetes context (k8s.*), from the CRI labels kubelet sets
	// (io.kubernetes.pod.name ...) or, for podman pods, from the pod.
	K8sNamespace     string            `json:"k8s_ns,omitempty"`
	K8sPodName       string            `json:"k8s_pod,omitempty"`
	K8sPodUID        string            `json:"k8s_pod_uid,omitempty"`
	K8sPodLabels     map[string]string `json:"k8s_pod_labels,omitempty"`
	K8sContainerName string            `json:"k8s_container,omitempty"`

	// ImageID is the image's config digest ("sha256:..."), as the runtime
	// reports it (container.image.id); drift and profiles key by it.
	ImageID string `json:"image_id,omitempty"`
}

// IsKnownType reports whether name is an event type a rule may reference.
func IsKnownType(name string) bool {
	_, ok := knownTypes[name]
	return ok
}
