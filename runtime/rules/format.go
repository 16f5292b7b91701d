package rules

import (
	"errors"
	"strconv"
	"strings"
)

// format is a compiled rule output: literal text and %field tokens.
type format struct {
	parts []formatPart
	// fields are the distinct field tokens, in order, for output_fields.
	fields []formatPart
}

type formatPart struct {
	lit   string
	token string // the field as written, e.g. proc.aname[2]; empty for literals
	g     *getter
	// unsupported fields are known to Falco but not supplied: always <NA>.
	unsupported bool
}

// compileFormat parses Falco's output syntax: %field or %field[arg], with
// the longest field name that forms a valid token.
func compileFormat(s string) (*format, error) {
	f := &format{}
	var lit strings.Builder
	seen := map[string]bool{}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		j := i + 1
		// Falco accepts a field-width prefix (%20proc.name); skip it.
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n := fieldNameLen(s[j:])
		if n == 0 {
			tok := s[j:]
			if k := strings.IndexAny(tok, " \t\n"); k >= 0 {
				tok = tok[:k]
			}
			return nil, &UnknownFieldError{Field: tok}
		}
		fe := &FieldExpr{Name: s[j : j+n]}
		k := j + n
		if k < len(s) && s[k] == '[' {
			end := strings.IndexByte(s[k:], ']')
			if end < 0 {
				return nil, errors.New("unterminated field argument in output: " + s[j:])
			}
			fe.Arg, fe.HasArg = s[k+1:k+end], true
			k += end + 1
		}
		if lit.Len() > 0 {
			f.parts = append(f.parts, formatPart{lit: lit.String()})
			lit.Reset()
		}
		p := formatPart{token: s[j:k]}
		if _, _, _, err := lookupField(fe); err != nil {
			var se *UnsupportedFieldError
			var ue *UnknownFieldError
			switch {
			case errors.As(err, &se):
				p.unsupported = true
			case errors.As(err, &ue):
				return nil, &UnknownFieldError{Field: p.token}
			default:
				return nil, err
			}
		} else {
			g, err := compileField(fe)
			if err != nil {
				return nil, err
			}
			p.g = &g
		}
		f.parts = append(f.parts, p)
		if !seen[p.token] {
			seen[p.token] = true
			f.fields = append(f.fields, p)
		}
		i = k
	}
	if lit.Len() > 0 {
		f.parts = append(f.parts, formatPart{lit: lit.String()})
	}
	return f, nil
}

// NA is what Falco prints for a field with no value.
const NA = "<NA>"

// render returns the field's value as text and as a JSON value (string,
// number, bool, or nil when absent).
func (p *formatPart) render(c *evalCtx) (string, any) {
	if p.unsupported || p.g == nil {
		return NA, nil
	}
	v, ok := p.g.get(c)
	if !ok {
		return NA, nil
	}
	switch p.g.typ {
	case tNum:
		return strconv.FormatInt(v.n, 10), v.n
	case tBool:
		if v.n != 0 {
			return "true", true
		}
		return "false", false
	case tIP:
		s := v.ip.String()
		return s, s
	}
	s := strings.Clone(v.s)
	if s == "" {
		return "", ""
	}
	return s, s
}

func (f *format) render(c *evalCtx) (string, map[string]any) {
	var b strings.Builder
	fields := make(map[string]any, len(f.fields))
	for i := range f.parts {
		p := &f.parts[i]
		if p.token == "" {
			b.WriteString(p.lit)
			continue
		}
		s, j := p.render(c)
		b.WriteString(s)
		fields[p.token] = j
	}
	return b.String(), fields
}
