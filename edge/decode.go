package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
)

// DecodeJSON reads the request body (BodyRules has bounded and buffered
// it) into v as one JSON value. Objects are open: fields v does not name
// are ignored, as the contract's open objects and the OpenAI and
// Anthropic surfaces want. Every failure is invalid_request: an empty
// body, malformed JSON or trailing data, and a value of the wrong type
// (naming its field in details.field).
func DecodeJSON(c echo.Context, v any) error { return decode(c, v, false) }

// DecodeStrictJSON is DecodeJSON for closed objects: a field v does not
// name is invalid_request naming that field.
func DecodeStrictJSON(c echo.Context, v any) error { return decode(c, v, true) }

// ReadBody returns the request body's bytes for a handler that decodes
// them itself (Stack B's models:invoke and policy:check read nested closed
// objects field by field). A body BodyRules buffered is not copied again;
// it is left read to its end, as reading it here would. A read failure is
// invalid_request.
func ReadBody(c echo.Context) ([]byte, error) {
	if b, ok := buffered(c.Request()); ok {
		_, _ = b.Seek(0, io.SeekEnd)
		return b.raw, nil
	}
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, core.Invalid("", "could not read the request body: %v", err)
	}
	return raw, nil
}

func decode(c echo.Context, v any, strict bool) error {
	raw, err := ReadBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return core.Invalid("", "a JSON body is required")
	}
	if !strict {
		// One pass over bytes already in memory; any syntax error (data
		// after the value included) is worded by the decoder below, as
		// before.
		err := json.Unmarshal(raw, v)
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			if err != nil {
				return decodeError(err)
			}
			return nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return core.Invalid("", "malformed JSON: data after the JSON value")
	}
	return nil
}

// decodeError names the field of a decode error where Go says it.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		name := te.Field
		if name == "" {
			name = "the body"
		}
		return core.Invalid(te.Field, "%s has the wrong type (want %s)", name, te.Type)
	}
	if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(s, `"`)
		return core.Invalid(field, "unknown field %s", field)
	}
	return core.Invalid("", "malformed JSON: %v", err)
}

// DecodeEnvelope decodes a body that wraps one object under key, as
// {"agent": {...}}, and returns the object. Decoding is DecodeJSON's (the
// top level and the object are open); a body without key, or with key
// null, is invalid_request "<key> is required" naming key.
func DecodeEnvelope[T any](c echo.Context, key string) (T, error) {
	return decodeEnvelope[T](c, key, false)
}

// DecodeStrictEnvelope is DecodeEnvelope for closed objects: a field the
// envelope or T does not name is invalid_request, as with
// DecodeStrictJSON.
func DecodeStrictEnvelope[T any](c echo.Context, key string) (T, error) {
	return decodeEnvelope[T](c, key, true)
}

// envelopeTypes holds, per object type and key, the struct type
// {Value *T `json:"<key>"`} an envelope decodes into. Building it with
// reflect (once) keeps encoding/json doing the work: a wrong type is named
// by its whole path ("agent.version") and an unknown field is refused, as
// when each handler declared that struct itself.
var envelopeTypes sync.Map // envelopeType → reflect.Type

type envelopeType struct {
	of  reflect.Type
	key string
}

func decodeEnvelope[T any](c echo.Context, key string, strict bool) (T, error) {
	var zero T
	k := envelopeType{of: reflect.TypeFor[T](), key: key}
	st, ok := envelopeTypes.Load(k)
	if !ok {
		st, _ = envelopeTypes.LoadOrStore(k, reflect.StructOf([]reflect.StructField{{
			Name: "Value",
			Type: reflect.PointerTo(k.of),
			Tag:  reflect.StructTag(`json:"` + key + `"`),
		}}))
	}
	env := reflect.New(st.(reflect.Type))
	if err := decode(c, env.Interface(), strict); err != nil {
		return zero, err
	}
	v := env.Elem().Field(0)
	if v.IsNil() {
		return zero, core.Invalid(key, "%s is required", key)
	}
	return *v.Interface().(*T), nil
}
