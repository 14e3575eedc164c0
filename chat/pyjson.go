package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The template prints tool schemas and non-string tool-call arguments with
// `tojson`, which under Hugging Face's renderer is Python's json.dumps with
// ensure_ascii=False: keys in insertion order, ", " and ": " separators, only
// '"', '\\' and control characters escaped, numbers as Python prints them.
// jsonValue and dumpPy reproduce that from raw JSON text.

// jsonValue is a parsed JSON value that keeps object key order.
type jsonValue struct {
	kind  byte   // 'o' object, 'a' array, 's' string, 'n' number, 't' true, 'f' false, 'z' null
	str   string // string contents, or the number's literal
	keys  []string
	vals  []jsonValue // object values (parallel to keys) or array elements
	index map[string]int
}

// parseJSON parses one JSON value, keeping object key order. A repeated key
// keeps its first position and takes its last value, as a Python dict does.
func parseJSON(raw []byte) (jsonValue, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return jsonValue{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jsonValue{}, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (jsonValue, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return jsonValue{}, errors.New("empty JSON")
		}
		return jsonValue{}, err
	}
	switch x := tok.(type) {
	case json.Delim:
		switch x {
		case '{':
			v := jsonValue{kind: 'o'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return jsonValue{}, err
				}
				k, ok := kt.(string)
				if !ok {
					return jsonValue{}, fmt.Errorf("object key is %T, not a string", kt)
				}
				val, err := parseValue(dec)
				if err != nil {
					return jsonValue{}, err
				}
				if i, dup := v.index[k]; dup {
					v.vals[i] = val
					continue
				}
				if v.index == nil {
					v.index = make(map[string]int)
				}
				v.index[k] = len(v.keys)
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, val)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return jsonValue{}, err
			}
			return v, nil
		case '[':
			v := jsonValue{kind: 'a'}
			for dec.More() {
				el, err := parseValue(dec)
				if err != nil {
					return jsonValue{}, err
				}
				v.vals = append(v.vals, el)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return jsonValue{}, err
			}
			return v, nil
		}
		return jsonValue{}, fmt.Errorf("unexpected %q", x)
	case string:
		return jsonValue{kind: 's', str: x}, nil
	case json.Number:
		return jsonValue{kind: 'n', str: string(x)}, nil
	case bool:
		if x {
			return jsonValue{kind: 't'}, nil
		}
		return jsonValue{kind: 'f'}, nil
	case nil:
		return jsonValue{kind: 'z'}, nil
	}
	return jsonValue{}, fmt.Errorf("unexpected JSON token %v", tok)
}

// dumpPy appends v as Python's json.dumps(v, ensure_ascii=False) prints it.
func dumpPy(b *strings.Builder, v jsonValue) {
	switch v.kind {
	case 'o':
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			quotePy(b, k)
			b.WriteString(": ")
			dumpPy(b, v.vals[i])
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, el := range v.vals {
			if i > 0 {
				b.WriteString(", ")
			}
			dumpPy(b, el)
		}
		b.WriteByte(']')
	case 's':
		quotePy(b, v.str)
	case 'n':
		b.WriteString(pyNumber(v.str))
	case 't':
		b.WriteString("true")
	case 'f':
		b.WriteString("false")
	default:
		b.WriteString("null")
	}
}

// quotePy writes s as a JSON string the way Python does with
// ensure_ascii=False: '"', '\\' and U+0000..U+001F are escaped (\n \r \t \b
// \f by name, the rest as lower-case \u00xx); everything else is verbatim.
func quotePy(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// pyNumber prints a JSON number literal as Python's json.loads + json.dumps
// would: integers exactly (arbitrary size; "-0" becomes "0"), anything with a
// fraction or exponent as a float in repr form ("2.5", "1e+16", "10.0"),
// and out-of-range floats as Infinity / -Infinity.
func pyNumber(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		if strings.TrimLeft(lit, "-0") == "" {
			return "0"
		}
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !math.IsInf(f, 0) {
		return lit // cannot happen for a literal encoding/json accepted
	}
	return pyFloatRepr(f)
}

// pyFloatRepr formats f like Python's repr(float): the shortest digits that
// round-trip, in fixed notation when the decimal exponent is in [-4, 16)
// (always with a fractional part), otherwise as d.ddde±XX.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	ePos := strings.IndexByte(s, 'e')
	mant, expStr := s[:ePos], s[ePos+1:]
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}
