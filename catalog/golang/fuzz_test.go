package golang

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// blob builds a Go 1.18+ build-info blob as the linker writes it.
func blob(vers, mod string) []byte {
	var b bytes.Buffer
	b.Write(buildInfoMagic)
	b.Write([]byte{8, 2})
	b.Write(make([]byte, 16))
	for _, s := range []string{vers, mod} {
		b.Write(binary.AppendUvarint(nil, uint64(len(s))))
		b.WriteString(s)
	}
	return b.Bytes()
}

func FuzzReadBuildInfo(f *testing.F) {
	mod := string(infoStart) + "path\texample.com/x\nmod\texample.com/x\t(devel)\t\ndep\tgithub.com/a/b\tv1.0.0\th1:x=\n=>\t./b\t(devel)\t\n" + string(infoEnd)
	elf := make([]byte, 4096)
	copy(elf, "\x7fELF\x02\x01\x01")
	f.Add(append(bytes.Clone(elf), blob("go1.22.3", mod)...))
	f.Add(append(bytes.Clone(elf), blob("go1.22.3", "")...))
	// A pre-1.18 header with pointers nowhere.
	old := append(bytes.Clone(elf), buildInfoMagic...)
	old = append(old, 8, 0)
	old = append(old, make([]byte, 16)...)
	f.Add(old)
	// A damaged dep line, and a Go build ID note without a blob.
	f.Add(append(bytes.Clone(elf), blob("go1.22.3", strings.Replace(mod, "dep\t", "dXp\t", 1))...))
	f.Add(append(append(bytes.Clone(elf[:64]), "\x04\x00\x00\x00Go\x00\x00"...), elf[76:]...))
	f.Add([]byte("MZ"))
	f.Add([]byte("#!/bin/sh\n"))
	// Seeds from the go.mod fixtures too: any bytes must be safe.
	files, _ := filepath.Glob("testdata/gomod/*.mod")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(append(bytes.Clone(elf), b...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		bi, err := ReadBuildInfo(bytes.NewReader(in))
		var me *MalformedError
		if bi != nil && err != nil && !errors.As(err, &me) {
			t.Fatalf("build information with an error that is not a MalformedError: %v", err)
		}
		if bi != nil {
			for _, p := range Packages(bi) {
				if p.Name == "" || p.PURL == "" {
					t.Fatalf("bad package %+v", p)
				}
			}
		}
	})
}

func FuzzParseModFile(f *testing.F) {
	files, _ := filepath.Glob("testdata/gomod/*.mod")
	files = append(files, "testdata/hello/go.mod")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := ParseModFile("go.mod", in)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.PURL == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}
