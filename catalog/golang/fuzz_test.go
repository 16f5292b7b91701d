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

// elfWithData is a minimal ELF64 executable (no Go build ID) of size bytes
// with one writable, non-executable PT_LOAD over [dataOff, dataOff+dataSize).
func elfWithData(size, dataOff, dataSize int) []byte {
	b := make([]byte, size)
	copy(b, "\x7fELF\x02\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 0x3e) // x86-64
	le.PutUint32(b[20:], 1)    // EV_CURRENT
	le.PutUint64(b[32:], 64)   // e_phoff
	le.PutUint16(b[52:], 64)   // e_ehsize
	le.PutUint16(b[54:], 56)   // e_phentsize
	le.PutUint16(b[56:], 1)    // e_phnum
	ph := b[64:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 6) // PF_R|PF_W
	le.PutUint64(ph[8:], uint64(dataOff))
	le.PutUint64(ph[16:], 0x400000+uint64(dataOff))
	le.PutUint64(ph[24:], 0x400000+uint64(dataOff))
	le.PutUint64(ph[32:], uint64(dataSize))
	le.PutUint64(ph[40:], uint64(dataSize))
	le.PutUint64(ph[48:], 0x1000)
	return b
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
	// A non-Go ELF with a blob in its data segment (found) and one after
	// it (not looked at).
	withData := elfWithData(3*4096, 4096, 4096)
	copy(withData[4096+512:], blob("go1.22.3", mod))
	f.Add(withData)
	after := elfWithData(3*4096, 4096, 4096)
	copy(after[2*4096:], blob("go1.22.3", mod))
	f.Add(after)
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
