package openapi

import (
	"errors"
	"runtime"
	"testing"

	"github.com/pb33f/jsonschema/v6"
)

// Every request body schema is compiled when the validator is built, so no
// request pays for a parse and compile under load; an operation with a
// fast path then lets the library's schema go, and nothing the validator
// keeps holds the parsed document. A misfit still gets the library's words.
func TestValidator_CompilesBodiesWhenBuilt(t *testing.T) {
	spec, err := Document(StackB)
	if err != nil {
		t.Fatal(err)
	}
	v, err := buildValidator(StackB, spec) // a private one: NewValidator's is shared
	if err != nil {
		t.Fatal(err)
	}
	bodies := 0
	var chat *operation
	for _, o := range v.ops {
		if !o.hasBody {
			continue
		}
		bodies++
		switch {
		case o.fast == nil && o.body == nil:
			t.Errorf("%s: body schema not compiled when built", o.OperationID)
		case o.fast != nil && o.body != nil:
			t.Errorf("%s: the library's schema is kept beside the fast path", o.OperationID)
		}
		if o.OperationID == "createOpenAIChatCompletion" {
			chat = o
		}
	}
	if bodies < 3 || chat == nil || chat.fast == nil {
		t.Fatalf("only %d operations with a body, or the chat body has no fast path", bodies)
	}
	for i := 0; i < 5 && v.model.Value() != nil; i++ {
		runtime.GC()
	}
	if v.model.Value() != nil {
		t.Fatal("the parsed document outlives the build: something the validator keeps refers to it")
	}
	if fe := v.ValidateRequestBody("createOpenAIChatCompletion", []byte(`{"model":"builtin/echo-1","messages":[{"role":"user","content":"hi"}]}`)); fe != nil || chat.body != nil {
		t.Fatalf("a good body: %+v (library schema compiled: %v)", fe, chat.body != nil)
	}
	if fe := v.ValidateRequestBody("createOpenAIChatCompletion", []byte(`{"model":"builtin/echo-1","messages":"hi"}`)); fe == nil || fe.Field != "messages" {
		t.Fatalf("a bad body: %+v", fe)
	}
	if chat.body == nil {
		t.Fatal("the misfit was judged without the library's schema")
	}
}

// A schema that cannot be compiled is the server's defect: the body is not
// judged (no 400 for the client) and the error says so.
func TestValidator_UncompilableSchemaIsUnavailableNotInvalid(t *testing.T) {
	boom := errors.New("schema does not compile")
	o := &operation{hasBody: true, compileBody: func() (*jsonschema.Schema, error) { return nil, boom }}
	fe := o.validateBody([]byte(`{}`))
	if fe == nil || !errors.Is(fe.Unavailable, boom) {
		t.Fatalf("got %+v, want Unavailable = %v", fe, boom)
	}
}
