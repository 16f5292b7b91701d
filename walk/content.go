package walk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// memLimit is the largest file buffered in memory; larger ones are spooled to
// a file in the walk's temp directory.
const memLimit = 8 << 20

// Content is the content of one entry. It is an io.Reader over the entry's
// bytes; ReaderAt gives random access (buffering first if need be).
type Content struct {
	r       io.Reader
	size    int64
	tmpDir  string
	maxSize int64

	ra      io.ReaderAt
	cleanup func()
	read    bool
}

func newContent(r io.Reader, size int64, tmpDir string, maxSize int64) *Content {
	return &Content{r: io.LimitReader(r, size), size: size, tmpDir: tmpDir, maxSize: maxSize}
}

// Size is the number of bytes in the content.
func (c *Content) Size() int64 { return c.size }

// Read reads the content as a stream.
func (c *Content) Read(p []byte) (int, error) {
	c.read = true
	return c.r.Read(p)
}

// ReaderAt returns random access to the whole content. It must be called
// before the content is read as a stream.
func (c *Content) ReaderAt() (io.ReaderAt, error) {
	if c.ra != nil {
		return c.ra, nil
	}
	if c.read {
		return nil, errors.New("walk: ReaderAt called after the content was read")
	}
	if c.size > c.maxSize {
		return nil, fmt.Errorf("file of %d bytes is over the %d-byte limit for buffered files", c.size, c.maxSize)
	}
	if c.size <= memLimit {
		buf := make([]byte, c.size)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, fmt.Errorf("read file content: %w", err)
		}
		c.ra = bytes.NewReader(buf)
		c.r = bytes.NewReader(buf)
		return c.ra, nil
	}
	f, err := os.CreateTemp(c.tmpDir, "spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool large file: %w (set TMPDIR to a directory with free space)", err)
	}
	name := f.Name()
	c.cleanup = func() { f.Close(); os.Remove(name) }
	if _, err := io.Copy(f, c.r); err != nil {
		c.cleanup()
		c.cleanup = nil
		return nil, fmt.Errorf("spool large file: %w", err)
	}
	c.ra = f
	c.r = io.NewSectionReader(f, 0, c.size)
	return c.ra, nil
}

// fork returns an independent Content over the same bytes, for the second
// and later visitors of one entry. ReaderAt must have been called.
func (c *Content) fork() *Content {
	return &Content{r: io.NewSectionReader(c.ra, 0, c.size), ra: c.ra, size: c.size, tmpDir: c.tmpDir, maxSize: c.maxSize}
}

func (c *Content) close() {
	if c.cleanup != nil {
		c.cleanup()
		c.cleanup = nil
	}
}
