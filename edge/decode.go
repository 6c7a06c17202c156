package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

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

func decode(c echo.Context, v any, strict bool) error {
	var raw []byte
	if b, ok := buffered(c.Request()); ok {
		// BodyRules read it: take its bytes, and leave it read to its end
		// as reading it here would.
		raw = b.raw
		_, _ = b.Seek(0, io.SeekEnd)
	} else {
		var err error
		if raw, err = io.ReadAll(c.Request().Body); err != nil {
			return core.Invalid("", "could not read the request body: %v", err)
		}
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
