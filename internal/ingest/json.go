package ingest

// A small JSON scanner for the payload forms Decode accepts. encoding/json
// into a map[string]json.RawMessage costs a map, a string per key and
// reflection for every message; this scanner checks the full JSON grammar
// (RFC 8259) while walking the bytes once and allocates nothing itself.
// Values are returned as spans of the input; strings with escapes are
// decoded by encoding/json (see stringValue) so its rules apply exactly.

type jsonKind uint8

const (
	kindNull jsonKind = iota + 1
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

// String reads well inside error messages: "value is a string, want ...".
func (k jsonKind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindArray:
		return "an array"
	case kindObject:
		return "an object"
	}
	return "invalid"
}

type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) unexpected() *RejectError {
	if p.i >= len(p.b) {
		return reject(ReasonMalformedJSON, "unexpected end of JSON")
	}
	return reject(ReasonMalformedJSON, "invalid character %q at offset %d", p.b[p.i], p.i)
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// openObject consumes the '{' that starts an object.
func (p *jsonParser) openObject() *RejectError {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return p.unexpected()
	}
	p.i++
	return nil
}

// member reads the key of member n (counting from 0) of the object being
// read and leaves p at the start of its value, or consumes the closing '}'
// and reports done. The key is b[ks:ke], without quotes; esc reports
// whether it contains escapes.
func (p *jsonParser) member(n int) (ks, ke int, esc, done bool, err *RejectError) {
	p.ws()
	if p.i >= len(p.b) {
		return 0, 0, false, false, p.unexpected()
	}
	if p.b[p.i] == '}' {
		p.i++
		return 0, 0, false, true, nil
	}
	if n > 0 {
		if p.b[p.i] != ',' {
			return 0, 0, false, false, p.unexpected()
		}
		p.i++
		p.ws()
	}
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return 0, 0, false, false, p.unexpected()
	}
	ks, ke, esc, err = p.str()
	if err != nil {
		return 0, 0, false, false, err
	}
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != ':' {
		return 0, 0, false, false, p.unexpected()
	}
	p.i++
	p.ws()
	return ks, ke, esc, false, nil
}

// end checks that only whitespace follows the top-level value.
func (p *jsonParser) end() *RejectError {
	p.ws()
	if p.i != len(p.b) {
		return p.unexpected()
	}
	return nil
}

// value checks one value starting exactly at p.i (no leading whitespace)
// and leaves p just after it.
func (p *jsonParser) value(depth int) (jsonKind, *RejectError) {
	if p.i >= len(p.b) {
		return 0, p.unexpected()
	}
	switch c := p.b[p.i]; {
	case c == '{':
		if depth >= maxJSONDepth {
			return 0, reject(ReasonMalformedJSON, "nesting deeper than %d at offset %d", maxJSONDepth, p.i)
		}
		p.i++
		for n := 0; ; n++ {
			_, _, _, done, err := p.member(n)
			if err != nil {
				return 0, err
			}
			if done {
				return kindObject, nil
			}
			if _, err := p.value(depth + 1); err != nil {
				return 0, err
			}
		}
	case c == '[':
		if depth >= maxJSONDepth {
			return 0, reject(ReasonMalformedJSON, "nesting deeper than %d at offset %d", maxJSONDepth, p.i)
		}
		p.i++
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return kindArray, nil
		}
		for {
			p.ws()
			if _, err := p.value(depth + 1); err != nil {
				return 0, err
			}
			p.ws()
			if p.i >= len(p.b) {
				return 0, p.unexpected()
			}
			switch p.b[p.i] {
			case ',':
				p.i++
			case ']':
				p.i++
				return kindArray, nil
			default:
				return 0, p.unexpected()
			}
		}
	case c == '"':
		_, _, _, err := p.str()
		return kindString, err
	case c == 't':
		return kindBool, p.literal("true")
	case c == 'f':
		return kindBool, p.literal("false")
	case c == 'n':
		return kindNull, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber, p.number()
	}
	return 0, p.unexpected()
}

func (p *jsonParser) literal(lit string) *RejectError {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return p.unexpected()
	}
	p.i += len(lit)
	return nil
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *jsonParser) number() *RejectError {
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i >= len(p.b) {
		return p.unexpected()
	}
	switch c := p.b[p.i]; {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return p.unexpected()
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return p.unexpected()
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return p.unexpected()
		}
	}
	return nil
}

// digits consumes [0-9]* and reports whether there was at least one.
func (p *jsonParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// str reads a string starting at the '"' at p.i; the content is b[s:e].
func (p *jsonParser) str() (s, e int, esc bool, err *RejectError) {
	p.i++
	s = p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			e = p.i
			p.i++
			return s, e, esc, nil
		case c == '\\':
			esc = true
			p.i++
			if p.i >= len(p.b) {
				return 0, 0, false, p.unexpected()
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				for k := 0; k < 4; k++ {
					if p.i >= len(p.b) || !isHex(p.b[p.i]) {
						return 0, 0, false, p.unexpected()
					}
					p.i++
				}
			default:
				return 0, 0, false, p.unexpected()
			}
		case c < 0x20:
			return 0, 0, false, p.unexpected()
		default:
			p.i++
		}
	}
	return 0, 0, false, p.unexpected()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
