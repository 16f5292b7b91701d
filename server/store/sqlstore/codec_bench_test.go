package sqlstore

import (
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// BenchmarkDecodeScan decodes one stored 300-package scan (inventory and
// findings): EachLatest's cost per image.
func BenchmarkDecodeScan(b *testing.B) {
	c, err := newCodec(DefaultMaxBlob)
	if err != nil {
		b.Fatal(err)
	}
	sc := genScan(1, 300)
	inv, _ := c.encode("inventory", sc.Inventory)
	fs, _ := c.encode("findings", sc.Findings)
	b.ReportMetric(float64(len(inv)+len(fs)), "stored-bytes")
	for b.Loop() {
		var i *inventory.Inventory
		var f []finding.Finding
		if err := c.decode("inventory", inv, &i); err != nil {
			b.Fatal(err)
		}
		if err := c.decode("findings", fs, &f); err != nil {
			b.Fatal(err)
		}
	}
}
