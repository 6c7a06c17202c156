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
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return core.Invalid("", "could not read the request body: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return core.Invalid("", "a JSON body is required")
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
