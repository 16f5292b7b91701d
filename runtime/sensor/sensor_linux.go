//go:build linux && amd64

package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// syscallKinds maps x86_64 system call numbers to record kinds.
var syscallKinds = map[int]uint32{
	unix.SYS_EXECVE: kExecve, unix.SYS_EXECVEAT: kExecveat,
	unix.SYS_OPEN: kOpen, unix.SYS_OPENAT: kOpenat, unix.SYS_OPENAT2: kOpenat2, unix.SYS_CREAT: kCreat,
	unix.SYS_CONNECT: kConnect, unix.SYS_ACCEPT: kAccept, unix.SYS_ACCEPT4: kAccept4, unix.SYS_BIND: kBind,
	unix.SYS_LISTEN: kListen, unix.SYS_SOCKET: kSocket, unix.SYS_SENDTO: kSendto,
	unix.SYS_WRITE: kWrite, unix.SYS_SENDMSG: kSendmsg, unix.SYS_SENDMMSG: kSendmmsg,
	unix.SYS_UNLINK: kUnlink, unix.SYS_UNLINKAT: kUnlinkat, unix.SYS_RENAME: kRename, unix.SYS_RENAMEAT: kRenameat,
	unix.SYS_RENAMEAT2: kRenameat2, unix.SYS_CHMOD: kChmod, unix.SYS_FCHMOD: kFchmod, unix.SYS_FCHMODAT: kFchmodat,
	unix.SYS_SETUID: kSetuid, unix.SYS_SETGID: kSetgid, unix.SYS_SETRESUID: kSetresuid, unix.SYS_SETRESGID: kSetresgid,
	unix.SYS_CAPSET: kCapset, unix.SYS_PTRACE: kPtrace, unix.SYS_MOUNT: kMount, unix.SYS_UMOUNT2: kUmount2,
	unix.SYS_INIT_MODULE: kInitModule, unix.SYS_FINIT_MODULE: kFinitModule,
	unix.SYS_DUP: kDup, unix.SYS_DUP2: kDup2, unix.SYS_DUP3: kDup3,
	unix.SYS_SYMLINK: kSymlink, unix.SYS_SYMLINKAT: kSymlinkat, unix.SYS_LINK: kLink, unix.SYS_LINKAT: kLinkat,
	unix.SYS_MKDIR: kMkdir, unix.SYS_MKDIRAT: kMkdirat, unix.SYS_MEMFD_CREATE: kMemfdCreate,
}

// Options configure a Sensor.
type Options struct {
	// Sockets are Docker Engine API sockets asked for container names and
	// images; nil means DefaultSockets().
	Sockets []string
	// CRISockets are CRI sockets (containerd's, CRI-O's) asked for
	// container names, images and pods; nil means DefaultCRISockets(),
	// each used when it exists. Sockets named here must answer the CRI's
	// Version call, or Open fails.
	CRISockets []string
	// Warnings receives a metadata socket's first failure (nil: discarded).
	Warnings io.Writer
	// ProcDir is the proc filesystem (default /proc).
	ProcDir string
	// Types limits the reported syscalls to these event type names (for
	// example the types the loaded rules can match); nil reports all.
	Types []string
	// Env captures each exec'd process's environment (proc.env). It costs
	// a copy of up to 4 KiB per exec, so set it only when a rule reads
	// proc.env (rules.Ruleset.UsesField).
	Env bool
}

// The reader is woken when this many bytes wait in the ring buffer, and
// otherwise polls every pollInterval: a wakeup per record costs more than
// decoding it. An alert is thus at most pollInterval late.
const (
	wakeBytes    = 256 << 10
	pollInterval = 10 * time.Millisecond
)

// Sensor is a loaded and attached eBPF program set.
type Sensor struct {
	objs   sensorObjects
	links  []link.Link
	rd     *ringbuf.Reader
	conv   *converter
	events atomic.Uint64
	bad    atomic.Uint64
	close  sync.Once
	// sources are the container metadata sources, closed with the sensor.
	sources []MetadataSource
	// onRaw, when set (tests), sees each raw record before decoding.
	onRaw func([]byte)
}

// Stats are the sensor's counters.
type Stats struct {
	// Events is how many events were delivered.
	Events uint64
	// RingDrops is how many records the kernel could not put in the ring
	// buffer because user space fell behind.
	RingDrops uint64
	// StashDrops is how many syscalls were missed because the in-flight
	// table was full.
	StashDrops uint64
	// Emitted is how many records the kernel side wrote.
	Emitted uint64
	// Malformed is how many records failed to decode.
	Malformed uint64
}

// Supported reports whether this kernel can run the sensor, and why not.
func Supported() error {
	if os.Geteuid() != 0 {
		return errors.New("the eBPF sensor needs root (CAP_BPF and CAP_PERFMON)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return errors.New("the kernel has no BTF (/sys/kernel/btf/vmlinux); the sensor needs CONFIG_DEBUG_INFO_BTF=y")
	}
	return nil
}

// raiseMemlock lifts RLIMIT_MEMLOCK for the sensor's maps and programs.
// Not cilium/ebpf's rlimit.RemoveMemlock: that package's init probes the
// kernel (three prlimit calls and a BPF map created and closed) in every
// process that links it, so in every bulkhead command, --version included,
// where only the sensor needs the limit raised.
func raiseMemlock() error {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	return unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &inf, nil)
}

// Open loads the eBPF programs, attaches them to the raw tracepoints and
// seeds the process table from /proc.
func Open(opts Options) (*Sensor, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	sources, err := metadataSources(opts.Sockets, opts.CRISockets)
	if err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge eBPF maps and programs to RLIMIT_MEMLOCK;
	// later ones to the memory cgroup, where a failure to raise it does not
	// matter: it is told only if the load then fails.
	memlockErr := raiseMemlock()
	s := &Sensor{sources: sources}
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("load the sensor's eBPF object: %w", err)
	}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("the kernel's verifier rejected the sensor: %+v", ve)
		}
		if memlockErr != nil {
			return nil, fmt.Errorf("load the sensor's eBPF programs: %w (RLIMIT_MEMLOCK could not be raised: %v; kernels before 5.11 need it: run as root or with CAP_SYS_RESOURCE)", err, memlockErr)
		}
		return nil, fmt.Errorf("load the sensor's eBPF programs: %w", err)
	}
	fail := func(err error) (*Sensor, error) {
		s.Close()
		return nil, err
	}
	want := map[string]bool{}
	for _, t := range opts.Types {
		want[t] = true
	}
	for nr, k := range syscallKinds {
		if len(want) > 0 && !want[kindNames[k]] {
			// exec records are the process table's source: keep them.
			if k != kExecve && k != kExecveat {
				continue
			}
		}
		if err := s.objs.Kinds.Put(uint32(nr), k); err != nil {
			return fail(fmt.Errorf("configure syscall %d: %w", nr, err))
		}
	}
	var env uint64
	if opts.Env {
		env = 1
	}
	for k, v := range []uint64{uint64(os.Getpid()), env, wakeBytes} {
		if err := s.objs.SensorConfig.Put(uint32(k), v); err != nil {
			return fail(fmt.Errorf("configure the sensor: %w", err))
		}
	}

	procDir := opts.ProcDir
	if procDir == "" {
		procDir = "/proc"
	}
	s.conv = newConverter(procDir, bootTime(), sources)
	s.conv.ctrs.warn = opts.Warnings
	s.conv.procs.env = opts.Env

	for _, a := range []struct {
		name string
		prog *ebpf.Program
	}{
		{"sched_process_exec", s.objs.SchedExec},
		{"sched_process_exit", s.objs.SchedExit},
		{"sys_exit", s.objs.SysExit},
		{"sys_enter", s.objs.SysEnter},
	} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.name, Program: a.prog})
		if err != nil {
			return fail(fmt.Errorf("attach raw tracepoint %s: %w", a.name, err))
		}
		s.links = append(s.links, l)
	}
	s.rd, err = ringbuf.NewReader(s.objs.Events)
	if err != nil {
		return fail(fmt.Errorf("open the ring buffer: %w", err))
	}
	// Seed after attaching, so that no process slips between the two.
	s.conv.procs.seed()
	return s, nil
}

// bootTime is the wall-clock time at which CLOCK_MONOTONIC was zero, to
// convert the kernel's timestamps.
func bootTime() time.Time {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return now
	}
	return now.Add(-time.Duration(ts.Nano()))
}

// Run delivers events to fn until ctx is done or the sensor is closed.
// fn runs on Run's goroutine; the event and what it points to are reused
// after fn returns, so fn must copy what it keeps.
func (s *Sensor) Run(ctx context.Context, fn func(*event.Event)) error {
	stop := context.AfterFunc(ctx, func() { s.rd.Close() })
	defer stop()
	var rec ringbuf.Record
	var r record
	var ev event.Event
	s.rd.SetDeadline(time.Now().Add(pollInterval))
	for {
		if err := s.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Everything waiting was read: poll again later.
				s.rd.SetDeadline(time.Now().Add(pollInterval))
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				if ctx.Err() != nil {
					return nil
				}
				return nil
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return fmt.Errorf("read the ring buffer: %w", err)
		}
		if s.onRaw != nil {
			s.onRaw(rec.RawSample)
		}
		if err := decode(rec.RawSample, &r); err != nil {
			s.bad.Add(1)
			continue
		}
		s.conv.convert(&r, &ev)
		s.events.Add(1)
		fn(&ev)
	}
}

// Stats returns the counters so far.
func (s *Sensor) Stats() Stats {
	st := Stats{Events: s.events.Load(), Malformed: s.bad.Load()}
	for i, dst := range []*uint64{&st.RingDrops, &st.StashDrops, &st.Emitted} {
		var per []uint64
		if err := s.objs.Counters.Lookup(uint32(i), &per); err == nil {
			for _, v := range per {
				*dst += v
			}
		}
	}
	return st
}

// Close detaches the programs and frees the maps.
func (s *Sensor) Close() error {
	s.close.Do(func() {
		for _, l := range s.links {
			l.Close()
		}
		if s.rd != nil {
			s.rd.Close()
		}
		s.objs.Close()
		closeSources(s.sources)
	})
	return nil
}
