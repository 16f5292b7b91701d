package html

import (
	"bytes"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"

	"github.com/bulkhead-sec/bulkhead/report"
)

// elements counts the elements of a document by tag, and the attributes
// named on*, as a browser's parser builds them.
func elements(t *testing.T, doc []byte) (map[string]int, int) {
	t.Helper()
	root, err := xhtml.Parse(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	tags, handlers := map[string]int{}, 0
	var walk func(n *xhtml.Node)
	walk = func(n *xhtml.Node) {
		if n.Type == xhtml.ElementNode {
			tags[n.Data]++
			for _, a := range n.Attr {
				if strings.HasPrefix(strings.ToLower(a.Key), "on") {
					handlers++
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	return tags, handlers
}

func withText(s string) *report.Result {
	s = "x" + s // never empty: an empty OS name leaves its row out
	r := sample(3, 3, false)
	inv := r.Inventory
	inv.Target.Name, inv.OS.PrettyName, inv.Target.Layers[1].CreatedBy = s, s, s
	for i := range inv.Packages {
		inv.Packages[i].Name, inv.Packages[i].Version = s, s
		inv.Packages[i].Locations[0].Path = s
	}
	for i := range r.Findings {
		r.Findings[i].Title, r.Findings[i].ID = s, s
		if r.Findings[i].Package != nil {
			r.Findings[i].Package.Name = s
		}
	}
	r.Warnings = []string{s}
	return r
}

// FuzzEscaping: whatever text an image puts in its names, versions,
// created_by lines and finding texts, the report parses (as a browser
// parses it) to the same elements as with a plain word: no markup, no
// event handler, no script gets in.
func FuzzEscaping(f *testing.F) {
	for _, s := range []string{hostile, "<img src=x onerror=alert(1)>", "</style><script>alert(1)</script>", "]]><!--", "\x00<svg/onload=alert(1)>", "</textarea></title><a href=javascript:alert(1)>", "&lt;b&gt;"} {
		f.Add(s)
	}
	var plain bytes.Buffer
	if err := Result(&plain, withText("word"), Options{Now: fixedNow}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := elements(t, plain.Bytes())
		var b bytes.Buffer
		if err := Result(&b, withText(s), Options{Now: fixedNow}); err != nil {
			t.Fatal(err)
		}
		got, handlers := elements(t, b.Bytes())
		if handlers != 0 {
			t.Fatalf("%q: %d on* attributes in the report", s, handlers)
		}
		for tag, n := range got {
			if want[tag] != n {
				t.Fatalf("%q: %d <%s> elements, %d with a plain word", s, n, tag, want[tag])
			}
		}
		for tag, n := range want {
			if got[tag] != n {
				t.Fatalf("%q: %d <%s> elements, %d with a plain word", s, got[tag], tag, n)
			}
		}
	})
}
