package catalog

import (
	"errors"
	"fmt"
	"io"
)

// TooLargeError says that a file is larger than a cataloger reads.
type TooLargeError struct {
	// Path names the file, when the reader knows it (the Generic
	// cataloger sets it).
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	what := "the input"
	if e.Path != "" {
		what = e.Path
	}
	return fmt.Sprintf("%s is over the %d-byte limit, far larger than any real one: none of its packages are reported (corrupt or hostile input; if the file is genuine, report it to bulkhead: the limit is built in)", what, e.Limit)
}

// LimitReader returns a reader of at most max bytes of r. Unlike
// io.LimitReader it does not stop quietly at the limit: a read past it
// fails with a *TooLargeError, so that a parser never takes a truncated
// file for a whole one.
func LimitReader(r io.Reader, max int64) io.Reader {
	return &limitedReader{r: r, left: max, max: max}
}

type limitedReader struct {
	r         io.Reader
	left, max int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if l.left > 0 {
		if int64(len(p)) > l.left {
			p = p[:l.left]
		}
		n, err := l.r.Read(p)
		l.left -= int64(n)
		return n, err
	}
	// At the limit: the file is whole only if nothing follows.
	var b [1]byte
	for {
		n, err := l.r.Read(b[:])
		if n > 0 {
			return 0, &TooLargeError{Limit: l.max}
		}
		if err != nil {
			return 0, err
		}
	}
}

// ReadLimited reads all of r, at most max bytes: past that it fails with a
// *TooLargeError. Other read errors are wrapped ("read: ...").
func ReadLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(LimitReader(r, max))
	if err != nil {
		var tl *TooLargeError
		if errors.As(err, &tl) {
			return nil, err
		}
		return nil, fmt.Errorf("read: %w", err)
	}
	return b, nil
}
