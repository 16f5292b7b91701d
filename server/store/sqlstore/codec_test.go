package sqlstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

func TestCodecLimits(t *testing.T) {
	c, err := newCodec(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	inv := genInventory(1, 20)
	blob, err := c.encode("inventory", inv)
	if err != nil {
		t.Fatal(err)
	}
	var got *inventory.Inventory
	if err := c.decode("inventory", blob, &got); err != nil || !reflect.DeepEqual(got, inv) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := c.encode("inventory", genInventory(1, 400)); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("encode over the limit: %v", err)
	}
	// A blob that expands past the limit (1 MiB of zeros compresses to
	// a few hundred bytes) is refused, not allocated.
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(bytes.Repeat([]byte{' '}, 1<<20), nil)
	if err := c.decode("inventory", bomb, &got); err == nil {
		t.Fatal("decoded a blob that expands over the limit")
	}
	if err := c.decode("inventory", blob[:len(blob)/2], &got); err == nil {
		t.Fatal("decoded a truncated blob")
	}
}

// FuzzDecodeBlob feeds the stored-blob decoder (zstd, then JSON into an
// inventory and a findings list) arbitrary bytes: it must return an error
// or a value, within its output limit, and never panic.
func FuzzDecodeBlob(f *testing.F) {
	c, err := newCodec(1 << 20)
	if err != nil {
		f.Fatal(err)
	}
	sc := genScan(1, 5)
	inv, _ := c.encode("inventory", sc.Inventory)
	fs, _ := c.encode("findings", sc.Findings)
	enc, _ := zstd.NewWriter(nil)
	f.Add(inv)
	f.Add(fs)
	f.Add(inv[:len(inv)-3])
	f.Add([]byte{})
	f.Add(enc.EncodeAll([]byte(`{"packages":[{"name":"a","locations":[{"layer":{"index":-1}}]}]}`), nil))
	f.Add(enc.EncodeAll([]byte(`[{"id":"X","severity":"NOPE"}]`), nil))
	f.Add(enc.EncodeAll(bytes.Repeat([]byte("["), 4096), nil))
	f.Fuzz(func(t *testing.T, blob []byte) {
		var i *inventory.Inventory
		if err := c.decode("inventory", blob, &i); err == nil && i != nil {
			if _, err := c.encode("inventory", i); err != nil && !errors.Is(err, store.ErrTooLarge) {
				t.Fatalf("re-encode a decoded inventory: %v", err)
			}
		}
		var f []finding.Finding
		_ = c.decode("findings", blob, &f)
	})
}

// TestCodecEncodesAsEncodingJSON: the blobs json-iterator writes hold
// encoding/json's document (a blob written before the switch and one
// written after read the same, and other tools may read them): the same
// bytes but for how a float's exponent is spelled (1e-07, not 1e-7), the
// same values read back by encoding/json.
func TestCodecEncodesAsEncodingJSON(t *testing.T) {
	c, err := newCodec(DefaultMaxBlob)
	if err != nil {
		t.Fatal(err)
	}
	sc := genScan(3, 50)
	sc.Findings[0].Title = "<script> & \u2028 \"quoted\" é"
	sc.Findings[0].CVSS = []finding.CVSS{{Version: "3.1", Score: 7.4}, {Version: "2", Score: 1e-7}}
	for what, v := range map[string]any{"inventory": sc.Inventory, "findings": sc.Findings, "db": sc.DB} {
		blob, err := c.encode(what, v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.dec.DecodeAll(blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var gotV, wantV any
		if err := json.Unmarshal(got, &gotV); err != nil {
			t.Fatalf("%s: encoding/json cannot read the blob: %v", what, err)
		}
		json.Unmarshal(want, &wantV)
		same := bytes.Equal(bytes.TrimSuffix(got, []byte("\n")), bytes.Replace(want, []byte("1e-7"), []byte("1e-07"), 1))
		if !same || !reflect.DeepEqual(gotV, wantV) {
			t.Errorf("%s: blob JSON differs from encoding/json's:\n%s\nwant\n%s", what, got, want)
		}
	}
}
