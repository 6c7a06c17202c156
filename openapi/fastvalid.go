package openapi

import (
	"math"
	"math/big"
	"strconv"

	"github.com/pb33f/jsonschema/v6"
)

// The fast path of request body validation. The library validator
// (jsonschema) builds scopes, evaluation sets and big.Rat numbers for
// every value it visits: on the gateway's hot route that was a tenth of
// the node's allocations. A fastSchema is compiled once, from the same
// compiled *jsonschema.Schema, for the keywords the contract's request
// schemas use, and answers only "this body fits": anything else (a
// misfit, a keyword it does not handle, a number too close to a bound to
// decide in float64) sends the body to the library validator, which
// decides and words the error. So the fast path can accept only what the
// library accepts, and every error object is the library's, unchanged.

// verdict is a fast check's answer: fits, does not fit, or cannot tell.
type verdict int8

const (
	unknown verdict = iota
	fits
	misfits
)

// and is the verdict of "v and r both hold": a misfit decides, else an
// unknown stays unknown. A check folds each keyword's answer into its own
// with it and stops at the first misfit.
func (v verdict) and(r verdict) verdict {
	if r == fits || v == misfits { // the common case first: one comparison
		return v
	}
	if r == misfits {
		return misfits
	}
	return unknown
}

// jsonKind is a JSON value's type as a bit, so a schema's types are a mask.
type jsonKind uint8

const (
	kNull jsonKind = 1 << iota
	kBool
	kNumber
	kInteger
	kString
	kArray
	kObject
)

var kindNames = map[string]jsonKind{"null": kNull, "boolean": kBool, "number": kNumber, "integer": kInteger,
	"string": kString, "array": kArray, "object": kObject}

// fastSchema mirrors one *jsonschema.Schema for the handled keywords.
type fastSchema struct {
	boolean *bool // a true/false schema
	types   jsonKind
	// enum and constant hold strings, booleans and nulls only (others
	// make the schema unhandled).
	enum    []any
	hasEnum bool
	format  *jsonschema.Format
	ref     *fastSchema
	allOf   []*fastSchema
	anyOf   []*fastSchema
	oneOf   []*fastSchema
	not     *fastSchema
	// cond, then, els are if/then/else.
	cond, then, els *fastSchema
	required        []string
	props           map[string]*fastSchema
	patterns        []fastPattern
	// additional is the schema of properties no other keyword names;
	// noAdditional is additionalProperties: false.
	additional   *fastSchema
	noAdditional bool
	minProps     *int
	maxProps     *int
	prefix       []*fastSchema
	items        *fastSchema
	minItems     *int
	maxItems     *int
	minLen       *int
	maxLen       *int
	pattern      jsonschema.Regexp
	minimum      *fastBound
	maximum      *fastBound
	exclMin      *fastBound
	exclMax      *fastBound
}

type fastPattern struct {
	re jsonschema.Regexp
	s  *fastSchema
}

// fastBound is a numeric bound, exact and rounded to the nearest float64.
type fastBound struct {
	exact *big.Rat
	f     float64
}

func newBound(r *big.Rat) *fastBound {
	if r == nil {
		return nil
	}
	f, _ := r.Float64()
	return &fastBound{exact: r, f: f}
}

// compileFast mirrors s, or returns nil when s (or any schema it reaches)
// uses a keyword the fast path does not handle.
func compileFast(s *jsonschema.Schema) *fastSchema {
	c := fastCompiler{done: map[*jsonschema.Schema]*fastSchema{}}
	f := c.compile(s)
	if c.unhandled {
		return nil
	}
	return f
}

type fastCompiler struct {
	done      map[*jsonschema.Schema]*fastSchema
	unhandled bool
}

func (c *fastCompiler) compile(s *jsonschema.Schema) *fastSchema {
	if s == nil || c.unhandled {
		return nil
	}
	if f, ok := c.done[s]; ok {
		return f // a recursive schema: the same node
	}
	f := &fastSchema{}
	c.done[s] = f
	if s.Bool != nil {
		f.boolean = s.Bool
		return f
	}
	if s.DraftVersion < 2019 || s.RecursiveRef != nil || s.DynamicRef != nil ||
		s.PropertyNames != nil || len(s.Dependencies) > 0 || len(s.DependentRequired) > 0 || len(s.DependentSchemas) > 0 ||
		s.UnevaluatedProperties != nil || s.UnevaluatedItems != nil || s.Contains != nil || s.MinContains != nil || s.MaxContains != nil ||
		s.UniqueItems || s.Items != nil || s.AdditionalItems != nil || s.ContentEncoding != nil || s.ContentMediaType != nil ||
		s.ContentSchema != nil || s.MultipleOf != nil || len(s.Extensions) > 0 {
		c.unhandled = true
		return nil
	}
	if s.Types != nil {
		for _, t := range s.Types.ToStrings() {
			k, ok := kindNames[t]
			if !ok {
				c.unhandled = true
				return nil
			}
			f.types |= k
		}
	}
	if s.Enum != nil {
		f.hasEnum = true
		for _, v := range s.Enum.Values {
			if !simpleValue(v) {
				c.unhandled = true
				return nil
			}
			f.enum = append(f.enum, v)
		}
	}
	if s.Const != nil {
		if !simpleValue(*s.Const) {
			c.unhandled = true
			return nil
		}
		// const is enum of one, and both must hold when both are given:
		// keep const as a one-value allOf.
		f.allOf = append(f.allOf, &fastSchema{hasEnum: true, enum: []any{*s.Const}})
	}
	f.format = s.Format
	f.ref = c.compile(s.Ref)
	for _, sub := range s.AllOf {
		f.allOf = append(f.allOf, c.compile(sub))
	}
	for _, sub := range s.AnyOf {
		f.anyOf = append(f.anyOf, c.compile(sub))
	}
	for _, sub := range s.OneOf {
		f.oneOf = append(f.oneOf, c.compile(sub))
	}
	f.not = c.compile(s.Not)
	f.cond, f.then, f.els = c.compile(s.If), c.compile(s.Then), c.compile(s.Else)
	f.required = s.Required
	if len(s.Properties) > 0 {
		f.props = make(map[string]*fastSchema, len(s.Properties))
		for name, sub := range s.Properties {
			f.props[name] = c.compile(sub)
		}
	}
	for re, sub := range s.PatternProperties {
		f.patterns = append(f.patterns, fastPattern{re: re, s: c.compile(sub)})
	}
	switch a := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		f.noAdditional = !a
	case *jsonschema.Schema:
		f.additional = c.compile(a)
	default:
		c.unhandled = true
	}
	f.minProps, f.maxProps = s.MinProperties, s.MaxProperties
	for _, sub := range s.PrefixItems {
		f.prefix = append(f.prefix, c.compile(sub))
	}
	f.items = c.compile(s.Items2020)
	f.minItems, f.maxItems = s.MinItems, s.MaxItems
	f.minLen, f.maxLen, f.pattern = s.MinLength, s.MaxLength, s.Pattern
	f.minimum, f.maximum = newBound(s.Minimum), newBound(s.Maximum)
	f.exclMin, f.exclMax = newBound(s.ExclusiveMinimum), newBound(s.ExclusiveMaximum)
	return f
}

func simpleValue(v any) bool {
	switch v.(type) {
	case nil, bool, string:
		return true
	}
	return false
}

// checkNumber applies the bounds in float64 where that decides exactly: a
// float64 rounding of the value that differs from the bound's orders the
// two as exact arithmetic would (rounding to nearest keeps order); equal
// roundings go to big.Rat.
func (f *fastSchema) checkNumber(num []byte) verdict {
	if f.minimum == nil && f.maximum == nil && f.exclMin == nil && f.exclMax == nil {
		return fits
	}
	x, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsInf(x, 0) {
		return unknown
	}
	// cmp is -1, 0 or 1 as the value is below, at or above b.
	cmp := func(b *fastBound) int {
		switch {
		case x < b.f:
			return -1
		case x > b.f:
			return 1
		}
		r, ok := new(big.Rat).SetString(string(num))
		if !ok {
			return 2 // cannot tell
		}
		return r.Cmp(b.exact)
	}
	if b := f.minimum; b != nil {
		if c := cmp(b); c == 2 {
			return unknown
		} else if c < 0 {
			return misfits
		}
	}
	if b := f.maximum; b != nil {
		if c := cmp(b); c == 2 {
			return unknown
		} else if c > 0 {
			return misfits
		}
	}
	if b := f.exclMin; b != nil {
		if c := cmp(b); c == 2 {
			return unknown
		} else if c <= 0 {
			return misfits
		}
	}
	if b := f.exclMax; b != nil {
		if c := cmp(b); c == 2 {
			return unknown
		} else if c >= 0 {
			return misfits
		}
	}
	return fits
}

// integralText is integral for a number with a fraction or exponent.
func integralText(num string) (isInt, ok bool) {
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return false, false
	}
	return r.IsInt(), true
}
