// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
//
// bulkhead's syscall sensor. Raw tracepoints on sys_enter/sys_exit stash a
// watched syscall's arguments per thread and, when it returns, emit one
// record to a ring buffer: a fixed header (process, credentials, cgroup,
// result, raw arguments, socket tuple) followed by a kind-specific list of
// length-prefixed strings (paths, argv, the directory a relative path is
// relative to). sched_process_exec and sched_process_exit give the exec and
// exit records. User space (sensor.go) decodes the records and renders them
// as runtime/event.Event.
//
// Paths are resolved here, not in user space, because the process and its
// mount namespace may be gone by the time user space reads the record: the
// dentry walk stops at the task's own root, so paths inside a container are
// the container's view, as Falco reports them.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// Record kinds; sensor.go keeps the same numbering (kind.go).
enum {
	K_NONE = 0,
	K_EXECVE, K_EXECVEAT, K_PROCEXIT,
	K_OPEN, K_OPENAT, K_OPENAT2, K_CREAT,
	K_CONNECT, K_ACCEPT, K_ACCEPT4, K_BIND, K_LISTEN, K_SOCKET,
	K_UNLINK, K_UNLINKAT, K_RENAME, K_RENAMEAT, K_RENAMEAT2,
	K_CHMOD, K_FCHMOD, K_FCHMODAT,
	K_SETUID, K_SETGID, K_SETRESUID, K_SETRESGID, K_CAPSET,
	K_PTRACE, K_MOUNT, K_UMOUNT2, K_INIT_MODULE, K_FINIT_MODULE,
	K_DUP, K_DUP2, K_DUP3,
	K_SYMLINK, K_SYMLINKAT, K_LINK, K_LINKAT,
	K_MKDIR, K_MKDIRAT, K_MEMFD_CREATE, K_SENDTO,
	K_WRITE, K_SENDMSG, K_SENDMMSG,
	K_MAX,
};

#define MAX_SYSCALLS 512
#define HALF 8192          // string area offsets are masked to HALF-1
#define MAX_STR 4096       // one string, NUL excluded, at most MAX_STR-1
#define PB 4096            // path walk buffer half
#define MAX_DEPTH 48       // path components followed per walk
#define AT_FDCWD -100

// MASK bounds an offset so the verifier sees the bound: clang drops a
// plain "& m" it can prove redundant, and the verifier's own range
// tracking is then too coarse to accept the access.
#define MASK(x, m) ({ u64 __v = (x); asm volatile("%[v] &= " #m : [v] "+r"(__v)); __v; })

// Exec flags, named as Falco names them (EXE_WRITABLE ...).
#define EXE_WRITABLE 1
#define EXE_UPPER_LAYER 2
#define EXE_FROM_MEMFD 4
#define EXE_LOWER_LAYER 8

// fd types in the header.
enum { FT_NONE = 0, FT_FILE, FT_DIR, FT_SOCK, FT_PIPE, FT_OTHER };

struct hdr {
	u64 ts;
	u64 cgroup;
	u64 args[6];
	s64 ret;
	u64 cap_eff, cap_prm, cap_inh;
	u64 start; // thread group start, CLOCK_MONOTONIC ns
	u32 kind, pid, tid, ppid;
	u32 uid, gid, loginuid, tty;
	u32 vpid, flags, sid, pgid;
	u8 comm[16];
	// fd described by the record (returned fd, or the fd argument)
	s32 fd;
	u16 fd_type, family;
	u16 sport, dport; // local, remote (host order)
	u16 sock_type, protocol;
	u8 saddr[16], daddr[16]; // local, remote
	u16 nstr, _pad;
	u32 size;
};

struct stash {
	u64 args[6];
	u64 ts;
	u32 kind;
	u32 dns; // the send is a DNS query: its payload is recorded
};

// DNS_MAX is how much of a DNS query is recorded (a classic UDP message).
#define DNS_MAX 512
#define DNS_PORT 53
#define IPPROTO_UDP 17

// struct user_msghdr as x86_64 lays it out (the user's copy is read).
struct umsghdr {
	u64 name;
	s32 namelen;
	s32 _pad;
	u64 iov;
	u64 iovlen;
	u64 control;
	u64 controllen;
	u32 flags;
};

struct scratch {
	struct hdr h;
	u8 data[HALF + MAX_STR + 8];
};

struct pathbuf {
	u8 data[PB * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SYSCALLS);
	__type(key, u32);
	__type(value, u32);
} kinds SEC(".maps");

// sensor_config[0]: the sensor's own tgid (its syscalls are not reported);
// [1]: non-zero to capture the environment of exec'd processes (only when
// a rule reads proc.env); [2]: bytes waiting in the ring buffer above which
// a record wakes the reader (below, the reader polls on a timer).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} sensor_config SEC(".maps");

// counters: 0 ring-buffer drops, 1 stash-map drops, 2 records emitted.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct stash);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct pathbuf);
} path_map SEC(".maps");

// dns_fds: the UDP sockets connect()ed to port 53, by tgid << 32 | fd. A
// write or a send without an address is checked (fd table, socket) only
// when its fd is here, so that write, the busiest system call, costs one
// lookup. An entry whose fd was closed and reused is dropped at its next
// write.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u64);
	__type(value, u8);
} dns_fds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

static __always_inline void count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline bool is_self(void)
{
	u32 k = 0;
	u64 *self = bpf_map_lookup_elem(&sensor_config, &k);
	return self && *self == (bpf_get_current_pid_tgid() >> 32);
}

// fill_task writes the calling task's identity into the header.
static __always_inline void fill_task(struct hdr *h, u32 kind)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	u64 pt = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->ts = bpf_ktime_get_ns();
	h->cgroup = bpf_get_current_cgroup_id();
	h->pid = pt >> 32;
	h->tid = (u32)pt;
	h->ppid = BPF_CORE_READ(t, real_parent, tgid);
	h->uid = BPF_CORE_READ(t, cred, euid.val);
	h->gid = BPF_CORE_READ(t, cred, egid.val);
	const struct cred *cred = BPF_CORE_READ(t, cred);
	bpf_probe_read_kernel(&h->cap_eff, 8, &cred->cap_effective);
	bpf_probe_read_kernel(&h->cap_prm, 8, &cred->cap_permitted);
	bpf_probe_read_kernel(&h->cap_inh, 8, &cred->cap_inheritable);
	h->start = BPF_CORE_READ(t, group_leader, start_time);
	if (bpf_core_field_exists(t->loginuid))
		h->loginuid = BPF_CORE_READ(t, loginuid.val);
	else
		h->loginuid = (u32)-1;
	bpf_get_current_comm(h->comm, sizeof(h->comm));

	struct tty_struct *tty = BPF_CORE_READ(t, signal, tty);
	h->tty = 0;
	if (tty) {
		int index = BPF_CORE_READ(tty, index);
		int major = BPF_CORE_READ(tty, driver, major);
		int minor = BPF_CORE_READ(tty, driver, minor_start);
		h->tty = ((u32)major << 20) | (u32)(minor + index);
	}
	// Virtual pid: the pid as seen in the task's own pid namespace.
	struct pid *p = BPF_CORE_READ(t, thread_pid);
	unsigned int level = BPF_CORE_READ(p, level);
	h->vpid = 0;
	if (level < 32)
		bpf_probe_read_kernel(&h->vpid, 4, &p->numbers[level & 31].nr);
	// Session and process group ids, in the task's pid namespace as
	// Falco's proc.sid and proc.vpgid (0 when the leader is outside it).
	h->sid = 0;
	h->pgid = 0;
	if (level < 32) {
		struct signal_struct *sig = BPF_CORE_READ(t, signal);
		struct pid *sp = BPF_CORE_READ(sig, pids[PIDTYPE_SID]);
		struct pid *gp = BPF_CORE_READ(sig, pids[PIDTYPE_PGID]);
		if (sp && BPF_CORE_READ(sp, level) >= level)
			bpf_probe_read_kernel(&h->sid, 4, &sp->numbers[level & 31].nr);
		if (gp && BPF_CORE_READ(gp, level) >= level)
			bpf_probe_read_kernel(&h->pgid, 4, &gp->numbers[level & 31].nr);
	}
	h->flags = 0;
	h->fd = -1;
	h->fd_type = FT_NONE;
	h->family = 0;
	h->sport = h->dport = 0;
	h->sock_type = h->protocol = 0;
	__builtin_memset(h->saddr, 0, 16);
	__builtin_memset(h->daddr, 0, 16);
	h->nstr = 0;
}

static __always_inline struct scratch *get_scratch(void)
{
	u32 k = 0;
	return bpf_map_lookup_elem(&scratch_map, &k);
}

// put_len writes a string's 2-byte length prefix.
static __always_inline void put_len(struct scratch *s, u32 off, u16 n)
{
	s->data[MASK(off, 8191)] = n & 0xff;
	s->data[MASK(off + 1, 8191)] = n >> 8;
}

// put_user_str appends a NUL-terminated user string; returns the new offset.
static __noinline u32 put_user_str(struct scratch *s, u32 off, const char *src)
{
	if (off >= HALF - 2)
		return off;
	long n = 0;
	if (src)
		n = bpf_probe_read_user_str(&s->data[MASK(off + 2, 8191)], MAX_STR, src);
	if (n < 1)
		n = 1; // an empty string: the NUL only
	n -= 1;
	put_len(s, off, n);
	s->h.nstr++;
	return off + 2 + n;
}

static __noinline u32 put_kernel_str(struct scratch *s, u32 off, const char *src)
{
	if (off >= HALF - 2)
		return off;
	long n = 0;
	if (src)
		n = bpf_probe_read_kernel_str(&s->data[MASK(off + 2, 8191)], MAX_STR, src);
	if (n < 1)
		n = 1;
	n -= 1;
	put_len(s, off, n);
	s->h.nstr++;
	return off + 2 + n;
}

// put_user_bytes appends n bytes of user memory (a sockaddr, argv).
static __noinline u32 put_user_bytes(struct scratch *s, u32 off, const void *src, u32 n)
{
	if (off >= HALF - 2)
		return off;
	if (n > MAX_STR - 1)
		n = MAX_STR - 1;
	if (!src || bpf_probe_read_user(&s->data[MASK(off + 2, 8191)], MASK(n, 4095), src) < 0)
		n = 0;
	put_len(s, off, n);
	s->h.nstr++;
	return off + 2 + n;
}

static __always_inline u32 put_empty(struct scratch *s, u32 off)
{
	if (off >= HALF - 2)
		return off;
	put_len(s, off, 0);
	s->h.nstr++;
	return off + 2;
}

struct walk {
	struct dentry *d, *root_d;
	struct vfsmount *vm, *root_m;
	struct mount *mnt, *mnt_parent;
	struct pathbuf *pb;
	u32 pos; // pb->data[pos..PB) is the path so far
};

// walk_step moves one dentry up; bpf_loop runs it, so the verifier checks
// the body once rather than once per iteration.
static long walk_step(u32 i, void *vw)
{
	struct walk *w = vw;
	struct pathbuf *pb = w->pb;
	// Locals: a CO-RE read through w itself would relocate struct walk.
	struct dentry *d = w->d;
	struct vfsmount *vm = w->vm;
	struct mount *mnt = w->mnt, *mnt_parent = w->mnt_parent;
	if (d == w->root_d && vm == w->root_m)
		return 1;
	struct dentry *mnt_root = BPF_CORE_READ(vm, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		if (d != mnt_root || mnt == mnt_parent)
			return 1; // disconnected, or the global root
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		w->vm = &mnt_parent->mnt;
		w->mnt_parent = BPF_CORE_READ(mnt_parent, mnt_parent);
		return 0;
	}
	struct qstr name = BPF_CORE_READ(d, d_name);
	u32 len = name.len;
	u32 pos = w->pos;
	if (len > 255 || len + 1 > pos || pos > PB)
		return 1;
	pos -= len;
	// Writes the name and a NUL at data[pos+len]; the NUL lands on the
	// '/' of the deeper component, restored below.
	bpf_probe_read_kernel_str(&pb->data[MASK(pos, 4095)], MASK(len + 1, 511), name.name);
	if (pos + len != PB)
		pb->data[MASK(pos + len, 8191)] = '/';
	pos -= 1;
	pb->data[MASK(pos, 4095)] = '/';
	w->pos = pos;
	w->d = parent;
	return 0;
}

// put_path resolves a struct path to an absolute path in the task's root
// and appends it, like the kernel's d_path but bounded.
static __noinline u32 put_path(struct scratch *s, u32 off, const struct path *path)
{
	u32 k = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&path_map, &k);
	if (!pb || off >= HALF - 2)
		return off;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct walk w = {};
	w.root_d = BPF_CORE_READ(t, fs, root.dentry);
	w.root_m = BPF_CORE_READ(t, fs, root.mnt);
	struct vfsmount *vm = BPF_CORE_READ(path, mnt);
	struct mount *mnt = container_of(vm, struct mount, mnt);
	w.d = BPF_CORE_READ(path, dentry);
	w.vm = vm;
	w.mnt = mnt;
	w.mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
	w.pb = pb;
	w.pos = PB;
	pb->data[PB] = 0;
	bpf_loop(MAX_DEPTH, walk_step, &w, 0);
	u32 pos = w.pos;
	if (pos > PB)
		pos = PB;
	u32 n = PB - pos;
	if (n == 0) {
		pos = PB - 1;
		pb->data[pos] = '/';
		n = 1;
	}
	if (n > MAX_STR - 1)
		n = MAX_STR - 1;
	bpf_probe_read_kernel(&s->data[MASK(off + 2, 8191)], MASK(n, 4095), &pb->data[MASK(pos, 4095)]);
	put_len(s, off, n);
	s->h.nstr++;
	return off + 2 + n;
}

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

// describe_fd fills the header's fd fields from the task's fd table; for a
// socket, the family and the local and remote ends.
static __noinline int describe_fd(struct scratch *s, int fd)
{
	s->h.fd = fd;
	struct file *f = fd_file(fd);
	if (!f)
		return FT_NONE;
	u16 mode = BPF_CORE_READ(f, f_inode, i_mode);
	u16 ft = FT_OTHER;
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFCHR:
	case S_IFBLK:
		ft = FT_FILE;
		break;
	case S_IFDIR:
		ft = FT_DIR;
		break;
	case S_IFIFO:
		ft = FT_PIPE;
		break;
	case S_IFSOCK:
		ft = FT_SOCK;
		break;
	}
	s->h.fd_type = ft;
	if (ft != FT_SOCK)
		return ft;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return ft;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	s->h.family = family;
	s->h.sock_type = BPF_CORE_READ(sk, sk_type);
	s->h.protocol = BPF_CORE_READ(sk, sk_protocol);
	if (family == AF_INET) {
		bpf_probe_read_kernel(s->h.saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_probe_read_kernel(s->h.daddr, 4, &sk->__sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		bpf_probe_read_kernel(s->h.saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(s->h.daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	if (family == AF_INET || family == AF_INET6) {
		s->h.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
		s->h.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
	return ft;
}

// sock_udp_dport returns the peer port of fd when it is a UDP socket of
// the internet families (1 << 16 when it is one without a peer), else 0.
static __always_inline u32 sock_udp_dport(int fd)
{
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	u16 mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((family != AF_INET && family != AF_INET6) || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
		return 0;
	u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return dport ? dport : 1 << 16;
}

// sockaddr_port returns the port of a user sockaddr_in/in6 (0 if none).
static __always_inline u16 sockaddr_port(u64 addr)
{
	u16 sa[2] = {};
	if (!addr || bpf_probe_read_user(sa, sizeof(sa), (void *)addr) < 0)
		return 0;
	if (sa[0] != AF_INET && sa[0] != AF_INET6)
		return 0;
	return bpf_ntohs(sa[1]);
}

static __always_inline u64 fd_key(int fd)
{
	return (bpf_get_current_pid_tgid() & 0xffffffff00000000ULL) | (u32)fd;
}

// dns_query reports whether a send (write, sendto, sendmsg, sendmmsg) is
// a DNS query: on a UDP socket, to port 53 by the address given or, for
// a send without one, by its peer (a socket connect()ed to port 53 while
// the sensor ran, kept in dns_fds). Only these writes and sends are
// recorded.
static __noinline u32 dns_query(u32 kind, u64 *a)
{
	int fd = (int)a[0];
	u64 addr = 0;
	if (kind == K_SENDTO) {
		addr = a[4];
	} else if (kind == K_SENDMSG || kind == K_SENDMMSG) {
		// mmsghdr begins with its msghdr: the first message's is read.
		struct umsghdr m = {};
		if (bpf_probe_read_user(&m, sizeof(m), (void *)a[1]) < 0)
			return 0;
		addr = m.name;
	}
	if (addr)
		return sockaddr_port(addr) == DNS_PORT && sock_udp_dport(fd) != 0;
	u64 key = fd_key(fd);
	if (!bpf_map_lookup_elem(&dns_fds, &key))
		return 0;
	if (sock_udp_dport(fd) == DNS_PORT)
		return 1;
	bpf_map_delete_elem(&dns_fds, &key); // closed, reused or reconnected
	return 0;
}

// put_payload appends up to DNS_MAX bytes of a send's buffer.
static __always_inline u32 put_payload(struct scratch *s, u32 off, u64 buf, u64 len)
{
	return put_user_bytes(s, off, (void *)buf, len > DNS_MAX ? DNS_MAX : (u32)len);
}

// put_fd_path appends the path of an open file descriptor ("" if none).
static __always_inline u32 put_fd_path(struct scratch *s, u32 off, int fd)
{
	struct file *f = fd_file(fd);
	if (!f)
		return put_empty(s, off);
	return put_path(s, off, &f->f_path);
}

// put_rel_path appends a path argument and the directory it is relative
// to: "" for an absolute path, else the cwd (dirfd AT_FDCWD) or dirfd's path.
static __noinline u32 put_rel_path(struct scratch *s, u32 off, const char *p, int dirfd)
{
	u32 start = off;
	off = put_user_str(s, off, p);
	if (off == start)
		return off;
	u8 first = s->data[MASK(start + 2, 8191)];
	if (off == start + 2 || first == '/')
		return put_empty(s, off);
	if (dirfd == AT_FDCWD) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();
		struct fs_struct *fs = BPF_CORE_READ(t, fs);
		return put_path(s, off, &fs->pwd);
	}
	return put_fd_path(s, off, dirfd);
}

static __always_inline void emit(struct scratch *s, u32 off)
{
	u64 n = MASK(off, 16383);
	if (n > HALF + MAX_STR)
		n = HALF + MAX_STR;
	u64 size = sizeof(struct hdr) + n;
	s->h.size = size;
	// Waking the reader for each record costs more than the record: wake
	// it only when enough is waiting, it polls the rest on a short timer.
	u64 flags = 0;
	u32 k = 2;
	u64 *wake = bpf_map_lookup_elem(&sensor_config, &k);
	if (wake && *wake) {
		flags = BPF_RB_NO_WAKEUP;
		if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= *wake)
			flags = BPF_RB_FORCE_WAKEUP;
	}
	if (bpf_ringbuf_output(&events, s, size, flags) != 0)
		count(0);
	else
		count(2);
}

SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	u32 id = (u32)ctx->args[1];
	if (id >= MAX_SYSCALLS)
		return 0;
	u32 *kind = bpf_map_lookup_elem(&kinds, &id);
	if (!kind || *kind == K_NONE)
		return 0;
	if (is_self())
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	struct stash st = {};
	st.kind = *kind;
	st.ts = bpf_ktime_get_ns();
	st.args[0] = PT_REGS_PARM1_CORE_SYSCALL(regs);
	st.args[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
	st.args[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
	st.args[3] = PT_REGS_PARM4_CORE_SYSCALL(regs);
	st.args[4] = PT_REGS_PARM5_CORE_SYSCALL(regs);
	st.args[5] = BPF_CORE_READ(regs, r9);
	switch (st.kind) {
	case K_SENDTO:
		st.dns = dns_query(st.kind, st.args);
		if (!st.dns && st.args[4] == 0)
			return 0; // a send on a connected socket: connect reported it
		break;
	case K_WRITE:
	case K_SENDMSG:
	case K_SENDMMSG:
		st.dns = dns_query(st.kind, st.args);
		if (!st.dns)
			return 0; // only DNS queries are reported
		break;
	}
	u32 tid = (u32)bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&inflight, &tid, &st, BPF_ANY) != 0)
		count(1);
	return 0;
}

// exec_flags classifies the executable the way Falco's exe_flags do.
static __always_inline u32 exec_flags(struct file *exe, u32 euid, u64 caps)
{
	u32 flags = 0;
	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	u16 mode = BPF_CORE_READ(ino, i_mode);
	u32 iuid = BPF_CORE_READ(ino, i_uid.val);
	if ((mode & 0002) || (iuid == euid && (mode & 0200)) || (caps & 2 /* CAP_DAC_OVERRIDE */))
		flags |= EXE_WRITABLE;
	unsigned long magic = BPF_CORE_READ(ino, i_sb, s_magic);
	if (magic == 0x794c7630 /* OVERLAYFS_SUPER_MAGIC */) {
		struct ovl_inode *oi = container_of(ino, struct ovl_inode, vfs_inode);
		struct dentry *upper = BPF_CORE_READ(oi, __upperdentry);
		flags |= upper ? EXE_UPPER_LAYER : EXE_LOWER_LAYER;
	}
	char name[6] = {};
	bpf_probe_read_kernel(name, sizeof(name), BPF_CORE_READ(exe, f_path.dentry, d_name.name));
	if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':' &&
	    BPF_CORE_READ(ino, __i_nlink) == 0)
		flags |= EXE_FROM_MEMFD;
	return flags;
}

// sched_process_exec: the new image is in place (comm, mm, exe_file, creds).
// Strings: filename, argv (NUL-separated), cwd, exe path.
SEC("raw_tracepoint/sched_process_exec")
int sched_exec(struct bpf_raw_tracepoint_args *ctx)
{
	if (is_self())
		return 0;
	struct task_struct *t = (struct task_struct *)ctx->args[0];
	u32 old_tid = (u32)ctx->args[1];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	u32 kind = K_EXECVE;
	struct stash *st = bpf_map_lookup_elem(&inflight, &old_tid);
	if (st && st->kind == K_EXECVEAT)
		kind = K_EXECVEAT;
	fill_task(&s->h, kind);
	s->h.ret = 0;
	if (st)
		__builtin_memcpy(s->h.args, st->args, sizeof(s->h.args));
	else
		__builtin_memset(s->h.args, 0, sizeof(s->h.args));

	struct mm_struct *mm = BPF_CORE_READ(t, mm);
	struct file *exe = BPF_CORE_READ(mm, exe_file);
	s->h.flags = exec_flags(exe, s->h.uid, s->h.cap_eff);

	u32 off = 0;
	off = put_kernel_str(s, off, BPF_CORE_READ(bprm, filename));
	unsigned long as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
	off = put_user_bytes(s, off, (void *)as, ae > as ? (u32)(ae - as) : 0);
	struct fs_struct *fs = BPF_CORE_READ(t, fs);
	off = put_path(s, off, &fs->pwd);
	if (exe)
		off = put_path(s, off, &exe->f_path);
	else
		off = put_empty(s, off);
	u32 k = 1;
	u64 *env = bpf_map_lookup_elem(&sensor_config, &k);
	if (env && *env) {
		unsigned long es = BPF_CORE_READ(mm, env_start), ee = BPF_CORE_READ(mm, env_end);
		off = put_user_bytes(s, off, (void *)es, ee > es ? (u32)(ee - es) : 0);
	}
	emit(s, off);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int sched_exit(struct bpf_raw_tracepoint_args *ctx)
{
	u64 pt = bpf_get_current_pid_tgid();
	if ((u32)pt != (pt >> 32))
		return 0; // a thread, not the process
	if (is_self())
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	fill_task(&s->h, K_PROCEXIT);
	__builtin_memset(s->h.args, 0, sizeof(s->h.args));
	s->h.ret = BPF_CORE_READ(t, exit_code);
	emit(s, 0);
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct stash *stp = bpf_map_lookup_elem(&inflight, &tid);
	if (!stp)
		return 0;
	struct stash st = *stp;
	bpf_map_delete_elem(&inflight, &tid);
	if (st.kind == K_EXECVE || st.kind == K_EXECVEAT)
		return 0; // sched_process_exec reported the successful ones
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	long ret = (long)ctx->args[1];
	fill_task(&s->h, st.kind);
	s->h.ret = ret;
	__builtin_memcpy(s->h.args, st.args, sizeof(s->h.args));
	u64 *a = st.args;
	u32 off = 0;

	switch (st.kind) {
	case K_OPEN:
	case K_CREAT:
		off = put_rel_path(s, off, (const char *)a[0], AT_FDCWD);
		if (ret >= 0)
			describe_fd(s, ret);
		break;
	case K_OPENAT:
	case K_OPENAT2:
		off = put_rel_path(s, off, (const char *)a[1], (int)a[0]);
		if (st.kind == K_OPENAT2) {
			// struct open_how { u64 flags; u64 mode; u64 resolve; }
			u64 how[3] = {};
			bpf_probe_read_user(how, sizeof(how), (void *)a[2]);
			s->h.args[2] = how[0];
			s->h.args[3] = how[1];
			s->h.args[4] = how[2];
		}
		if (ret >= 0)
			describe_fd(s, ret);
		break;
	case K_CONNECT:
	case K_BIND:
		off = put_user_bytes(s, off, (void *)a[1], a[2] > 128 ? 128 : (u32)a[2]);
		describe_fd(s, (int)a[0]);
		if (st.kind == K_CONNECT && ret == 0 && s->h.protocol == IPPROTO_UDP && s->h.dport == DNS_PORT) {
			u64 key = fd_key((int)a[0]);
			u8 one = 1;
			bpf_map_update_elem(&dns_fds, &key, &one, BPF_ANY);
		}
		break;
	case K_SENDTO:
		off = put_user_bytes(s, off, (void *)a[4], a[5] > 128 ? 128 : (u32)a[5]);
		describe_fd(s, (int)a[0]);
		off = st.dns ? put_payload(s, off, a[1], a[2]) : put_empty(s, off);
		break;
	case K_WRITE:
		off = put_empty(s, off);
		describe_fd(s, (int)a[0]);
		off = put_payload(s, off, a[1], a[2]);
		break;
	case K_SENDMSG:
	case K_SENDMMSG: {
		// Strings: the address given (msg_name) and the first buffer of
		// the (first) message.
		struct umsghdr m = {};
		bpf_probe_read_user(&m, sizeof(m), (void *)a[1]);
		off = put_user_bytes(s, off, (void *)m.name, m.namelen > 128 || m.namelen < 0 ? 128 : (u32)m.namelen);
		describe_fd(s, (int)a[0]);
		u64 iov[2] = {};
		if (m.iovlen > 0)
			bpf_probe_read_user(iov, sizeof(iov), (void *)m.iov);
		off = put_payload(s, off, iov[0], iov[1]);
		break;
	}
	case K_ACCEPT:
	case K_ACCEPT4:
		if (ret >= 0)
			describe_fd(s, ret);
		break;
	case K_LISTEN:
		describe_fd(s, (int)a[0]);
		break;
	case K_SOCKET:
		if (ret >= 0)
			describe_fd(s, ret);
		break;
	case K_DUP:
	case K_DUP2:
	case K_DUP3:
		if (ret >= 0) {
			if (describe_fd(s, ret) == FT_FILE)
				off = put_fd_path(s, off, ret);
		} else {
			describe_fd(s, (int)a[0]);
		}
		break;
	case K_UNLINK:
	case K_MKDIR:
	case K_CHMOD:
		off = put_rel_path(s, off, (const char *)a[0], AT_FDCWD);
		break;
	case K_UNLINKAT:
	case K_MKDIRAT:
	case K_FCHMODAT:
		off = put_rel_path(s, off, (const char *)a[1], (int)a[0]);
		break;
	case K_FCHMOD:
		off = put_fd_path(s, off, (int)a[0]);
		break;
	case K_RENAME:
	case K_LINK:
		off = put_rel_path(s, off, (const char *)a[0], AT_FDCWD);
		off = put_rel_path(s, off, (const char *)a[1], AT_FDCWD);
		break;
	case K_RENAMEAT:
	case K_RENAMEAT2:
	case K_LINKAT:
		off = put_rel_path(s, off, (const char *)a[1], (int)a[0]);
		off = put_rel_path(s, off, (const char *)a[3], (int)a[2]);
		break;
	case K_SYMLINK:
		off = put_user_str(s, off, (const char *)a[0]);
		off = put_rel_path(s, off, (const char *)a[1], AT_FDCWD);
		break;
	case K_SYMLINKAT:
		off = put_user_str(s, off, (const char *)a[0]);
		off = put_rel_path(s, off, (const char *)a[2], (int)a[1]);
		break;
	case K_MOUNT:
		off = put_user_str(s, off, (const char *)a[0]);
		off = put_user_str(s, off, (const char *)a[1]);
		off = put_user_str(s, off, (const char *)a[2]);
		break;
	case K_UMOUNT2:
		off = put_user_str(s, off, (const char *)a[0]);
		break;
	case K_INIT_MODULE:
		off = put_user_str(s, off, (const char *)a[2]);
		break;
	case K_FINIT_MODULE:
		off = put_user_str(s, off, (const char *)a[1]);
		off = put_fd_path(s, off, (int)a[0]);
		break;
	case K_MEMFD_CREATE:
		off = put_user_str(s, off, (const char *)a[0]);
		break;
	case K_CAPSET:
	case K_SETUID:
	case K_SETGID:
	case K_SETRESUID:
	case K_SETRESGID:
	case K_PTRACE:
	default:
		break;
	}
	emit(s, off);
	return 0;
}
