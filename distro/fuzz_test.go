package distro

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseOSRelease(f *testing.F) {
	files, _ := filepath.Glob("testdata/*_os-release")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("ID='a\\'b\"c\nVERSION_ID=\"1\\"))
	f.Add([]byte("CentOS Linux release 7.9.2009 (Core\nVERSION = 1\nPATCHLEVEL = 2\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		os, err := ParseOSRelease(in)
		if err == nil && (os.ID == "" || os.ID != strings.ToLower(os.ID)) {
			t.Fatalf("bad ID %q", os.ID)
		}
		// The release-file parsers read the same untrusted files.
		for _, parse := range []func([]byte) (any, error){
			func(b []byte) (any, error) { return ParseAlpineRelease(b) },
			func(b []byte) (any, error) { return ParseDebianVersion(b) },
			func(b []byte) (any, error) { return ParseLSBRelease(b) },
			func(b []byte) (any, error) { return ParseRedHatRelease(b) },
			func(b []byte) (any, error) { return ParseSuSERelease(b) },
		} {
			_, _ = parse(in)
		}
	})
}
