package openapi

import (
	"bytes"
	"encoding/json"
	"sync"
	"unicode/utf8"
)

// The fast path reads the body's bytes where they are: it does not build
// the generic value (maps, slices, json.Number strings) the library
// validator needs, which was ~40 allocations per chat body. It answers
// for the value the library would decode, so wherever the decoder would
// make of the bytes something other than what they spell, the fast path
// says "cannot tell" and the library decides:
//   - anything json.Valid refuses (malformed JSON, trailing data) — the
//     same scanner as the decoder's, so the library words the error;
//   - an object with a repeated member name (the decoder keeps the last)
//     or a name with an escape or invalid UTF-8 (the decoder rewrites it);
//   - strings with escapes or invalid UTF-8 are read through the decoder
//     itself (json.Unmarshal into a string) when a keyword needs their
//     text, so they are judged as the library sees them.
// Numbers are the value's text, as the library's json.Number is.

// maxFastDepth bounds the fast check's nesting (a schema that refers to
// itself without going into the value would otherwise not end); past it
// the library decides.
const maxFastDepth = 64

// maxFastMembers bounds the members of one object the fast path checks
// for repeated names (pairwise); a larger object goes to the library.
const maxFastMembers = 256

// rawChecker holds the scratch of one check: the members of the objects
// being checked, as a stack (an object's members sit above its parent's).
type rawChecker struct {
	members []rawMember
}

type rawMember struct {
	name, value []byte
}

var rawCheckers = sync.Pool{New: func() any { return &rawChecker{members: make([]rawMember, 0, 64)} }}

// checkJSON answers whether body, a JSON text, fits f, as the library
// would judge the value it decodes from body.
func (f *fastSchema) checkJSON(body []byte) verdict {
	if !json.Valid(body) {
		return unknown
	}
	v := trimJSONSpace(body)
	c := rawCheckers.Get().(*rawChecker)
	r := c.check(f, v, 0)
	c.members = c.members[:0]
	rawCheckers.Put(c)
	return r
}

// trimJSONSpace drops JSON's four whitespace bytes around b.
func trimJSONSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isJSONSpace(b[i]) {
		i++
	}
	for j > i && isJSONSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// valueEnd is the index just past the value that starts at b[i]; b is
// valid JSON, so the value is whole.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// stringEnd is the index just past the string that starts at b[i] == '"'.
func stringEnd(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return i
}

// rawKind is the JSON type of the value v (its first byte says).
func rawKind(v []byte) jsonKind {
	switch v[0] {
	case 'n':
		return kNull
	case 't', 'f':
		return kBool
	case '"':
		return kString
	case '[':
		return kArray
	case '{':
		return kObject
	}
	return kNumber
}

// plainText is the text of the quoted string v when the decoder takes its
// bytes as they are (no escape, valid UTF-8).
func plainText(v []byte) ([]byte, bool) {
	s := v[1 : len(v)-1]
	for _, ch := range s {
		if ch == '\\' || ch >= utf8.RuneSelf {
			return s, bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s)
		}
	}
	return s, true
}

// stringText is the text the decoder reads from the quoted string v.
func stringText(v []byte) ([]byte, bool) {
	if s, ok := plainText(v); ok {
		return s, true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return nil, false
	}
	return []byte(s), true
}

// check answers whether the JSON value v fits f.
func (c *rawChecker) check(f *fastSchema, v []byte, depth int) verdict {
	if depth > maxFastDepth {
		return unknown
	}
	if f.boolean != nil {
		if *f.boolean {
			return fits
		}
		return misfits
	}
	k := rawKind(v)
	out := fits
	// text is a string's text, read once when a keyword needs it (read:
	// 0 not yet, 1 read, 2 unreadable).
	var text []byte
	read := 0
	needText := func() bool {
		if read == 0 {
			read = 2
			if t, ok := stringText(v); ok {
				text, read = t, 1
			}
		}
		return read == 1
	}
	if f.types != 0 && f.types&k == 0 {
		if !(k == kNumber && f.types&kInteger != 0) {
			return misfits
		}
		isInt, ok := integral(v)
		if !ok {
			return unknown
		}
		if !isInt {
			return misfits
		}
	}
	if f.hasEnum {
		if k == kString && !needText() {
			return unknown
		}
		if !inEnum(f.enum, k, v, text) {
			return misfits
		}
	}
	if f.format != nil {
		var val any
		switch k {
		case kNull:
		case kBool:
			val = v[0] == 't'
		case kNumber:
			val = json.Number(string(v))
		case kString:
			if !needText() {
				return unknown
			}
			val = string(text)
		default:
			return unknown
		}
		if f.format.Validate(val) != nil {
			return misfits
		}
	}
	if f.ref != nil {
		if out = out.and(c.check(f.ref, v, depth+1)); out == misfits {
			return misfits
		}
	}
	switch k {
	case kObject:
		if out = out.and(c.checkObject(f, v, depth)); out == misfits {
			return misfits
		}
	case kArray:
		if out = out.and(c.checkArray(f, v, depth)); out == misfits {
			return misfits
		}
	case kString:
		if f.minLen != nil || f.maxLen != nil || f.pattern != nil {
			if !needText() {
				return unknown
			}
			if f.minLen != nil || f.maxLen != nil {
				n := utf8.RuneCount(text)
				if f.minLen != nil && n < *f.minLen || f.maxLen != nil && n > *f.maxLen {
					return misfits
				}
			}
			if f.pattern != nil && !f.pattern.MatchString(string(text)) {
				return misfits
			}
		}
	case kNumber:
		if out = out.and(f.checkNumber(v)); out == misfits {
			return misfits
		}
	}
	for _, sub := range f.allOf {
		if out = out.and(c.check(sub, v, depth+1)); out == misfits {
			return misfits
		}
	}
	if len(f.anyOf) > 0 {
		anyv := misfits
		for _, sub := range f.anyOf {
			r := c.check(sub, v, depth+1)
			if r == fits {
				anyv = fits
				break
			}
			if r == unknown {
				anyv = unknown
			}
		}
		if out = out.and(anyv); out == misfits {
			return misfits
		}
	}
	if len(f.oneOf) > 0 {
		matched := 0
		for _, sub := range f.oneOf {
			switch c.check(sub, v, depth+1) {
			case fits:
				matched++
			case unknown:
				return unknown
			}
		}
		if matched != 1 {
			return misfits
		}
	}
	if f.cond != nil {
		var r verdict
		switch c.check(f.cond, v, depth+1) {
		case fits:
			r = fits
			if f.then != nil {
				r = c.check(f.then, v, depth+1)
			}
		case misfits:
			r = fits
			if f.els != nil {
				r = c.check(f.els, v, depth+1)
			}
		}
		if out = out.and(r); out == misfits {
			return misfits
		}
	}
	if f.not != nil {
		switch c.check(f.not, v, depth+1) {
		case fits:
			return misfits
		case unknown:
			out = unknown
		}
	}
	return out
}

// checkObject checks the object v's members. Its members are read onto
// the checker's stack first: the count, repeated names and required
// names need them all before any value is judged.
func (c *rawChecker) checkObject(f *fastSchema, v []byte, depth int) verdict {
	base := len(c.members)
	r := c.object(f, v, base, depth)
	c.members = c.members[:base]
	return r
}

func (c *rawChecker) object(f *fastSchema, v []byte, base, depth int) verdict {
	for i := skipSpace(v, 1); v[i] != '}'; {
		end := stringEnd(v, i)
		name, ok := plainText(v[i:end])
		if !ok {
			return unknown // the decoder would rewrite the name
		}
		i = skipSpace(v, end) + 1 // past ':'
		i = skipSpace(v, i)
		end = valueEnd(v, i)
		if len(c.members)-base >= maxFastMembers {
			return unknown
		}
		for _, m := range c.members[base:] {
			if bytes.Equal(m.name, name) {
				return unknown // the decoder keeps the last of a repeated name
			}
		}
		c.members = append(c.members, rawMember{name: name, value: v[i:end]})
		i = skipSpace(v, end)
		if v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	members := c.members[base:]
	if f.minProps != nil && len(members) < *f.minProps || f.maxProps != nil && len(members) > *f.maxProps {
		return misfits
	}
	for _, name := range f.required {
		found := false
		for _, m := range members {
			if string(m.name) == name {
				found = true
				break
			}
		}
		if !found {
			return misfits
		}
	}
	out := fits
	// members may move as nested objects push theirs: index by position.
	for j := base; j < base+len(members); j++ {
		m := c.members[j]
		named := false
		if sub, ok := f.props[string(m.name)]; ok {
			named = true
			if out = out.and(c.check(sub, m.value, depth+1)); out == misfits {
				return misfits
			}
		}
		if len(f.patterns) > 0 {
			name := string(m.name)
			for _, p := range f.patterns {
				if p.re.MatchString(name) {
					named = true
					if out = out.and(c.check(p.s, m.value, depth+1)); out == misfits {
						return misfits
					}
				}
			}
		}
		if named {
			continue
		}
		if f.noAdditional {
			return misfits
		}
		if f.additional != nil {
			if out = out.and(c.check(f.additional, m.value, depth+1)); out == misfits {
				return misfits
			}
		}
	}
	return out
}

// checkArray checks the array v's items against prefixItems and items,
// and its length.
func (c *rawChecker) checkArray(f *fastSchema, v []byte, depth int) verdict {
	out := fits
	n := 0
	for i := skipSpace(v, 1); v[i] != ']'; n++ {
		end := valueEnd(v, i)
		var sub *fastSchema
		switch {
		case n < len(f.prefix):
			sub = f.prefix[n]
		case f.items != nil:
			sub = f.items
		}
		if sub != nil {
			if out = out.and(c.check(sub, v[i:end], depth+1)); out == misfits {
				return misfits
			}
		}
		i = skipSpace(v, end)
		if v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	if f.minItems != nil && n < *f.minItems || f.maxItems != nil && n > *f.maxItems {
		return misfits
	}
	return out
}

// integral reports whether the JSON number num is an integer (1, -3, 1e2,
// 2.0 are; 1.5 is not), as the library decides it; ok is false when it
// cannot be told cheaply.
func integral(num []byte) (isInt, ok bool) {
	if !bytes.ContainsAny(num, ".eE") {
		return true, true
	}
	return integralText(string(num))
}

// inEnum reports whether the value v of kind k (text: a string's text) is
// one of enum's strings, booleans and nulls.
func inEnum(enum []any, k jsonKind, v, text []byte) bool {
	for _, e := range enum {
		switch e := e.(type) {
		case nil:
			if k == kNull {
				return true
			}
		case bool:
			if k == kBool && (v[0] == 't') == e {
				return true
			}
		case string:
			if k == kString && string(text) == e {
				return true
			}
		}
	}
	return false
}
