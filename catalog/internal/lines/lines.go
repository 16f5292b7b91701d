// Package lines reads text databases line by line with bounded memory, for
// the catalogers of line-oriented package databases (apk, dpkg).
package lines

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Reader yields lines without their end-of-line bytes (LF or CRLF),
// skipping lines longer than its maximum so that memory stays bounded.
type Reader struct {
	br  *bufio.Reader
	buf []byte
	max int
	// skipped counts the over-long lines; unterminated is set when the
	// last line had no end-of-line.
	skipped      int
	unterminated bool
}

// Skipped is the number of lines skipped for being longer than the maximum.
func (l *Reader) Skipped() int { return l.skipped }

// Unterminated reports whether the input ended without an end-of-line: its
// last line (returned, or skipped when over-long) may be cut short.
func (l *Reader) Unterminated() bool { return l.unterminated }

// NewReader reads r; lines longer than max bytes are skipped whole.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next line, valid until the following call, or io.EOF.
func (l *Reader) Next() ([]byte, error) {
	l.buf = l.buf[:0]
	tooLong := false
	for {
		chunk, err := l.br.ReadSlice('\n')
		if !tooLong {
			if len(l.buf)+len(chunk) > l.max+2 { // +2: room for CRLF
				tooLong, l.buf = true, l.buf[:0]
				l.skipped++
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == nil:
			if tooLong {
				tooLong = false // skip the over-long line, read the next
				continue
			}
			return trimEOL(l.buf), nil
		case errors.Is(err, io.EOF):
			if len(chunk) > 0 || len(l.buf) > 0 || tooLong {
				l.unterminated = true
			}
			if tooLong || len(l.buf) == 0 {
				return nil, io.EOF
			}
			return trimEOL(l.buf), nil // a last line without a newline
		default:
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}
