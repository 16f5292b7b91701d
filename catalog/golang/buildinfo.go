package golang

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"strings"
	"sync"
)

// The Go linker writes a build-info blob into every binary built with module
// support (Go 1.13+): "\xff Go buildinf:", a pointer size byte, a flags byte,
// and then either (Go 1.18+, flag 0x2) the toolchain version and module
// information as varint-prefixed strings right after the 32-byte header, or
// (older) two pointers to Go string headers elsewhere in the binary. The blob
// is 16-byte aligned, and so is its file offset in ELF, Mach-O and PE files.
//
// debug/buildinfo reads it through an io.ReaderAt, which for a file inside
// an image layer means buffering or spooling the whole binary first. The scan
// here reads the file once, front to back, and stops at the blob; a file that
// is not a Go binary costs one sequential read and nothing more.
var (
	buildInfoMagic = []byte("\xff Go buildinf:")
	// The module information string is framed by these sentinels
	// (cmd/go/internal/modload infoStart and infoEnd).
	infoStart = []byte("0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6")
	infoEnd   = []byte("\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2")
	goPrefix  = []byte("go1.")
	// The Go linker marks every executable with a build ID
	// (cmd/internal/buildid): in ELF files as a note of type 4 owned by
	// "Go" (.note.go.buildid, in the first page), in Mach-O and PE files
	// as a string at the start of the text segment. A Go binary without
	// build information still carries it.
	elfBuildIDNotes = [][]byte{
		[]byte("\x04\x00\x00\x00Go\x00\x00"), // note type 4 and name, little-endian
		[]byte("\x00\x00\x00\x04Go\x00\x00"), // big-endian
	}
	textBuildID = []byte("\xff Go build ID: \"")
)

const (
	headerSize = 32
	// headSize is read first to tell the executable format and find the ELF
	// program headers, which the pre-1.18 format needs.
	headSize = 4096
	// chunkSize is how much is read at a time.
	chunkSize = 256 << 10
	// overlap is kept between chunks so that a pattern or a short version
	// string that straddles two reads is still seen whole.
	overlap = 80
	// maxModInfo bounds the module information string. The largest real
	// ones (Kubernetes, Grafana) are some tens of kilobytes.
	maxModInfo = 4 << 20
	// maxVersion bounds the toolchain version string ("go1.22.3",
	// "go1.21.0 X:boringcrypto").
	maxVersion = 256
	// For the pre-1.18 format, the strings that may be the version or the
	// module information are remembered as the scan passes them, up to
	// these counts.
	maxVersionCandidates = 4096
	maxModInfoCandidates = 16
	// buildIDWithin is how far into the file the Go build ID is looked
	// for: the text segment starts within the first pages.
	buildIDWithin = 1 << 20
)

// errNotExecutable marks input that is not an ELF, Mach-O or PE file.
var errNotExecutable = errors.New("not an executable")

// format is the executable format found in the first bytes.
type format int

const (
	formatUnknown format = iota
	formatELF
	formatMachO
	formatPE
)

func detect(head []byte) format {
	switch {
	case len(head) < 4:
		return formatUnknown
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return formatELF
	case bytes.HasPrefix(head, []byte("\xfe\xed\xfa\xce")), bytes.HasPrefix(head, []byte("\xfe\xed\xfa\xcf")),
		bytes.HasPrefix(head, []byte("\xce\xfa\xed\xfe")), bytes.HasPrefix(head, []byte("\xcf\xfa\xed\xfe")):
		return formatMachO
	case bytes.HasPrefix(head, []byte("MZ")):
		return formatPE
	}
	return formatUnknown
}

// segment maps virtual addresses to file offsets (an ELF PT_LOAD).
type segment struct {
	vaddr, off, size uint64
}

// forward is a read-only-forward window over a stream.
type forward struct {
	r      io.Reader
	buf    []byte
	base   int64 // file offset of buf[0]
	eof    bool
	err    error
	pooled *[]byte // the window's first buffer, from windowPool
}

// windowSize is the window's usual size: the head, a chunk and the overlap
// fit. Windows of that size are pooled (every executable of an image is
// scanned: one allocation each was most of what a walk allocated); larger
// ones, for long module information, are not.
const windowSize = headSize + 2*chunkSize

var windowPool = sync.Pool{New: func() any { b := make([]byte, windowSize); return &b }}

// release gives the pooled buffer back; the window is not used afterwards.
// Nothing the scan returns refers to it (strings and clones are copies).
func (f *forward) release() {
	if f.pooled != nil {
		windowPool.Put(f.pooled)
		f.pooled, f.buf = nil, nil
	}
}

// fill appends up to chunkSize bytes to the window.
func (f *forward) fill() {
	if f.eof {
		return
	}
	n := len(f.buf)
	if cap(f.buf)-n < chunkSize {
		var nb []byte
		if n <= windowSize-chunkSize && f.pooled == nil {
			f.pooled = windowPool.Get().(*[]byte)
			nb = (*f.pooled)[:n]
		} else {
			nb = make([]byte, n, 2*cap(f.buf)+chunkSize)
		}
		copy(nb, f.buf)
		f.buf = nb
	}
	m, err := io.ReadFull(f.r, f.buf[n:n+chunkSize])
	f.buf = f.buf[:n+m]
	if err != nil {
		f.eof = true
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			f.err = err
		}
	}
}

// end is the file offset just past the window.
func (f *forward) end() int64 { return f.base + int64(len(f.buf)) }

// ensure returns the bytes [off, off+n) of the file, or fewer at the end of
// the file. off must not be before the window.
func (f *forward) ensure(off int64, n int) []byte {
	for f.end() < off+int64(n) && !f.eof {
		f.fill()
	}
	if off < f.base || off > f.end() {
		return nil
	}
	e := off + int64(n)
	if e > f.end() {
		e = f.end()
	}
	return f.buf[off-f.base : e-f.base]
}

// discard drops the window before off, skipping forward in the stream when
// off is past the window.
func (f *forward) discard(off int64) {
	if off <= f.base {
		return
	}
	if off >= f.end() {
		skip := off - f.end()
		f.base = off
		f.buf = f.buf[:0]
		if skip > 0 && !f.eof {
			n, err := io.CopyN(io.Discard, f.r, skip)
			if err != nil {
				f.eof = true
				f.base = off - skip + n
				if !errors.Is(err, io.EOF) {
					f.err = err
				}
			}
		}
		return
	}
	k := int(off - f.base)
	n := copy(f.buf, f.buf[k:])
	f.buf = f.buf[:n]
	f.base = off
}

// scanner finds the build information in one stream.
type scanner struct {
	f     forward
	order binary.ByteOrder // ELF byte order, for the pre-1.18 format
	segs  []segment
	// Strings passed before the blob, by file offset, for the pre-1.18
	// format whose blob points back at them.
	versions map[int64][]byte
	modinfos map[int64][]byte
	// pointerFormat is set when a pre-1.18 blob was found but could not be
	// resolved from the stream alone.
	pointerFormat bool
	// bad describes the first candidate blob (the magic, 16-byte
	// aligned) that was not valid build information.
	bad *MalformedError
	// modErr is set when the blob's version was read but its module
	// information was not.
	modErr error
	// goBuildID is set when the Go linker's build ID was seen: the file
	// is a Go executable.
	goBuildID bool
	idPos     int64 // where the build ID search goes on from
}

// MalformedError says that a file holds the Go build-information magic
// where the linker puts it, but what follows is not build information: a
// corrupt or doctored Go binary, whose modules cannot be listed.
type MalformedError struct {
	Offset int64
	Reason string
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed Go build information at offset %d (%s): its modules cannot be listed; the binary is corrupt or was altered (go version -m shows what Go reads)", e.Offset, e.Reason)
}

// errNoBuildInfo: a Go executable (it has a Go build ID) without build
// information.
var errNoBuildInfo = errors.New("a Go executable (it carries a Go build ID) without Go build information: built with Go before 1.13, or the build information was removed or damaged; its modules cannot be listed")

// findBuildID looks for the Go build ID in the window, within the first
// buildIDWithin bytes of the file.
func (s *scanner) findBuildID() {
	if s.goBuildID || s.idPos >= buildIDWithin {
		return
	}
	from := max(s.idPos, s.f.base)
	if from >= s.f.end() {
		return
	}
	if bytes.Contains(s.f.buf[from-s.f.base:], textBuildID) {
		s.goBuildID = true
	}
	// The last bytes may hold the start of a match: search them again.
	s.idPos = max(from, s.f.end()-int64(len(textBuildID)-1))
}

// scanBuildInfo reads the Go build information from an executable stream.
// It returns errNotExecutable for files that are not ELF, Mach-O or PE, and
// (nil, nil) for executables without Go build information.
func scanBuildInfo(r io.Reader, s *scanner) (*debug.BuildInfo, error) {
	s.f = forward{r: r}
	defer s.f.release()
	head := make([]byte, headSize)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read: %w", err)
	}
	head = head[:n]
	ft := detect(head)
	if ft == formatUnknown {
		return nil, errNotExecutable
	}
	var dataOff, dataEnd int64 = 0, -1
	if ft == formatELF {
		s.order, s.segs = elfSegments(head)
		// The notes follow the program headers in the first page.
		for _, m := range elfBuildIDNotes {
			s.goBuildID = s.goBuildID || bytes.Contains(head, m)
		}
		if !s.goBuildID {
			// Not a Go program by its build ID: look where
			// debug/buildinfo looks, and nowhere else (a C or Rust
			// binary is read no further than its data segment).
			off, size, ok := elfDataSegment(head)
			switch {
			case ok && size == 0:
				return nil, nil // no data segment: not a Go executable
			case ok:
				dataOff, dataEnd = off, off+size
			}
		}
	}
	s.f.buf = head
	if n < headSize {
		s.f.eof = true
	}
	if dataEnd >= 0 {
		// The stream past the segment is not read: it ends there.
		s.f.r = io.LimitReader(r, max(dataEnd-int64(len(head)), 0))
		if dataEnd < int64(len(head)) {
			s.f.buf, s.f.eof = head[:dataEnd], true
		}
		s.f.discard(dataOff)
	}
	return s.scan()
}

// elfDataSegment returns the file extent of the segment debug/buildinfo
// searches in an ELF file without a .go.buildinfo section: the first
// loadable segment that is writable and not executable (the Go linker puts
// the blob in it, in its own section, which a stream cannot see: the
// section table is at the end of the file). The program headers are parsed
// by debug/elf from the first bytes, with the section table left out; ok is
// false when they are not all there or debug/elf refuses them, and size is 0
// when there is no such segment.
func elfDataSegment(head []byte) (off, size int64, ok bool) {
	if len(head) < 64 {
		return 0, 0, false
	}
	h := bytes.Clone(head)
	// Drop the section table (e_shoff, e_shnum, e_shstrndx): it lies
	// beyond what was read.
	switch h[4] {
	case byte(elf.ELFCLASS32):
		clear(h[0x20:0x24])
		clear(h[0x30:0x34])
	case byte(elf.ELFCLASS64):
		clear(h[0x28:0x30])
		clear(h[0x3c:0x40])
	default:
		return 0, 0, false
	}
	f, err := elf.NewFile(bytes.NewReader(h))
	if err != nil {
		return 0, 0, false
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&(elf.PF_X|elf.PF_W) == elf.PF_W {
			if p.Off > math.MaxInt64/2 || p.Filesz > math.MaxInt64/2 {
				return 0, 0, false
			}
			return int64(p.Off), int64(p.Filesz), true
		}
	}
	return 0, 0, true
}

func (s *scanner) scan() (*debug.BuildInfo, error) {
	pos, recPos := s.f.base, s.f.base
	for {
		s.findBuildID()
		limit := s.f.end()
		if !s.f.eof {
			limit -= overlap
		}
		for pos < limit {
			w := s.f.buf[pos-s.f.base : limit-s.f.base]
			i := bytes.Index(w, buildInfoMagic)
			if i < 0 {
				break
			}
			m := pos + int64(i)
			pos = m + 1
			if m%16 != 0 {
				continue
			}
			s.record(recPos, m)
			recPos = m
			bi, reason := s.header(m)
			if bi != nil {
				return bi, s.f.err
			}
			if s.bad == nil && reason != "" {
				s.bad = &MalformedError{Offset: m, Reason: reason}
			}
			if s.f.base > pos {
				// Resolving a pre-1.18 blob read ahead and dropped
				// what lay between: carry on from there.
				pos, recPos = s.f.base, s.f.base
				limit = s.f.end()
				if !s.f.eof {
					limit -= overlap
				}
			}
		}
		if recPos < limit {
			s.record(recPos, limit)
			recPos = limit
		}
		if pos < limit {
			pos = limit
		}
		if s.f.eof {
			return nil, s.f.err
		}
		s.f.discard(min(pos, recPos))
		s.f.fill()
	}
}

// record remembers, for the pre-1.18 format, the version-like strings and
// module-information strings that start in [from, to). Only ELF files are
// resolved that way, so nothing is recorded for other formats.
func (s *scanner) record(from, to int64) {
	if s.segs == nil || from >= to || from < s.f.base {
		return
	}
	w := s.f.buf[from-s.f.base : to-s.f.base]
	for off := 0; len(s.versions) < maxVersionCandidates; {
		i := bytes.Index(w[off:], goPrefix)
		if i < 0 {
			break
		}
		at := from + int64(off+i)
		b := s.f.buf[at-s.f.base:]
		b = b[:min(len(b), overlap)]
		if s.versions == nil {
			s.versions = map[int64][]byte{}
		}
		s.versions[at] = bytes.Clone(b)
		off += i + 1
	}
	for off := 0; len(s.modinfos) < maxModInfoCandidates; {
		i := bytes.Index(w[off:], infoStart)
		if i < 0 {
			break
		}
		at := from + int64(off+i)
		off += i + 1
		// Read on until the closing sentinel; the window grows but is
		// not moved, so w stays valid.
		for n := 4096; ; n *= 2 {
			b := s.f.ensure(at, n)
			if j := bytes.Index(b[len(infoStart):], infoEnd); j >= 0 {
				if s.modinfos == nil {
					s.modinfos = map[int64][]byte{}
				}
				s.modinfos[at] = bytes.Clone(b[:len(infoStart)+j+len(infoEnd)])
				break
			}
			if len(b) < n || n >= maxModInfo {
				break
			}
		}
		w = s.f.buf[from-s.f.base : to-s.f.base]
	}
}

// header reads the blob at file offset m. It returns nil and the reason
// when it is not a valid blob (a copy of the magic in data, or a damaged
// blob); the reason is empty for a pre-1.18 blob that needs random access.
func (s *scanner) header(m int64) (*debug.BuildInfo, string) {
	h := s.f.ensure(m, headerSize)
	if len(h) < headerSize {
		return nil, "cut short by the end of the file"
	}
	ptrSize, flags := int(h[14]), h[15]
	if ptrSize != 4 && ptrSize != 8 {
		return nil, fmt.Sprintf("pointer size %d", ptrSize)
	}
	var vers, mod string
	if flags&2 != 0 {
		var ok bool
		off := m + headerSize
		if vers, off, ok = s.varintString(off, maxVersion); !ok {
			return nil, "unreadable toolchain version"
		}
		if mod, _, ok = s.varintString(off, maxModInfo); !ok {
			return nil, "unreadable module information"
		}
	} else {
		var order binary.ByteOrder = binary.LittleEndian
		if flags&1 != 0 {
			order = binary.BigEndian
		}
		p1 := readPtr(h[16:], ptrSize, order)
		p2 := readPtr(h[16+ptrSize:], ptrSize, order)
		var ok bool
		vers, mod, ok = s.pointers(m, p1, p2, ptrSize, order)
		if !ok {
			s.pointerFormat = true
			return nil, ""
		}
	}
	if !validVersion(vers) {
		return nil, fmt.Sprintf("toolchain version %.40q", vers)
	}
	// As debug/buildinfo: strip the sentinels, or drop a string without them.
	var modErr error
	if len(mod) >= 33 && mod[len(mod)-17] == '\n' {
		mod = mod[16 : len(mod)-16]
	} else {
		if mod != "" {
			modErr = fmt.Errorf("module information of %d bytes without its sentinels", len(mod))
		}
		mod = ""
	}
	if n := unknownLines(mod); n > 0 && modErr == nil {
		// debug.ParseBuildInfo skips them: a damaged "dep" line would
		// hide its module without a word.
		modErr = fmt.Errorf("%d lines of an unknown kind (a damaged dep or mod line hides its module)", n)
	}
	bi, err := debug.ParseBuildInfo(mod)
	if err != nil {
		// Go's own reader keeps the version when the module
		// information is unreadable; so does this one, and says so.
		bi = &debug.BuildInfo{}
		modErr = err
	}
	if modErr != nil {
		s.modErr = &MalformedError{Offset: m, Reason: "module information: " + modErr.Error()}
	}
	bi.GoVersion = vers
	return bi, ""
}

// unknownLines counts the non-empty lines of module information that are
// none of the kinds the Go toolchain writes (runtime/debug: path, mod, dep,
// =>, build).
func unknownLines(mod string) int {
	n := 0
	for line := range strings.SplitSeq(mod, "\n") {
		if line == "" {
			continue
		}
		switch kind, _, _ := strings.Cut(line, "\t"); kind {
		case "path", "mod", "dep", "=>", "build":
		default:
			n++
		}
	}
	return n
}

func (s *scanner) varintString(off int64, max int) (string, int64, bool) {
	b := s.f.ensure(off, binary.MaxVarintLen64)
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(max) {
		return "", 0, false
	}
	off += int64(k)
	b = s.f.ensure(off, int(n))
	if len(b) < int(n) {
		return "", 0, false
	}
	return string(b), off + int64(n), true
}

// pointers resolves a pre-1.18 blob: p1 and p2 are the addresses of the
// string headers of the version and the module information. The headers lie
// after the blob (in .data), the strings before it (in .rodata), where the
// scan remembered them.
func (s *scanner) pointers(m int64, p1, p2 uint64, ptrSize int, order binary.ByteOrder) (vers, mod string, ok bool) {
	o1, ok1 := s.fileOffset(p1)
	o2, ok2 := s.fileOffset(p2)
	if !ok1 || !ok2 || o1 < m+headerSize || o2 < m+headerSize {
		return "", "", false
	}
	type want struct {
		off int64
		out *string
		in  map[int64][]byte
	}
	ws := []want{{o1, &vers, s.versions}, {o2, &mod, s.modinfos}}
	if o2 < o1 {
		ws[0], ws[1] = ws[1], ws[0]
	}
	for _, w := range ws {
		s.f.discard(w.off)
		h := s.f.ensure(w.off, 2*ptrSize)
		if len(h) < 2*ptrSize {
			return "", "", false
		}
		ptr, n := readPtr(h, ptrSize, order), readPtr(h[ptrSize:], ptrSize, order)
		if n == 0 {
			continue // an empty string: no module information
		}
		so, ok := s.fileOffset(ptr)
		if !ok {
			return "", "", false
		}
		b, found := w.in[so]
		if !found || uint64(len(b)) < n {
			return "", "", false
		}
		*w.out = string(b[:n])
	}
	return vers, mod, true
}

func (s *scanner) fileOffset(vaddr uint64) (int64, bool) {
	for _, sg := range s.segs {
		if vaddr >= sg.vaddr && vaddr-sg.vaddr < sg.size {
			return int64(sg.off + vaddr - sg.vaddr), true
		}
	}
	return 0, false
}

func readPtr(b []byte, size int, order binary.ByteOrder) uint64 {
	if size == 4 {
		return uint64(order.Uint32(b))
	}
	return order.Uint64(b)
}

// validVersion accepts what the Go toolchain writes: "go1.x...",
// "devel ...", printable and short.
func validVersion(v string) bool {
	if v == "" || len(v) > maxVersion || !(strings.HasPrefix(v, "go") || strings.HasPrefix(v, "devel")) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// elfSegments reads the PT_LOAD program headers from the first bytes of an
// ELF file. It returns nil when they are not within head.
func elfSegments(head []byte) (binary.ByteOrder, []segment) {
	if len(head) < 64 {
		return nil, nil
	}
	var order binary.ByteOrder
	switch head[5] {
	case 1:
		order = binary.LittleEndian
	case 2:
		order = binary.BigEndian
	default:
		return nil, nil
	}
	var phoff uint64
	var phentsize, phnum int
	is64 := head[4] == 2
	switch head[4] {
	case 1:
		phoff = uint64(order.Uint32(head[0x1c:]))
		phentsize, phnum = int(order.Uint16(head[0x2a:])), int(order.Uint16(head[0x2c:]))
	case 2:
		phoff = order.Uint64(head[0x20:])
		phentsize, phnum = int(order.Uint16(head[0x36:])), int(order.Uint16(head[0x38:]))
	default:
		return nil, nil
	}
	min := 32
	if is64 {
		min = 56
	}
	if phentsize < min || phoff > uint64(len(head)) || uint64(phnum*phentsize) > uint64(len(head))-phoff {
		return order, nil
	}
	segs := []segment{}
	for i := 0; i < phnum; i++ {
		p := head[phoff+uint64(i*phentsize):]
		if order.Uint32(p) != 1 { // PT_LOAD
			continue
		}
		var sg segment
		if is64 {
			sg = segment{off: order.Uint64(p[8:]), vaddr: order.Uint64(p[16:]), size: order.Uint64(p[32:])}
		} else {
			sg = segment{off: uint64(order.Uint32(p[4:])), vaddr: uint64(order.Uint32(p[8:])), size: uint64(order.Uint32(p[16:]))}
		}
		segs = append(segs, sg)
	}
	return order, segs
}
