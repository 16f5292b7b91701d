package rust

import (
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
)

// Reading a binary as a stream. The Collector feeds every executable of an
// image to the Go and the Rust binary catalogers at once, in one sequential
// read, instead of buffering each executable for random access. An ELF
// file's dependency section is not loaded at run time (cargo-auditable
// writes it as a non-allocated section, like .symtab): it lies, with the
// section header table, after the loaded segments, whose bounds the program
// headers at the front of the file give. So the reader keeps the front page
// and the tail, and skips the code and data in between unread.
const (
	// headSize is read first: the ELF header, the program headers and (in
	// a Go binary) the Go build-ID note are in the first page.
	headSize = 4 << 10
	// maxHeadSize bounds the program header table; real ones take a few
	// hundred bytes.
	maxHeadSize = 64 << 10
	// MaxTailSize bounds what is kept of an ELF file after its loaded
	// segments (the symbol and string tables, debug information), and of a
	// PE or Mach-O file, whose sections need random access, as a whole.
	MaxTailSize = 256 << 20
	// tailMemLimit: kept bytes up to this many stay in memory; the rest is
	// spooled to a file in the scan's temp directory.
	tailMemLimit = 4 << 20
	// skipChunk is the buffer for the bytes skipped unread.
	skipChunk = 64 << 10
)

// ErrLoadedSection is returned (wrapped) when a streamed ELF file keeps its
// section header table or its dependency section inside its loaded
// segments, which the stream has passed by the time the section table is
// read. cargo-auditable binaries do not; the predecessor rust-audit put its
// section in loaded, read-only data.
var ErrLoadedSection = errors.New("section inside the loaded segments, which a streamed read skips")

// ReadDependenciesStream reads the dependency list of an ELF, PE or Mach-O
// executable from a stream of size bytes (or, when size is 0 or less, up to
// the end of the stream), front to back, once. It reads no further than it
// needs: Go binaries and files that are not executables stop after the
// first page. An ELF file's loaded segments are skipped unread; what
// follows is kept in memory up to a few megabytes, beyond that in a file in
// tempDir ("" for the system's), and at most MaxTailSize bytes.
//
// It returns nil, without error, where ReadDependencies does: other files,
// Go binaries and executables built without cargo-auditable.
func ReadDependenciesStream(r io.Reader, size int64, tempDir string) (*VersionInfo, error) {
	head := make([]byte, headSize)
	if size > 0 && size < headSize {
		head = head[:size]
	}
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read: %w", err)
	}
	head = head[:n]
	if n < 8 {
		return nil, nil
	}
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return readELFStream(r, head, size, tempDir)
	case bytes.HasPrefix(head, []byte("MZ")):
		return readWholeStream(r, head, size, tempDir, peSection)
	case bytes.HasPrefix(head, []byte("\xfe\xed\xfa")), bytes.HasPrefix(head[1:], []byte("\xfa\xed\xfe")):
		return readWholeStream(r, head, size, tempDir, machoSection)
	}
	return nil, nil
}

// readWholeStream keeps the whole file (PE and Mach-O need random access to
// their sections; they are rare in Linux images) and reads it as
// ReadDependencies does.
func readWholeStream(r io.Reader, head []byte, size int64, tempDir string, section func(io.ReaderAt) (io.Reader, error)) (*VersionInfo, error) {
	if size > MaxTailSize {
		return nil, fmt.Errorf("executable of %d bytes is over the %d-byte limit for PE and Mach-O files read from a stream", size, MaxTailSize)
	}
	want := int64(-1)
	if size > 0 {
		want = size - int64(len(head))
	}
	st := &store{tempDir: tempDir}
	defer st.close()
	n, err := st.fill(r, want)
	if err != nil {
		return nil, err
	}
	if want >= 0 && n < want {
		return nil, fmt.Errorf("file ends %d bytes short of its stated size: %w", want-n, io.ErrUnexpectedEOF)
	}
	sp := &sparse{head: head, extents: []extent{{off: int64(len(head)), size: n}}, st: st, end: int64(len(head)) + n}
	return decodeSection(section(sp))
}

func readELFStream(r io.Reader, head []byte, size int64, tempDir string) (*VersionInfo, error) {
	lay, ok := elfHead(head)
	if !ok {
		return nil, nil // not an ELF file elf.NewFile would read either
	}
	if lay.phEnd > uint64(len(head)) {
		if lay.phEnd > maxHeadSize || (size > 0 && lay.phEnd > uint64(size)) {
			return nil, nil
		}
		more := make([]byte, int(lay.phEnd)-len(head))
		if _, err := io.ReadFull(r, more); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, nil
			}
			return nil, fmt.Errorf("read: %w", err)
		}
		head = append(head, more...)
	}
	progs := lay.progs(head)
	// A Go binary (the Go cataloger's) has no crates of its own; its
	// build-ID note is in the first page.
	if goNote(head, lay.order, progs) {
		return nil, nil
	}
	// Keep what no loaded segment covers: the section table and the
	// sections not loaded at run time are there (usually all at the end;
	// patchelf, as auditwheel runs it, moves the section table between
	// segments).
	holes, keep, ok := uncovered(progs, uint64(len(head)), size)
	if !ok {
		return nil, nil // segments past the end of the file: not an executable to read
	}
	if keep > MaxTailSize {
		return nil, fmt.Errorf("the %d bytes outside the loaded segments (symbols, debug information) are over the %d-byte limit for the dependency section's search", keep, MaxTailSize)
	}
	st := &store{tempDir: tempDir}
	defer st.close()
	sp := &sparse{head: head, st: st}
	pos := int64(len(head))
	for _, h := range holes {
		if err := skip(r, h.off-pos); err != nil {
			if errors.Is(err, io.EOF) && size <= 0 {
				return nil, nil // a stream of unknown size that ends in the segments
			}
			return nil, err
		}
		n, err := st.fill(r, h.size)
		if err != nil {
			return nil, err
		}
		sp.extents = append(sp.extents, extent{off: h.off, size: n, at: st.size - n})
		if h.size >= 0 && n < h.size {
			if size > 0 {
				return nil, fmt.Errorf("file ends %d bytes short of its stated size: %w", h.size-n, io.ErrUnexpectedEOF)
			}
			break
		}
		pos = h.off + n
	}
	sp.end = pos
	if size > 0 {
		sp.end = size
	}
	sec, err := elfSection(sp)
	if sp.gap {
		return nil, fmt.Errorf("ELF %w", ErrLoadedSection)
	}
	v, err := decodeSection(sec, err)
	if sp.gap {
		return nil, fmt.Errorf("ELF dependency %w", ErrLoadedSection)
	}
	return v, err
}

// hole is a range of the file that no loaded segment covers; size -1 runs
// to the end of a stream of unknown size.
type hole struct{ off, size int64 }

// uncovered returns the ranges after the head that no PT_LOAD segment
// covers, in file order, and how many bytes they hold (for a known size).
func uncovered(progs []elf.ProgHeader, headLen uint64, size int64) ([]hole, int64, bool) {
	type span struct{ a, b uint64 }
	var spans []span
	for _, p := range progs {
		if p.Type != elf.PT_LOAD || p.Filesz == 0 {
			continue
		}
		end := p.Off + p.Filesz
		if end < p.Off || (size > 0 && end > uint64(size)) || end > 1<<62 {
			return nil, 0, false
		}
		spans = append(spans, span{p.Off, end})
	}
	slices.SortFunc(spans, func(x, y span) int { return cmp.Compare(x.a, y.a) })
	var holes []hole
	var total int64
	pos := headLen
	for _, s := range spans {
		if s.a > pos {
			holes = append(holes, hole{int64(pos), int64(s.a - pos)})
			total += int64(s.a - pos)
		}
		pos = max(pos, s.b)
	}
	switch {
	case size <= 0:
		holes = append(holes, hole{int64(pos), -1})
	case uint64(size) > pos:
		holes = append(holes, hole{int64(pos), size - int64(pos)})
		total += size - int64(pos)
	}
	return holes, total, true
}

// elfLayout is what the ELF header says about the program headers.
type elfLayout struct {
	order                     binary.ByteOrder
	class                     elf.Class
	phoff, phEnd              uint64
	phentsize, phnum, minPhdr uint64
}

// elfHead reads the ELF header (debug/elf's own types) from the first page.
func elfHead(head []byte) (elfLayout, bool) {
	var l elfLayout
	if len(head) < elf.EI_NIDENT {
		return l, false
	}
	switch elf.Data(head[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		l.order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		l.order = binary.BigEndian
	default:
		return l, false
	}
	l.class = elf.Class(head[elf.EI_CLASS])
	switch l.class {
	case elf.ELFCLASS64:
		var h elf.Header64
		if binary.Read(bytes.NewReader(head), l.order, &h) != nil {
			return l, false
		}
		l.phoff, l.phentsize, l.phnum, l.minPhdr = h.Phoff, uint64(h.Phentsize), uint64(h.Phnum), uint64(binary.Size(elf.Prog64{}))
	case elf.ELFCLASS32:
		var h elf.Header32
		if binary.Read(bytes.NewReader(head), l.order, &h) != nil {
			return l, false
		}
		l.phoff, l.phentsize, l.phnum, l.minPhdr = uint64(h.Phoff), uint64(h.Phentsize), uint64(h.Phnum), uint64(binary.Size(elf.Prog32{}))
	default:
		return l, false
	}
	if l.phnum > 0 && l.phentsize < l.minPhdr {
		return l, false
	}
	if l.phoff > maxHeadSize {
		return l, false
	}
	l.phEnd = l.phoff + l.phnum*l.phentsize
	return l, true
}

// progs decodes the program headers; head holds them (phEnd <= len(head)).
func (l elfLayout) progs(head []byte) []elf.ProgHeader {
	out := make([]elf.ProgHeader, 0, l.phnum)
	for i := uint64(0); i < l.phnum; i++ {
		b := head[l.phoff+i*l.phentsize:]
		if l.class == elf.ELFCLASS64 {
			out = append(out, elf.ProgHeader{Type: elf.ProgType(l.order.Uint32(b)), Off: l.order.Uint64(b[8:]), Filesz: l.order.Uint64(b[32:])})
		} else {
			out = append(out, elf.ProgHeader{Type: elf.ProgType(l.order.Uint32(b)), Off: uint64(l.order.Uint32(b[4:])), Filesz: uint64(l.order.Uint32(b[16:]))})
		}
	}
	return out
}

// goNote reports whether a note segment in the first page has a note named
// "Go" (the Go linker's build ID and, in older toolchains, package notes).
func goNote(head []byte, order binary.ByteOrder, progs []elf.ProgHeader) bool {
	for _, p := range progs {
		if p.Type != elf.PT_NOTE || p.Off >= uint64(len(head)) || p.Filesz > uint64(len(head))-p.Off {
			continue
		}
		b := head[p.Off : p.Off+p.Filesz]
		for len(b) >= 12 {
			namesz, descsz := uint64(order.Uint32(b)), uint64(order.Uint32(b[4:]))
			b = b[12:]
			nameLen, descLen := (namesz+3)&^3, (descsz+3)&^3
			if nameLen+descLen > uint64(len(b)) {
				break
			}
			if string(bytes.TrimRight(b[:namesz], "\x00")) == "Go" {
				return true
			}
			b = b[nameLen+descLen:]
		}
	}
	return false
}

// skip reads n bytes and drops them.
// skipPool holds the buffers skip reads into: every executable of an image
// passes through skip, and a buffer each was most of what the walk
// allocated.
var skipPool = sync.Pool{New: func() any { b := make([]byte, skipChunk); return &b }}

func skip(r io.Reader, n int64) error {
	if n <= 0 {
		return nil
	}
	bp := skipPool.Get().(*[]byte)
	defer skipPool.Put(bp)
	buf := *bp
	for n > 0 {
		m, err := r.Read(buf[:min(n, int64(len(buf)))])
		n -= int64(m)
		if n > 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("file ends %d bytes before the end of its loaded segments: %w", n, io.EOF)
			}
			return fmt.Errorf("read: %w", err)
		}
	}
	return nil
}

// store holds the kept bytes, in memory up to tailMemLimit, then in a temp
// file.
type store struct {
	tempDir string
	mem     []byte
	file    *os.File
	size    int64
}

// fill appends up to n bytes of r (n < 0: to the end of r, failing past
// MaxTailSize) and returns how many it read.
func (s *store) fill(r io.Reader, n int64) (int64, error) {
	limit := n
	if n < 0 {
		limit = MaxTailSize + 1 - s.size
	}
	m, err := io.Copy(s, io.LimitReader(r, limit))
	if err != nil {
		return m, fmt.Errorf("read: %w", err)
	}
	if n < 0 && s.size > MaxTailSize {
		return m, fmt.Errorf("the end of the binary is over the %d-byte limit for the dependency section's search", MaxTailSize)
	}
	return m, nil
}

func (s *store) Write(p []byte) (int, error) {
	if s.file == nil && int64(len(s.mem)+len(p)) > tailMemLimit {
		f, err := os.CreateTemp(s.tempDir, "rust-binary-*")
		if err != nil {
			return 0, fmt.Errorf("spool the end of the binary: %w (set TMPDIR to a directory with free space)", err)
		}
		s.file = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, fmt.Errorf("spool the end of the binary: %w", err)
		}
		s.mem = nil
	}
	if s.file != nil {
		n, err := s.file.Write(p)
		s.size += int64(n)
		if err != nil {
			return n, fmt.Errorf("spool the end of the binary: %w", err)
		}
		return n, nil
	}
	s.mem = append(s.mem, p...)
	s.size += int64(len(p))
	return len(p), nil
}

func (s *store) ReadAt(p []byte, off int64) (int, error) {
	if s.file != nil {
		return s.file.ReadAt(p, off)
	}
	if off >= int64(len(s.mem)) {
		return 0, io.EOF
	}
	n := copy(p, s.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *store) close() {
	if s.file != nil {
		name := s.file.Name()
		s.file.Close()
		os.Remove(name)
		s.file = nil
	}
}

// extent is a kept range of the file: size bytes from file offset off, at
// offset at in the store.
type extent struct{ off, size, at int64 }

// sparse is a file of end bytes of which only the head and some extents
// were kept. A read elsewhere before end sets gap: the file needed bytes the
// stream skipped.
type sparse struct {
	head    []byte
	extents []extent
	st      *store
	end     int64
	gap     bool
}

var errSkipped = errors.New("bytes skipped by the streamed read")

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	if off < int64(len(s.head)) {
		n = copy(p, s.head[off:])
		off += int64(n)
	}
	for n < len(p) {
		if off >= s.end {
			return n, io.EOF
		}
		i := sort.Search(len(s.extents), func(i int) bool { return s.extents[i].off+s.extents[i].size > off })
		if i == len(s.extents) || off < s.extents[i].off {
			s.gap = true
			return n, errSkipped
		}
		e := s.extents[i]
		want := min(int64(len(p)-n), e.off+e.size-off)
		m, err := s.st.ReadAt(p[n:n+int(want)], e.at+off-e.off)
		n += m
		off += int64(m)
		if err != nil && m < int(want) {
			return n, err
		}
	}
	return n, nil
}
