package quiltstub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// value is a JSON value as Python's json module holds it: objects keep
// their members in document order (a repeated key keeps its first place
// and its last value, as a dict does), numbers keep their literal so that
// an int stays an int and a float is printed as Python prints it.
// A value is one of: nil, bool, string, json.Number, []value, *object.
type value = any

type object struct {
	keys []string
	vals map[string]value
}

func (o *object) set(k string, v value) {
	if o.vals == nil {
		o.vals = map[string]value{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) get(k string) (value, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// decodeJSON parses one JSON document (and nothing after it) into a value.
func decodeJSON(data []byte) (value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("quiltstub: extra data after the JSON document")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{vals: map[string]value{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.set(kt.(string), v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []value{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("quiltstub: unexpected %v", t)
	default:
		return t, nil // nil, bool, string, json.Number
	}
}

// toPlain converts a value to what encoding/json produces with UseNumber
// (map[string]any, []any, json.Number, …), for the JSON Schema validator.
func toPlain(v value) any {
	switch t := v.(type) {
	case *object:
		m := make(map[string]any, len(t.keys))
		for _, k := range t.keys {
			m[k] = toPlain(t.vals[k])
		}
		return m
	case []value:
		a := make([]any, len(t))
		for i, e := range t {
			a[i] = toPlain(e)
		}
		return a
	}
	return v
}

// pyEncoder writes values as Python's json.JSONEncoder does with the
// given options.
type pyEncoder struct {
	// sortKeys, ensureASCII: the encoder's options of the same names.
	sortKeys, ensureASCII bool
	// compact means separators=(',', ':'); otherwise (', ', ': ').
	compact bool
	// allowNaN: Infinity and NaN are written (Python's default) instead of failing.
	allowNaN bool
}

// topHashEncoder is quilt3's json.JSONEncoder(sort_keys=True,
// separators=(',', ':')) of Package._calculate_top_hash (ensure_ascii and
// allow_nan keep their defaults, True).
var topHashEncoder = pyEncoder{sortKeys: true, ensureASCII: true, compact: true, allowNaN: true}

// manifestEncoder is quilt3's json.JSONEncoder(ensure_ascii=False,
// allow_nan=False) of Package._dump.
var manifestEncoder = pyEncoder{}

func (e pyEncoder) encode(v value) ([]byte, error) {
	var b bytes.Buffer
	if err := e.write(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (e pyEncoder) write(b *bytes.Buffer, v value) error {
	comma, colon := ", ", ": "
	if e.compact {
		comma, colon = ",", ":"
	}
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case string:
		e.writeString(b, t)
	case json.Number:
		s, err := e.number(t)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case int:
		b.WriteString(strconv.Itoa(t))
	case int64:
		b.WriteString(strconv.FormatInt(t, 10))
	case []value:
		b.WriteByte('[')
		for i, x := range t {
			if i > 0 {
				b.WriteString(comma)
			}
			if err := e.write(b, x); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case *object:
		keys := t.keys
		if e.sortKeys {
			keys = append([]string(nil), keys...)
			sort.Strings(keys) // UTF-8 byte order is code point order, as Python sorts str
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(comma)
			}
			e.writeString(b, k)
			b.WriteString(colon)
			if err := e.write(b, t.vals[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("quiltstub: cannot encode %T", v)
	}
	return nil
}

// number writes a JSON number literal as Python would after json.load: a
// literal without '.', 'e' or 'E' is an int (any size), anything else a
// float printed by float.__repr__.
func (e pyEncoder) number(n json.Number) (string, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0", nil
		}
		return s, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return "", fmt.Errorf("quiltstub: number %s: %w", s, err)
	}
	if math.IsInf(f, 0) && !e.allowNaN {
		return "", fmt.Errorf("quiltstub: out of range float values are not JSON compliant: %s", s)
	}
	return pyFloatRepr(f), nil
}

// pyFloatRepr is Python's repr(float): the shortest digits that read back
// as f, in fixed notation when the decimal exponent is in [-4, 16), else
// in scientific notation with a signed exponent of at least two digits;
// json writes infinities as Infinity and -Infinity.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, expStr, _ := strings.Cut(s, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	if exp >= -4 && exp < 16 {
		var intPart, frac string
		if exp >= 0 {
			if len(digits) <= exp+1 {
				intPart, frac = digits+strings.Repeat("0", exp+1-len(digits)), "0"
			} else {
				intPart, frac = digits[:exp+1], digits[exp+1:]
			}
		} else {
			intPart, frac = "0", strings.Repeat("0", -exp-1)+digits
		}
		return sign + intPart + "." + frac
	}
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

// writeString quotes s as Python's json does: with ensure_ascii every
// character outside ' '..'~' is a \uXXXX escape (surrogate pairs above
// U+FFFF); without it only '"', '\\' and control characters are escaped.
func (e pyEncoder) writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
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
			switch {
			case r < 0x20:
				fmt.Fprintf(b, `\u%04x`, r)
			case !e.ensureASCII || r <= '~':
				b.WriteRune(r)
			case r < 0x10000:
				fmt.Fprintf(b, `\u%04x`, r)
			default:
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			}
		}
	}
	b.WriteByte('"')
}
