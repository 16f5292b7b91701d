package drift

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// Options configure a Detector.
type Options struct {
	// Store holds the image indexes (required).
	Store IndexStore
	// Resolver finds a container's image id when the event does not carry
	// it, its first process (to read a file through its root), and the
	// socket to export an image from; nil uses only what the events carry.
	Resolver Resolver
	// AutoIndex builds a missing index by exporting the image from the
	// container runtime's socket (as `bulkhead runtime index` would), in
	// the background, and saves it in Store.
	AutoIndex bool
	// TempDir is where an exported image is kept while it is indexed.
	TempDir string
	// ProcDir is the proc filesystem (default /proc).
	ProcDir string
	// MaxHashBytes bounds the bytes hashed of one executed file (default
	// 256 MiB); a larger file is reported without a hash.
	MaxHashBytes int64
	// Stderr receives progress and problems (nil: discarded).
	Stderr io.Writer
}

// Resolver is what the detector asks the container runtime
// (sensor.Resolver answers through the runtimes' API sockets).
type Resolver interface {
	// ImageID is the container's image id ("sha256:<hex>"), "" when no
	// runtime knows it.
	ImageID(container string) string
	// InitPID is the host pid of the container's first process, 0 when
	// no runtime said.
	InitPID(container string) int64
	// Socket is the Docker Engine API socket to export images from, ""
	// when there is none.
	Socket() string
}

// Detector annotates events with drift from the image: Enrich sets
// Event.Drift on an exec of a file the image does not have, and records
// which process wrote which file, to name it.
type Detector struct {
	o Options

	mu      sync.Mutex
	indexes map[string]*Index // by image id; nil when none could be had
	jobs    chan string
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// The rest is used by Enrich only, on the event goroutine.
	writers map[string]map[string]*event.Writer // container id -> path -> writer
	seen    map[string]bool                     // image ids whose index was asked for
	hashes  map[fileKey]string
}

type fileKey struct {
	dev, ino    uint64
	size, mtime int64
}

// New returns a Detector; Close stops its background indexing.
func New(o Options) *Detector {
	if o.ProcDir == "" {
		o.ProcDir = "/proc"
	}
	if o.MaxHashBytes <= 0 {
		o.MaxHashBytes = 256 << 20
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	d := &Detector{o: o, indexes: map[string]*Index{}, jobs: make(chan string, 64),
		writers: map[string]map[string]*event.Writer{}, seen: map[string]bool{}, hashes: map[fileKey]string{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1)
	go d.worker()
	return d
}

// Close stops background indexing and waits for it.
func (d *Detector) Close() {
	d.cancel()
	d.wg.Wait()
}

// EventTypes are the event types the detector needs: execs, and the
// calls that write or move files (to name the writer).
func (d *Detector) EventTypes() []string {
	return []string{"execve", "execveat", "open", "openat", "openat2", "creat", "rename", "renameat", "renameat2", "link", "linkat"}
}

// Preload loads (or, with AutoIndex, builds) the index of image id now.
func (d *Detector) Preload(id string) error {
	ix, err := d.obtain(id)
	d.mu.Lock()
	d.indexes[id] = ix
	d.mu.Unlock()
	return err
}

// index returns the index of image id, nil when it is not (yet) known; the
// first call for an id queues its loading.
func (d *Detector) index(id string) *Index {
	d.mu.Lock()
	defer d.mu.Unlock()
	ix, ok := d.indexes[id]
	if ok {
		return ix
	}
	d.indexes[id] = nil
	select {
	case d.jobs <- id:
	default:
		delete(d.indexes, id) // queue full: ask again later
	}
	return nil
}

func (d *Detector) worker() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case id := <-d.jobs:
			ix, err := d.obtain(id)
			if err != nil {
				fmt.Fprintf(d.o.Stderr, "bulkhead: drift: %v\n", err)
			}
			if ix != nil {
				d.mu.Lock()
				d.indexes[id] = ix
				d.mu.Unlock()
			}
		}
	}
}

// obtain loads the index of id from the store, or builds it from the
// runtime's socket when AutoIndex is on.
func (d *Detector) obtain(id string) (*Index, error) {
	ix, err := d.o.Store.Load(id)
	if err == nil {
		return ix, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if !d.o.AutoIndex {
		return nil, fmt.Errorf("no file list for image %s in %s: run `bulkhead runtime index IMAGE` (or --drift-auto-index); until then only files in the container's writable layer are reported", id, d.o.Store.Where())
	}
	sock := ""
	if d.o.Resolver != nil {
		sock = d.o.Resolver.Socket()
	}
	if sock == "" {
		return nil, fmt.Errorf("cannot index image %s: no container runtime socket answers (start `podman system service` or give --socket)", id)
	}
	img, err := image.OpenDaemon(d.ctx, "docker", id, image.Options{DockerHost: "unix://" + sock, TempDir: d.o.TempDir})
	if err != nil {
		return nil, fmt.Errorf("index image %s: %w", id, err)
	}
	defer img.Close()
	ix, err = Build(d.ctx, img, d.o.TempDir)
	if err != nil {
		return nil, err
	}
	if ix.Image != id {
		return nil, fmt.Errorf("index image %s: the runtime exported image %s", id, ix.Image)
	}
	name, err := d.o.Store.Save(ix)
	if err != nil {
		return ix, err
	}
	fmt.Fprintf(d.o.Stderr, "bulkhead: drift: indexed image %s (%d files) into %s\n", id, len(ix.Files), name)
	return ix, nil
}

// Enrich sets ev.Drift when ev is the exec of a file not from the image,
// and remembers who writes files in containers.
func (d *Detector) Enrich(ev *event.Event) {
	ct := ev.Container
	if ct == nil || ev.Res < 0 || ev.Proc.IsRuntimeInit() {
		return
	}
	if ct.ImageID == "" && d.o.Resolver != nil {
		ct.ImageID = d.o.Resolver.ImageID(ct.ID)
	}
	if id := ct.ImageID; id != "" && !d.seen[id] {
		// Load the image's file list as soon as one of its containers
		// shows up, not at its first suspect exec.
		if len(d.seen) > 65536 {
			clear(d.seen)
		}
		d.seen[id] = true
		d.index(id)
	}
	switch ev.Type {
	case "execve", "execveat":
		d.exec(ev, ct)
	case "open", "openat", "openat2":
		fl, _ := ev.Args.Get("flags")
		if ev.FD != nil && (hasFlag(fl, "O_WRONLY") || hasFlag(fl, "O_RDWR") || hasFlag(fl, "O_CREAT")) {
			d.wrote(ct.ID, ev.FD.Name, ev)
		}
	case "creat":
		if ev.FD != nil {
			d.wrote(ct.ID, ev.FD.Name, ev)
		}
	case "rename", "renameat", "renameat2", "link", "linkat":
		oldp, _ := ev.Args.Get("oldpath")
		newp, _ := ev.Args.Get("newpath")
		oldp, newp = abs(oldp, ev.Proc.Cwd), abs(newp, ev.Proc.Cwd)
		if newp == "" {
			return
		}
		if w := d.writers[ct.ID][oldp]; w != nil {
			d.setWriter(ct.ID, newp, w)
		} else {
			d.wrote(ct.ID, newp, ev)
		}
	}
}

func abs(p, cwd string) string {
	if p == "" {
		return ""
	}
	if !strings.HasPrefix(p, "/") {
		p = cwd + "/" + p
	}
	return path.Clean(p)
}

func hasFlag(flags, name string) bool {
	for f := range strings.SplitSeq(flags, "|") {
		if f == name {
			return true
		}
	}
	return false
}

func (d *Detector) wrote(ctr, p string, ev *event.Event) {
	if p == "" {
		return
	}
	cmd := ev.Proc.Exe
	if len(ev.Proc.Args) > 0 {
		cmd += " " + strings.Join(ev.Proc.Args, " ")
	}
	d.setWriter(ctr, p, &event.Writer{PID: ev.Proc.PID, Name: ev.Proc.Name, ExePath: ev.Proc.ExePath, Cmdline: cmd})
}

// maxWriters bounds the files remembered per container.
const maxWriters = 4096

func (d *Detector) setWriter(ctr, p string, w *event.Writer) {
	m := d.writers[ctr]
	if m == nil {
		if len(d.writers) > 1024 {
			clear(d.writers)
		}
		m = map[string]*event.Writer{}
		d.writers[ctr] = m
	}
	if len(m) >= maxWriters {
		clear(m)
	}
	m[p] = w
}

func (d *Detector) exec(ev *event.Event, ct *event.Container) {
	p := ev.Proc.ExePath
	if p == "" || strings.HasSuffix(p, "/") || ev.Proc.IsExeFromMemfd {
		return
	}
	flags, _ := ev.Args.Get("flags")
	if hasFlag(flags, "EXE_LOWER_LAYER") {
		return // an image layer of the container's overlay: the image's file
	}
	upper := ev.Proc.IsExeUpperLayer
	var ix *Index
	if ct.ImageID != "" {
		ix = d.index(ct.ImageID)
	}
	dr := event.Drift{Path: p}
	switch {
	case ix == nil:
		if !upper {
			return
		}
		dr.Reason = event.DriftUpperLayer
		dr.SHA256 = d.hash(ev, ct, p)
	default:
		f, in := ix.Files[p]
		dr.SHA256 = d.hash(ev, ct, p)
		if !in {
			dr.Reason = event.DriftNotInImage
			break
		}
		if dr.SHA256 == "" || dr.SHA256 == f.SHA256 {
			return // the image's content (or unreadable: cannot tell)
		}
		dr.Reason, dr.ImageSHA256 = event.DriftModified, f.SHA256
	}
	if w := d.writers[ct.ID][p]; w != nil {
		dr.Writer = w
	}
	ev.Drift = &dr
}

// hash returns the hex SHA-256 of the executed file, read through the
// process (/proc/PID/exe) or, when it is gone, through the root of the
// container's first process (/proc/INIT/root/PATH); "" when neither can
// be read. Other processes (a `podman exec`'s parents) may be in another
// root, so no other pid is tried.
func (d *Detector) hash(ev *event.Event, ct *event.Container, p string) string {
	proc := d.o.ProcDir
	exe := filepath.Join(proc, strconv.FormatInt(ev.Proc.PID, 10), "exe")
	// A file already hashed costs one stat.
	if fi, err := os.Stat(exe); err == nil {
		if k, ok := keyOf(fi); ok {
			if h, ok := d.hashes[k]; ok {
				return h
			}
		}
	}
	if f, err := os.Open(exe); err == nil {
		link, _ := os.Readlink(exe)
		if strings.HasSuffix(link, p) {
			defer f.Close()
			return d.hashFile(f)
		}
		f.Close()
	}
	if d.o.Resolver == nil {
		return ""
	}
	pid := d.o.Resolver.InitPID(ct.ID)
	if pid <= 1 {
		return ""
	}
	f, err := os.Open(filepath.Join(proc, strconv.FormatInt(pid, 10), "root", p))
	if err != nil {
		return ""
	}
	defer f.Close()
	return d.hashFile(f)
}

func (d *Detector) hashFile(f *os.File) string {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > d.o.MaxHashBytes {
		return ""
	}
	k, keyed := keyOf(fi)
	if keyed {
		if h, ok := d.hashes[k]; ok {
			return h
		}
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.LimitReader(f, d.o.MaxHashBytes)); err != nil {
		return ""
	}
	h := hex.EncodeToString(sum.Sum(nil))
	if keyed {
		if len(d.hashes) > 16384 {
			clear(d.hashes)
		}
		d.hashes[k] = h
	}
	return h
}

// keyOf identifies a file's content version: device, inode, size, mtime.
func keyOf(fi os.FileInfo) (fileKey, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}, true
}
