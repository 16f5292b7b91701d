package role

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Role
		ok   bool
	}{
		{"read", Read, true}, {" Scan ", Scan, true}, {"ADMIN", Admin, true},
		{"none", None, false}, {"", None, false}, {"root", None, false},
	} {
		got, err := Parse(c.in)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("Parse(%q) = %v, %v", c.in, got, err)
		}
		if c.ok && got.String() != names[got] {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if s := Role(9).String(); s != "role(9)" {
		t.Errorf("out of range: %q", s)
	}
}
