package sensor

import (
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func buildQuery(t testing.TB, name string, typ dnsmessage.Type, response bool) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x5a22, RecursionDesired: true, Response: response})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestDNSQueryName(t *testing.T) {
	// The bytes busybox nslookup writes for example.com (A).
	busybox := []byte("Z\"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01")
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".example.org."
	for _, c := range []struct {
		name string
		b    []byte
		want string
		ok   bool
	}{
		{"busybox", busybox, "example.com", true},
		{"AAAA, upper case", buildQuery(t, "API.Internal.", dnsmessage.TypeAAAA, false), "api.internal", true},
		{"long", buildQuery(t, long, dnsmessage.TypeA, false), strings.TrimSuffix(long, "."), true},
		{"response", buildQuery(t, "example.com.", dnsmessage.TypeA, true), "", false},
		{"truncated", busybox[:20], "", false},
		{"root", buildQuery(t, ".", dnsmessage.TypeNS, false), "", false},
		{"not DNS", []byte("GET / HTTP/1.1\r\n\r\n"), "", false},
		{"empty", nil, "", false},
		{"name with a slash", buildQuery(t, "a/b.example.", dnsmessage.TypeA, false), "", false},
	} {
		got, ok := dnsQueryName(c.b)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: %q %v, want %q %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// FuzzDNSQueryName: any captured buffer decodes without panicking, and a
// name it gives is a usable profile entry (no separators, no NUL).
func FuzzDNSQueryName(f *testing.F) {
	f.Add([]byte("Z\"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"))
	f.Add(buildQuery(f, "db.svc.cluster.local.", dnsmessage.TypeA, false))
	f.Add(buildQuery(f, "x.", dnsmessage.TypeAAAA, true))
	f.Add([]byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}) // a compression loop
	f.Fuzz(func(t *testing.T, b []byte) {
		name, ok := dnsQueryName(b)
		if !ok {
			if name != "" {
				t.Fatalf("a name without ok: %q", name)
			}
			return
		}
		if name == "" || len(name) > 1024 || strings.ContainsAny(name, " /:\x00\n") || strings.HasSuffix(name, ".") || name != strings.ToLower(name) {
			t.Fatalf("bad name %q from %x", name, b)
		}
	})
}
