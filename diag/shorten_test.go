package diag

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShorten(t *testing.T) {
	if got := Shorten("short", 10); got != "short" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("é", 200) // 400 bytes
	got := Shorten(long, 101)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…(400 bytes)") || len(got) > 101+len("…(400 bytes)") {
		t.Errorf("got %q", got)
	}
}

func FuzzShorten(f *testing.F) {
	f.Add("registry.example/app:1", 8)
	f.Add(strings.Repeat("日本", 100), 7)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := Shorten(s, n)
		if len(s) <= n && got != s {
			t.Fatalf("cut a string within the bound")
		}
		if len(s) > n {
			if len(got) > n+len(fmt.Sprintf("…(%d bytes)", len(s))) || !strings.HasPrefix(s, strings.TrimSuffix(got, fmt.Sprintf("…(%d bytes)", len(s)))) {
				t.Fatalf("Shorten(%q, %d) = %q", s, n, got)
			}
			if utf8.ValidString(s) && !utf8.ValidString(got) {
				t.Fatalf("cut inside a rune: %q", got)
			}
		}
	})
}
