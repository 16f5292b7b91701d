package image

import (
	"errors"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// Hashing a layer in its own goroutine. A layer's digest (of the stored
// blob, or of the uncompressed tar for docker-archives) costs about as much
// CPU as the walk of its tar: on two cores the two can overlap. The reader
// reads the stream in chunks into buffers of its own, hands each chunk to a
// hashing goroutine and serves the same bytes to its caller; a chunk is
// reused once both are done with it. At most hashChunks chunks are in
// flight, so a lagging hasher holds the reader back (bounded memory), and
// the digest is checked before the caller sees the end of the stream, as in
// the synchronous path.
const (
	hashChunkSize = 256 << 10
	hashChunks    = 4
)

// asyncHashing is whether layers are hashed in their own goroutine: only
// when there is more than one CPU to run it on. (A variable for tests and
// benchmarks.)
var asyncHashing = runtime.GOMAXPROCS(0) > 1

var hashChunkPool = sync.Pool{New: func() any { return &hashChunk{b: make([]byte, hashChunkSize)} }}

type hashChunk struct {
	b    []byte
	n    int
	refs atomic.Int32
	err  error // inflateAhead: what ended the stream after these bytes
}

// hashAhead is the state of a hashingReader in asynchronous mode.
type hashAhead struct {
	h      hash.Hash
	chunks chan *hashChunk // to the hasher
	free   chan *hashChunk // back from whoever released a chunk last
	done   chan struct{}   // closed when the hasher has returned
	made   int             // chunks taken from the pool
	cur    *hashChunk      // the chunk being served
	off    int             // bytes of cur served
	srcErr error           // what the source said after cur
	closed bool            // chunks is closed
}

func newHashAhead(h hash.Hash) *hashAhead {
	a := &hashAhead{h: h, chunks: make(chan *hashChunk, hashChunks), free: make(chan *hashChunk, hashChunks), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for c := range a.chunks {
			a.h.Write(c.b[:c.n])
			a.release(c)
		}
	}()
	return a
}

func (a *hashAhead) release(c *hashChunk) {
	if c.refs.Add(-1) == 0 {
		a.free <- c // never blocks: at most hashChunks chunks exist
	}
}

// next reads the next chunk from r and sends it to the hasher.
func (a *hashAhead) next(r io.Reader) {
	if a.cur != nil {
		a.release(a.cur)
		a.cur = nil
	}
	var c *hashChunk
	if a.made < hashChunks {
		c = hashChunkPool.Get().(*hashChunk)
		a.made++
	} else {
		c = <-a.free
	}
	n, err := io.ReadFull(r, c.b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	c.n = n
	c.refs.Store(2)
	a.chunks <- c
	a.cur, a.off, a.srcErr = c, 0, err
}

// sum waits for the hasher and returns the digest of everything read.
func (a *hashAhead) sum() []byte {
	a.stop()
	return a.h.Sum(nil)
}

// stop ends the hasher and gives the chunks back to the pool. The reader
// must not be read afterwards.
func (a *hashAhead) stop() {
	if a.closed {
		return
	}
	a.closed = true
	if a.cur != nil {
		a.release(a.cur)
		a.cur = nil
	}
	close(a.chunks)
	<-a.done
	for ; a.made > 0; a.made-- {
		hashChunkPool.Put(<-a.free)
	}
}

// readAhead is hashingReader.Read in asynchronous mode.
func (h *hashingReader) readAhead(p []byte) (int, error) {
	a := h.ahead
	if h.done {
		return 0, h.err // read again after the end
	}
	if a.closed {
		return 0, errors.New("read after the layer stream was closed")
	}
	if a.cur == nil || a.off == a.cur.n {
		if a.srcErr != nil {
			return 0, h.end(a.srcErr)
		}
		a.next(h.r)
	}
	n := copy(p, a.cur.b[a.off:a.cur.n])
	a.off += n
	// The end of the source, and the digest check, come with the next
	// call: a caller filling a buffer (io.ReadFull) drops an error that
	// comes with the bytes that filled it.
	return n, h.count(n)
}

// inflateAhead runs a layer's decompressor in its own goroutine: it reads
// the uncompressed stream ahead of the walk, into at most inflateChunks
// chunks, so that on two cores inflating a gzip or zstd layer (the serial
// floor of its scan) overlaps the tar walk and the catalogers instead of
// adding to them. Everything below it (the decompressor, the digest
// checks, the bomb check) runs in that goroutine only; the reader's caller
// sees the bytes and then the error that ended them, in order.
type inflateAhead struct {
	chunks chan *hashChunk // filled, in stream order
	free   chan *hashChunk
	stopc  chan struct{}
	done   chan struct{}
	cur    *hashChunk
	off    int
	made   int
	closed bool
}

// inflateChunks is how far (in hashChunkSize chunks: 1 MB) the inflater
// may run ahead of the walk. The walk is bursty (a large executable goes
// through several catalogers while the tar stream waits), and with 4
// chunks the inflater of a 100 MB gzip layer sat blocked 40-120 ms of its
// 0.85 s; but 12 or 32 chunks gained no wall time on the oci-archive of
// bench/archive.sh (median of 5: 0.96 s for 4, 12 and 32) and cost 9 and
// 21 MB of peak RSS (85, 94, 107 MB), against issue 18's 100 MB. Chunks
// are taken from the pool as the inflater gets ahead.
const inflateChunks = 4

func newInflateAhead(r io.Reader) *inflateAhead {
	a := &inflateAhead{chunks: make(chan *hashChunk, inflateChunks), free: make(chan *hashChunk, inflateChunks), stopc: make(chan struct{}), done: make(chan struct{})}
	go a.run(r)
	return a
}

func (a *inflateAhead) run(r io.Reader) {
	defer close(a.done)
	for {
		var c *hashChunk
		select {
		case c = <-a.free:
		default:
			if a.made < inflateChunks {
				c = hashChunkPool.Get().(*hashChunk)
				a.made++ // read by stop only after done is closed
				break
			}
			select {
			case c = <-a.free:
			case <-a.stopc:
				return
			}
		}
		n, err := io.ReadFull(r, c.b)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		c.n, c.err = n, err
		select {
		case a.chunks <- c:
		case <-a.stopc:
			a.free <- c
			return
		}
		if err != nil {
			return
		}
	}
}

func (a *inflateAhead) Read(p []byte) (int, error) {
	if a.closed {
		return 0, errors.New("read after the layer stream was closed")
	}
	for a.cur == nil || a.off == a.cur.n {
		if a.cur != nil {
			if a.cur.err != nil {
				return 0, a.cur.err // the end sticks
			}
			a.free <- a.cur
			a.cur = nil
		}
		a.cur, a.off = <-a.chunks, 0
	}
	n := copy(p, a.cur.b[a.off:a.cur.n])
	a.off += n
	return n, nil
}

// finished reports whether the goroutine has returned (the stream ended or
// failed).
func (a *inflateAhead) finished() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// stop ends the goroutine, waiting for the read it is in, and gives the
// chunks back to the pool.
func (a *inflateAhead) stop() {
	if a.closed {
		return
	}
	a.closed = true
	close(a.stopc)
	<-a.done
	if a.cur != nil {
		hashChunkPool.Put(a.cur)
		a.made--
	}
	for ; a.made > 0; a.made-- {
		select {
		case c := <-a.free:
			hashChunkPool.Put(c)
		case c := <-a.chunks:
			hashChunkPool.Put(c)
		}
	}
}
