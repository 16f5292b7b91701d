package sqlstore

import (
	"bytes"
	"fmt"
	"sync"

	jsoniter "github.com/json-iterator/go"
	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// A blob is one zstd frame holding JSON (an inventory, a findings list).
// The frame declares its content size; the decoder refuses frames over the
// limit before allocating, and output over the limit when the size is not
// declared.

// jsonDecode writes the blobs and reads them back: the
// standard-library-compatible json-iterator decodes them in about 40% of
// encoding/json's CPU time (BenchmarkDecodeScan), which is most of what
// EachLatest costs, and encodes them in less too. The round-trip tests and
// FuzzDecodeBlob hold it to encoding/json's results.
var jsonDecode = jsoniter.ConfigCompatibleWithStandardLibrary

type codec struct {
	max int
	enc *zstd.Encoder
	dec *zstd.Decoder
	buf sync.Pool // *bytes.Buffer for encoding
}

func newCodec(limit int) (*codec, error) {
	// SpeedFastest: at SpeedDefault compressing an upload's two blobs was
	// 7% of its CPU (BenchmarkUpload), for blobs about 10% smaller.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	// The encoder's window is 8 MiB at SpeedDefault; a larger one is not ours.
	window := uint64(max(zstd.MinWindowSize, min(limit, 32<<20)))
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(uint64(limit)),
		zstd.WithDecoderMaxWindow(window))
	if err != nil {
		return nil, err
	}
	return &codec{max: limit, enc: enc, dec: dec, buf: sync.Pool{New: func() any { return new(bytes.Buffer) }}}, nil
}

// encode writes v as JSON, compressed; what names the value for errors.
func (c *codec) encode(what string, v any) ([]byte, error) {
	b := c.buf.Get().(*bytes.Buffer)
	defer c.buf.Put(b)
	b.Reset()
	lw := &limitWriter{w: b, n: c.max}
	if err := jsonDecode.NewEncoder(lw).Encode(v); err != nil {
		if lw.over {
			return nil, fmt.Errorf("%s: %w: its JSON is over the store's limit of %d bytes", what, store.ErrTooLarge, c.max)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return c.enc.EncodeAll(b.Bytes(), make([]byte, 0, b.Len()/4+64)), nil
}

// compress keeps JSON the caller encoded (store.Scan.Encoded).
func (c *codec) compress(what string, js []byte) ([]byte, error) {
	if len(js) > c.max {
		return nil, fmt.Errorf("%s: %w: its JSON is over the store's limit of %d bytes", what, store.ErrTooLarge, c.max)
	}
	return c.enc.EncodeAll(js, make([]byte, 0, len(js)/4+64)), nil
}

// decode reads a blob into v.
func (c *codec) decode(what string, blob []byte, v any) error {
	raw, err := c.dec.DecodeAll(blob, nil)
	if err != nil {
		return fmt.Errorf("%s: decompress: %w", what, err)
	}
	if len(raw) > c.max {
		return fmt.Errorf("%s: %w: over %d bytes", what, store.ErrTooLarge, c.max)
	}
	if err := jsonDecode.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

type limitWriter struct {
	w    *bytes.Buffer
	n    int
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		l.over = true
		return 0, store.ErrTooLarge
	}
	l.n -= len(p)
	return l.w.Write(p)
}
