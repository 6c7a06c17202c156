package openapi

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pb33f/jsonschema/v6"
)

// The fast path may only accept what the library accepts. For every
// operation with a JSON body, its golden example and hundreds of
// mutations of it (each field dropped, retyped, emptied, pushed past
// bounds, unknown fields added) are judged by both: wherever the fast
// path says "fits", the library must too.
func TestFastPath_AcceptsOnlyWhatTheLibraryAccepts(t *testing.T) {
	compiled, total := 0, 0
	for _, stack := range Stacks() {
		v := compiledValidator(t, stack)
		for _, o := range v.ops {
			if o.body == nil {
				continue
			}
			total++
			if o.fast == nil {
				continue
			}
			compiled++
			raw, err := os.ReadFile(filepath.Join("..", "examples", o.OperationID+".request.json"))
			if err != nil {
				continue // no golden example: only the generic bodies below
			}
			example := decodeInstance(t, raw)
			if err := o.body.Validate(example); err != nil {
				t.Fatalf("%s: the golden example does not fit: %v", o.OperationID, err)
			}
			if got := o.fast.checkJSON(raw); got != fits {
				t.Errorf("%s: the fast path does not accept the golden example (verdict %d): it would never be used", o.OperationID, got)
			}
			accepted, rejected := 0, 0
			for _, body := range mutations(example) {
				inst := decodeInstance(t, body)
				libOK := o.body.Validate(inst) == nil
				verdict := o.fast.checkJSON(body)
				if verdict == fits && !libOK {
					t.Errorf("%s: fast path accepts a body the library rejects: %s", o.OperationID, body)
				}
				if verdict == misfits && libOK {
					// Allowed (the library then decides), but it means the
					// fast path is stricter than the contract somewhere:
					// worth knowing.
					t.Logf("%s: fast path says misfit, library accepts: %s", o.OperationID, body)
				}
				if libOK {
					accepted++
				} else {
					rejected++
				}
			}
			if rejected == 0 {
				t.Errorf("%s: no mutation was rejected: the test proves nothing", o.OperationID)
			}
		}
	}
	t.Logf("fast path compiled for %d of %d request bodies", compiled, total)
}

// The hot routes must take the fast path, or it saves nothing.
func TestFastPath_CompiledForTheHotRoutes(t *testing.T) {
	v := compiledValidator(t, StackB)
	for _, id := range []string{"createChatCompletion", "createOpenAIChatCompletion", "invokeModel"} {
		o := v.byID[id]
		if o == nil {
			t.Fatalf("no operation %s", id)
		}
		if o.fast == nil {
			t.Errorf("%s: request body schema not handled by the fast path", id)
		}
	}
}

// Every misfit the fast path sees still gets the library's error, word
// for word: ValidateRequestBody answers what the library answers.
func TestFastPath_ErrorsAreTheLibrarys(t *testing.T) {
	v := compiledValidator(t, StackB)
	o := v.byID["createOpenAIChatCompletion"]
	for _, body := range []string{
		`{"messages":[{"role":"user","content":"hi"}]}`,                                   // model missing
		`{"model":"","messages":[{"role":"user","content":"hi"}]}`,                        // model empty
		`{"model":"m","messages":[]}`,                                                     // no messages
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":2.5}`,     // over the maximum
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":0}`,        // under the minimum
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1.5}`,      // not an integer
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"n":2}`,                 // n must be 1
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"maybe"}`, // not in the enum
		`{"model":"m","messages":"hi"}`,                                                   // wrong type
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":"yes"}`,        // wrong type
	} {
		inst := decodeInstance(t, []byte(body))
		if o.fast.checkJSON([]byte(body)) == fits {
			t.Errorf("fast path accepts %s", body)
		}
		lib := o.body.Validate(inst)
		if lib == nil {
			t.Fatalf("library accepts %s: the case is not a bad body", body)
		}
		want := fieldErrorOf(lib, inst)
		got := v.ValidateRequestBody(o.OperationID, []byte(body))
		if got == nil || got.Field != want.Field || got.Message != want.Message {
			t.Errorf("%s: error %+v, want the library's %+v", body, got, want)
		}
	}
	// Numbers at a bound are decided exactly, not in float64.
	for body, ok := range map[string]bool{
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":2}`:                     true,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":2.0000000000000000001}`: false,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}`:                     true,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":-1e-400}`:               false,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1e2}`:                    true,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2.0}`:                    true,
	} {
		got := v.ValidateRequestBody(o.OperationID, []byte(body)) == nil
		lib := o.body.Validate(decodeInstance(t, []byte(body))) == nil
		if got != ok || lib != ok {
			t.Errorf("%s: accepted %v (library %v), want %v", body, got, lib, ok)
		}
	}
}

// compiledValidator is stack's validator with every request body schema
// compiled, so each operation's fast path is built.
func compiledValidator(tb testing.TB, stack string) *Validator {
	tb.Helper()
	v, err := NewValidator(stack)
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.CompileAll(); err != nil {
		tb.Fatal(err)
	}
	return v
}

// libraryError is the library's answer for body on o: nil when body
// decodes and fits, else the decode or validation error.
func libraryError(o *operation, body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return o.body.Validate(inst)
}

func decodeInstance(t *testing.T, raw []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// mutations are bodies derived from v: at every object member and array
// element, the value dropped or replaced by each of a set of wrong or
// edge values; every object given an unknown member; every array emptied
// and doubled.
func mutations(v any) [][]byte {
	replacements := []any{nil, true, false, json.Number("0"), json.Number("-1"), json.Number("1.5"), json.Number("3"),
		json.Number("1e400"), "", "x", "function", "user", strings.Repeat("é", 300), []any{}, map[string]any{}}
	var out [][]byte
	emit := func(root any) {
		b, err := json.Marshal(root)
		if err == nil {
			out = append(out, b)
		}
	}
	// paths lists every place in v as a setter over a fresh deep copy.
	var walk func(path []any, x any)
	walk = func(path []any, x any) {
		switch x := x.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			emit(setAt(v, path, withKey(x, "zz_unknown", json.Number("1"))))
			for _, k := range keys {
				emit(setAt(v, path, withoutKey(x, k)))
				for _, r := range replacements {
					emit(setAt(v, path, withKey(x, k, r)))
				}
				walk(append(append([]any{}, path...), k), x[k])
			}
		case []any:
			emit(setAt(v, path, []any{}))
			emit(setAt(v, path, append(append([]any{}, x...), x...)))
			for i := range x {
				for _, r := range replacements {
					c := append([]any{}, x...)
					c[i] = r
					emit(setAt(v, path, c))
				}
				walk(append(append([]any{}, path...), i), x[i])
			}
		}
	}
	walk(nil, v)
	return out
}

func withKey(m map[string]any, k string, val any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for kk, vv := range m {
		c[kk] = vv
	}
	c[k] = val
	return c
}

func withoutKey(m map[string]any, k string) map[string]any {
	c := make(map[string]any, len(m))
	for kk, vv := range m {
		if kk != k {
			c[kk] = vv
		}
	}
	return c
}

// setAt returns a copy of root with the value at path replaced by val.
func setAt(root any, path []any, val any) any {
	if len(path) == 0 {
		return val
	}
	switch x := root.(type) {
	case map[string]any:
		k := path[0].(string)
		return withKey(x, k, setAt(x[k], path[1:], val))
	case []any:
		i := path[0].(int)
		c := append([]any{}, x...)
		c[i] = setAt(x[i], path[1:], val)
		return c
	}
	return root
}

// BenchmarkChatBody is the gateway's hot route body, checked by the fast
// path (as served) and by the library alone (as before it).
func BenchmarkChatBody(b *testing.B) {
	v := compiledValidator(b, StackB)
	o := v.byID["createOpenAIChatCompletion"]
	body := []byte(`{"model":"fake/bench-1","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"bench request 1"}],"max_tokens":16,"temperature":0.2}`)
	for _, c := range []struct {
		name string
		fast *fastSchema
	}{{"fast", o.fast}, {"library", nil}} {
		b.Run(c.name, func(b *testing.B) {
			oc := &operation{hasBody: true, body: o.body, fast: c.fast}
			oc.bodyOnce.Do(func() {}) // compiled above: body and fast are final
			b.ReportAllocs()
			for b.Loop() {
				if fe := oc.validateBody(body); fe != nil {
					b.Fatal(fe)
				}
			}
		})
	}
}

// The fast path reads bytes, so what the decoder does to bytes must not
// fool it: a repeated member (the decoder keeps the last), escapes in
// names and values, invalid UTF-8, whitespace, trailing data. For each
// body the fast path may say "fits" only where the library accepts; the
// ordinary spellings (whitespace, escaped values) must still take it.
func TestFastPath_BytesAsTheDecoderReadsThem(t *testing.T) {
	v := compiledValidator(t, StackB)
	o := v.byID["createOpenAIChatCompletion"]
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	for _, c := range []struct {
		body string
		fast bool // the fast path must accept it (the library does)
	}{
		{`{"model":"m",` + msgs + `}`, true},
		{" \r\n\t{ \"model\" : \"m\" ,\n " + msgs + " } \n", true},
		{`{"model":"m","messages":[{"role":"\u0075ser","content":"line\nbreak \"quoted\" \u00e9"}]}`, true},
		{`{"model":"m\u00e9",` + msgs + `,"temperature":2.0e0,"top_p":-0,"max_tokens":1E1}`, true},
		{`{"model":"m",` + msgs + `,"stream":null,"stop":["a","b"],"tool_choice":"auto"}`, true},
		{`{"model":"\uFFFD",` + msgs + `}`, true},
		// A repeated name: the decoder keeps the last.
		{`{"model":"m","model":"",` + msgs + `}`, false},
		{`{"model":"","model":"m",` + msgs + `}`, false},
		{`{"model":"m",` + msgs + `,"messages":[]}`, false},
		// Escaped and odd names.
		{`{"m\u006fdel":"m",` + msgs + `}`, false},
		{`{"model":"m",` + msgs + `,"n\u0000":2}`, false},
		// Escapes and bytes in values.
		{`{"model":"m","messages":[{"role":"us\u0000er","content":"hi"}]}`, false},
		{`{"model":"m","messages":[{"role":"\u0055SER","content":"hi"}]}`, false},
		{`{"model":"\ud800",` + msgs + `}`, false},
		{"{\"model\":\"\xff\"," + msgs + "}", false},
		{"{\"model\":\"m\",\"messages\":[{\"role\":\"user\xff\",\"content\":\"hi\"}]}", false},
		{`{"model":"",` + msgs + `}`, false},
		// Not one JSON value.
		{`{"model":"m",` + msgs + `} {}`, false},
		{`{"model":"m",` + msgs + `}x`, false},
		{`{"model":"m",` + msgs + ``, false},
		{`{"model":"m",` + msgs + `,}`, false},
		{`{"model":"m",` + msgs + `,"temperature":01}`, false},
		{`{"model":"m",` + msgs + `,"temperature":2.0000000000000000001}`, false},
		{`{"model":"m",` + msgs + `,"max_tokens":1.5}`, false},
		{`{"model":"m",` + msgs + `,"max_tokens":1e400}`, false},
	} {
		body := []byte(c.body)
		got := o.fast.checkJSON(body)
		libOK := libraryError(o, body) == nil
		if got == fits && !libOK {
			t.Errorf("fast path accepts %q, which the library rejects", c.body)
		}
		if c.fast && got != fits {
			t.Errorf("fast path does not accept %q (verdict %d; library accepts: %v)", c.body, got, libOK)
		}
		if c.fast && !libOK {
			t.Fatalf("case %q: the library rejects it; the case is wrong", c.body)
		}
	}
}

// FuzzFastPath_Bytes: whatever the bytes, the fast path says "fits" only
// where the library decodes and accepts them. Seeded with the hot routes'
// golden examples; `go test -fuzz FuzzFastPath_Bytes ./openapi/` explores.
func FuzzFastPath_Bytes(f *testing.F) {
	v := compiledValidator(f, StackB)
	ops := []*operation{v.byID["createOpenAIChatCompletion"], v.byID["invokeModel"], v.byID["createOpenAIEmbedding"]}
	for _, o := range ops {
		if o == nil || o.fast == nil {
			f.Fatal("a hot route has no fast path")
		}
		if raw, err := os.ReadFile(filepath.Join("..", "examples", o.OperationID+".request.json")); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"a\tb"}],"model":"","n":1,"stop":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, o := range ops {
			if o.fast.checkJSON(body) != fits {
				continue
			}
			if err := libraryError(o, body); err != nil {
				t.Fatalf("%s: fast path accepts %q, which the library does not decode or rejects: %v", o.OperationID, body, err)
			}
		}
	})
}
