package walk

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// Each kind of walk warning carries its code, the layer and, when the
// entry has a usable name, its path in the image.
func TestWalkDiagnosticCodes(t *testing.T) {
	many := make([]tarEntry, maxWarningsPerLayer+1)
	for i := range many {
		many[i] = file(fmt.Sprintf("/abs%d", i), "")
	}
	cases := []struct {
		name    string
		entries []tarEntry
		code    diag.Code
		path    string
	}{
		{"absolute", []tarEntry{file("/etc/passwd", "root")}, diag.WalkAbsoluteName, "/etc/passwd"},
		{"climbing", []tarEntry{file("a/../../etc/shadow", "x")}, diag.WalkClimbingName, "/etc/shadow"},
		{"symlink out", []tarEntry{symlink("escape", "../../../etc")}, diag.WalkSymlinkEscape, "/escape"},
		{"hard link renamed", []tarEntry{file("etc/x", "x"), hardlink("y", "../etc/x")}, diag.WalkHardLinkRenamed, "/y"},
		{"hard link dangling", []tarEntry{hardlink("bad", "missing")}, diag.WalkHardLinkDangling, "/bad"},
		{"orphan whiteout", []tarEntry{file("dir/.wh.", "")}, diag.WalkOrphanWhiteout, "/dir/.wh."},
		{"unknown type", []tarEntry{{name: "odd", typ: 'Z'}}, diag.WalkUnknownType, "/odd"},
		{"long link", []tarEntry{symlink("l", strings.Repeat("a", maxPathLen+1))}, diag.WalkLongLink, "/l"},
		{"too many warnings", many, diag.WalkTruncated, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			layers := layersOf(makeTar(t, c.entries...))
			layers[0].Info.Digest = "sha256:feed"
			// the dangling hard link is only looked at when a visitor wants it
			rec := &recorder{want: func(*Entry) bool { return true }}
			tr, err := Walk(context.Background(), layers, []Visitor{rec}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ds := tr.Diagnostics()
			if got := tr.Warnings(); strings.Join(got, "\n") != strings.Join(diag.Messages(ds), "\n") {
				t.Fatalf("Warnings %q are not the diagnostics' messages %q", got, diag.Messages(ds))
			}
			for _, d := range ds {
				if d.Code != c.code {
					continue
				}
				if d.Severity != diag.Warning || d.Location == nil || d.Location.Layer != "layer 0 (sha256:feed)" || d.Location.Path != c.path {
					t.Errorf("%s: %+v %+v", c.code, d, d.Location)
				}
				return
			}
			t.Errorf("no %s among %+v", c.code, ds)
		})
	}
}
