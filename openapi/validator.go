package openapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/pb33f/jsonschema/v6"
	"github.com/pb33f/jsonschema/v6/kind"
	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// FieldError is why a request body does not fit its schema. Field is the
// JSON path of the offending value ("input.text",
// "request.generation.temperature", "request.input.messages[0].role"), empty
// when the body as a whole is wrong (malformed JSON, missing body). The
// router answers it as 400 invalid_request with details.field = Field.
type FieldError struct {
	Field   string
	Message string
	// Unavailable, when set, says the body could not be checked at all:
	// the operation's schema did not compile, a defect of the embedded
	// document that CompileAll catches in tests. It is the server's error,
	// not the client's (the edge answers 500).
	Unavailable error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Operation is one operation of a document.
type Operation struct {
	OperationID string
	Method      string
	// Path is the document's path template, e.g. "/v1/runs/{run_id}:cancel".
	Path string
}

// Validator checks requests and responses against one stack's document.
// It is immutable after NewValidator and safe for concurrent use.
//
// Request bodies are checked with JSON Schemas compiled once per operation
// (libopenapi builds the model, libopenapi-validator renders and compiles
// each schema); a body the fast path (fastraw.go) can tell fits costs a
// route match and one pass over its bytes, anything else one JSON decode
// and one schema walk by the library. BenchmarkValidateRequest (a full createRun body, ~400 bytes)
// measures about 52 µs, 10 KiB and 182 allocations per request on an AMD
// EPYC core (go test -bench, 2 vCPU); a route without a JSON body costs
// about 0.7 µs and no allocation.
type Validator struct {
	stack string
	ops   []*operation
	byID  map[string]*operation
	// byMethod holds the operations of each method, most specific path
	// template first.
	byMethod map[string][]*operation
	// spec is the document, parsed again when response schemas are first
	// needed (in tests). The parsed model is held weakly: several MiB of
	// heap that a burst of uses shares and an idle node gives back.
	spec     []byte
	modelMu  sync.Mutex
	model    weak.Pointer[libopenapi.DocumentModel[v3.Document]]
	respOnce sync.Once
	respAll  map[string]map[string]map[string]*jsonschema.Schema
	respErr  error
}

type operation struct {
	Operation
	segs         []pathSeg
	literalChars int
	hasBody      bool // the operation takes a JSON request body
	bodyRequired bool
	// fast judges a body from its bytes (fastraw.go); nil when the schema
	// uses a keyword it does not handle, and the library decides every body.
	fast *fastSchema
	// body is the library's compiled schema, which words every error. It
	// is compiled when the validator is built (fast is derived from it); an
	// operation with a fast path then lets it go and compiles it again, from
	// a fresh parse of the document, for the first body the fast path does
	// not accept — usually a client's mistake. The compiled schemas are most
	// of an idle node's live heap (~3 MB of ~5.6 MB), and a body that fits,
	// the normal case under load, never needs them.
	bodyOnce    sync.Once
	body        *jsonschema.Schema // after bodyOnce; nil when hasBody is false
	bodyErr     error
	compileBody func() (*jsonschema.Schema, error)
	query       []queryParam
	// responses maps a status ("200", "4XX", "default") to media type to
	// schema; a nil schema means the media type is declared with no JSON
	// schema to check (SSE, text, YAML). Response schemas only serve tests
	// and conformance, so they are compiled on first use (compileResponses)
	// rather than on the node's startup path.
	responses        map[string]map[string]*jsonschema.Schema
	respOnce         sync.Once
	respErr          error
	compileResponses func() (map[string]map[string]*jsonschema.Schema, error)
}

// bodySchema returns the library's schema of the request body, compiling
// it once on first use when the validator let it go.
func (o *operation) bodySchema() (*jsonschema.Schema, error) {
	o.bodyOnce.Do(func() {
		if o.hasBody {
			o.body, o.bodyErr = o.compileBody()
		}
	})
	return o.body, o.bodyErr
}

// resp compiles the operation's response schemas once.
func (o *operation) resp() (map[string]map[string]*jsonschema.Schema, error) {
	o.respOnce.Do(func() { o.responses, o.respErr = o.compileResponses() })
	return o.responses, o.respErr
}

type queryParam struct {
	name   string
	typ    string // integer, number, boolean or string
	schema *jsonschema.Schema
}

type pathSeg struct {
	literal        bool
	text           string // the literal segment
	prefix, suffix string // around the {param} of a templated segment
}

var (
	validatorsMu sync.Mutex
	validators   = map[string]*Validator{}
)

// NewValidator returns the validator of stack. Building one parses the
// document and compiles every request body schema (tens of milliseconds),
// so it is done once per stack and shared. Response schemas are compiled
// on first use; CompileAll compiles them all now.
func NewValidator(stack string) (*Validator, error) {
	validatorsMu.Lock()
	defer validatorsMu.Unlock()
	if v, ok := validators[stack]; ok {
		return v, nil
	}
	spec, err := Document(stack)
	if err != nil {
		return nil, err
	}
	v, err := buildValidator(stack, spec)
	if err != nil {
		return nil, err
	}
	validators[stack] = v
	return v, nil
}

// buildModel parses a document into libopenapi's model.
func buildModel(stack string, spec []byte) (*libopenapi.DocumentModel[v3.Document], error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi %s: parse: %w", stack, err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("openapi %s: build model: %w", stack, err)
	}
	return model, nil
}

// doc returns the parsed document: the one a recent first use built if the
// GC has not reclaimed it yet, else a fresh parse.
func (v *Validator) doc() (*libopenapi.DocumentModel[v3.Document], error) {
	v.modelMu.Lock()
	defer v.modelMu.Unlock()
	if m := v.model.Value(); m != nil {
		return m, nil
	}
	m, err := buildModel(v.stack, v.spec)
	if err != nil {
		return nil, err
	}
	v.model = weak.Make(m)
	return m, nil
}

// requestBodyOf finds the JSON request body of method path in a document.
func requestBodyOf(model *libopenapi.DocumentModel[v3.Document], method, path string) (*v3.RequestBody, *base.SchemaProxy) {
	item, ok := model.Model.Paths.PathItems.Get(path)
	if !ok || item == nil {
		return nil, nil
	}
	op, ok := item.GetOperations().Get(strings.ToLower(method))
	if !ok || op == nil || op.RequestBody == nil || op.RequestBody.Content == nil {
		return nil, nil
	}
	mt, ok := op.RequestBody.Content.Get("application/json")
	if !ok || mt.Schema == nil {
		return op.RequestBody, nil
	}
	return op.RequestBody, mt.Schema
}

// compilerFor returns the schema compiler of a stack's document.
func compilerFor(stack string) compileFunc {
	opts := config.NewValidationOptions(config.WithFormatAssertions())
	const version = float32(3.1)
	return func(s *base.SchemaProxy, purpose schema_validation.SchemaValidationPurpose, where string) (*jsonschema.Schema, error) {
		if s == nil {
			return nil, nil
		}
		sch := s.Schema()
		if sch == nil {
			return nil, fmt.Errorf("openapi %s: %s: schema does not resolve: %v", stack, where, s.GetBuildError())
		}
		c, err := schema_validation.CompileSchemaForValidation(sch, purpose, opts, version)
		if err != nil {
			return nil, fmt.Errorf("openapi %s: %s: compile: %w", stack, where, err)
		}
		return c.CompiledSchema, nil
	}
}

func buildValidator(stack string, spec []byte) (*Validator, error) {
	model, err := buildModel(stack, spec)
	if err != nil {
		return nil, err
	}
	compile := compilerFor(stack)
	v := &Validator{stack: stack, spec: spec, byID: map[string]*operation{}, byMethod: map[string][]*operation{}}
	for p := model.Model.Paths.PathItems.First(); p != nil; p = p.Next() {
		path, item := p.Key(), p.Value()
		for o := item.GetOperations().First(); o != nil; o = o.Next() {
			method, op := strings.ToUpper(o.Key()), o.Value()
			where := method + " " + path
			if op.OperationId == "" {
				return nil, fmt.Errorf("openapi %s: %s has no operationId", stack, where)
			}
			if _, dup := v.byID[op.OperationId]; dup {
				return nil, fmt.Errorf("openapi %s: operationId %s used twice", stack, op.OperationId)
			}
			o := &operation{Operation: Operation{OperationID: op.OperationId, Method: method, Path: path}}
			o.segs, o.literalChars = parseTemplate(path)
			if rb, sp := requestBodyOf(model, method, path); sp != nil {
				if sp.Schema() == nil {
					return nil, fmt.Errorf("openapi %s: %s request: schema does not resolve: %v", stack, where, sp.GetBuildError())
				}
				o.hasBody = true
				o.bodyRequired = rb.Required != nil && *rb.Required
				body, err := compile(sp, schema_validation.SchemaValidationPurposeRequestBody, where+" request")
				if err != nil {
					return nil, err
				}
				if o.fast = compileFast(body); o.fast == nil {
					o.bodyOnce.Do(func() { o.body = body }) // the library decides every body: keep it
				} else {
					o.compileBody = v.bodyCompiler(method, path, where+" request")
				}
			}
			for _, prm := range append(append([]*v3.Parameter{}, item.Parameters...), op.Parameters...) {
				if prm == nil || prm.In != "query" || prm.Schema == nil {
					continue
				}
				qs, err := compile(prm.Schema, schema_validation.SchemaValidationPurposeGeneric, where+" query "+prm.Name)
				if err != nil {
					return nil, err
				}
				o.query = append(o.query, queryParam{name: prm.Name, typ: scalarType(prm.Schema.Schema()), schema: qs})
			}
			id := op.OperationId
			o.compileResponses = func() (map[string]map[string]*jsonschema.Schema, error) { return v.responsesOf(id) }
			v.ops = append(v.ops, o)
			v.byID[o.OperationID] = o
			v.byMethod[method] = append(v.byMethod[method], o)
		}
	}
	for _, ops := range v.byMethod {
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].literalChars > ops[j].literalChars })
	}
	// Every request body was compiled just now, while the node starts, and
	// the compiler (whose options carry libopenapi-validator's schema and
	// rendered-document caches) and the model are let go: nothing kept
	// refers to them. Compiling on each operation's first request instead
	// saved ~4 MiB of an idle node but cost ~25 MiB under load: the
	// compile's tens of MB of temporaries land while GOGC is raised for a
	// small live heap (TuneGC), so the heap grows to several times the
	// burst and is returned to the OS slowly (measured black-box at 1,000
	// proxied requests/s: anonymous memory 31 → 53–61 MiB). A body that
	// fits takes the fast path, so only a misfit compiles again.
	v.model = weak.Make(model)
	return v, nil
}

// bodyCompiler compiles the request body schema of method path from the
// document, parsed again unless a recent use's parse is still alive. It
// holds nothing of the parse, so the model can be collected between uses.
func (v *Validator) bodyCompiler(method, path, where string) func() (*jsonschema.Schema, error) {
	return func() (*jsonschema.Schema, error) {
		model, err := v.doc()
		if err != nil {
			return nil, err
		}
		_, sp := requestBodyOf(model, method, path)
		if sp == nil {
			return nil, fmt.Errorf("openapi %s: %s: no JSON body in the document", v.stack, where)
		}
		return compilerFor(v.stack)(sp, schema_validation.SchemaValidationPurposeRequestBody, where)
	}
}

// responsesOf returns an operation's compiled response schemas. They only
// serve tests and conformance, so they are compiled on first use; doing so
// parses the document again rather than keeping libopenapi's model of it
// alive for the node's lifetime (several MiB of heap every GC cycle marks,
// and a good part of an idle node's memory).
func (v *Validator) responsesOf(operationID string) (map[string]map[string]*jsonschema.Schema, error) {
	v.respOnce.Do(func() {
		model, err := v.doc()
		if err != nil {
			v.respErr = err
			return
		}
		v.respAll, v.respErr = compileAllResponses(v.stack, model)
	})
	if v.respErr != nil {
		return nil, v.respErr
	}
	return v.respAll[operationID], nil
}

// compileAllResponses compiles the response schemas of every operation
// of a document: operation id → status → media type → schema.
func compileAllResponses(stack string, model *libopenapi.DocumentModel[v3.Document]) (map[string]map[string]map[string]*jsonschema.Schema, error) {
	compile := compilerFor(stack)
	all := map[string]map[string]map[string]*jsonschema.Schema{}
	for p := model.Model.Paths.PathItems.First(); p != nil; p = p.Next() {
		path, item := p.Key(), p.Value()
		for o := item.GetOperations().First(); o != nil; o = o.Next() {
			op := o.Value()
			where := strings.ToUpper(o.Key()) + " " + path
			out := map[string]map[string]*jsonschema.Schema{}
			all[op.OperationId] = out
			if op.Responses == nil {
				continue
			}
			for c := op.Responses.Codes.First(); c != nil; c = c.Next() {
				media, err := compileResponse(c.Value(), compile, where+" "+c.Key())
				if err != nil {
					return nil, err
				}
				out[strings.ToUpper(c.Key())] = media
			}
			if op.Responses.Default != nil {
				media, err := compileResponse(op.Responses.Default, compile, where+" default")
				if err != nil {
					return nil, err
				}
				out["default"] = media
			}
		}
	}
	return all, nil
}

type compileFunc func(*base.SchemaProxy, schema_validation.SchemaValidationPurpose, string) (*jsonschema.Schema, error)

func compileResponse(r *v3.Response, compile compileFunc, where string) (map[string]*jsonschema.Schema, error) {
	media := map[string]*jsonschema.Schema{}
	if r == nil || r.Content == nil {
		return media, nil
	}
	for m := r.Content.First(); m != nil; m = m.Next() {
		var sch *jsonschema.Schema
		if isJSONMedia(m.Key()) && m.Value().Schema != nil {
			var err error
			if sch, err = compile(m.Value().Schema, schema_validation.SchemaValidationPurposeResponseBody, where+" "+m.Key()); err != nil {
				return nil, err
			}
		}
		media[m.Key()] = sch
	}
	return media, nil
}

// scalarType is the JSON type a query string is converted to.
func scalarType(s *base.Schema) string {
	if s == nil {
		return "string"
	}
	for _, t := range s.Type {
		switch t {
		case "integer", "number", "boolean":
			return t
		}
	}
	return "string"
}

func parseTemplate(path string) ([]pathSeg, int) {
	parts := strings.Split(path, "/")
	segs := make([]pathSeg, len(parts))
	n := 0
	for i, p := range parts {
		open, close := strings.IndexByte(p, '{'), strings.IndexByte(p, '}')
		if open < 0 || close < open {
			segs[i] = pathSeg{literal: true, text: p}
			n += len(p)
			continue
		}
		segs[i] = pathSeg{prefix: p[:open], suffix: p[close+1:]}
		n += len(p) - (close - open + 1)
	}
	return segs, n
}

// match reports whether a request path fits the template, segment by
// segment, without allocating.
func (o *operation) match(path string) bool {
	for i, s := range o.segs {
		var part string
		if i == len(o.segs)-1 {
			part = path
			if strings.IndexByte(path, '/') >= 0 {
				return false
			}
		} else {
			j := strings.IndexByte(path, '/')
			if j < 0 {
				return false
			}
			part, path = path[:j], path[j+1:]
		}
		if s.literal {
			if part != s.text {
				return false
			}
			continue
		}
		if len(part) <= len(s.prefix)+len(s.suffix) || !strings.HasPrefix(part, s.prefix) || !strings.HasSuffix(part, s.suffix) {
			return false
		}
	}
	return true
}

// find returns the operation of method and path, or nil.
func (v *Validator) find(method, path string) *operation {
	for _, o := range v.byMethod[method] {
		if o.match(path) {
			return o
		}
	}
	return nil
}

// Stack is the stack whose document v checks against.
func (v *Validator) Stack() string { return v.stack }

// Operations lists every operation of the document, in document order.
func (v *Validator) Operations() []Operation {
	out := make([]Operation, len(v.ops))
	for i, o := range v.ops {
		out[i] = o.Operation
	}
	return out
}

// Match returns the operation a request of method and path would reach.
func (v *Validator) Match(method, path string) (Operation, bool) {
	if o := v.find(method, path); o != nil {
		return o.Operation, true
	}
	return Operation{}, false
}

// HasRequestBody reports whether the operation takes a JSON body.
func (v *Validator) HasRequestBody(operationID string) bool {
	o := v.byID[operationID]
	return o != nil && o.hasBody
}

// ResponseStatuses lists the documented statuses of an operation ("200",
// "4XX", "default"), sorted.
func (v *Validator) ResponseStatuses(operationID string) []string {
	o := v.byID[operationID]
	if o == nil {
		return nil
	}
	responses, _ := o.resp()
	return slices.Sorted(maps.Keys(responses))
}

// ResponseMediaTypes lists the media types documented for one status of an
// operation, sorted.
func (v *Validator) ResponseMediaTypes(operationID string, status int) []string {
	o := v.byID[operationID]
	if o == nil {
		return nil
	}
	media, _ := o.responseFor(status)
	return slices.Sorted(maps.Keys(media))
}

// ValidateRequest checks r against the operation it reaches: the query
// parameters the operation declares and, when it takes a JSON body, the
// body. It returns nil when r fits, when no operation matches (the router
// answers 404), when the body is not JSON (the handler answers 415) and
// when reading the body fails (the handler sees the same error, e.g. the
// 413 of a size limit). The body is restored, so the handler reads it again.
func (v *Validator) ValidateRequest(r *http.Request) *FieldError {
	return v.validateRequest(r, nil, false)
}

// ValidateRequestBytes is ValidateRequest for a request whose body has
// already been read into body (the edge buffers it once): r.Body is not
// read, and body is checked as it is.
func (v *Validator) ValidateRequestBytes(r *http.Request, body []byte) *FieldError {
	return v.validateRequest(r, body, true)
}

func (v *Validator) validateRequest(r *http.Request, body []byte, buffered bool) *FieldError {
	o := v.find(r.Method, r.URL.Path)
	if o == nil {
		return nil
	}
	if len(o.query) > 0 && r.URL.RawQuery != "" {
		if fe := o.validateQuery(r); fe != nil {
			return fe
		}
	}
	if !o.hasBody {
		return nil
	}
	if buffered && len(body) == 0 || !buffered && (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) {
		if o.bodyRequired {
			return &FieldError{Message: "a JSON request body is required"}
		}
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSONMedia(ct) {
		return nil
	}
	if !buffered {
		var err error
		body, err = io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			return nil
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if o.bodyRequired {
			return &FieldError{Message: "a JSON request body is required"}
		}
		return nil
	}
	return o.validateBody(body)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func (o *operation) validateQuery(r *http.Request) *FieldError {
	q := r.URL.Query()
	for _, p := range o.query {
		vals, ok := q[p.name]
		if !ok || len(vals) == 0 {
			continue
		}
		raw := vals[0]
		var val any = raw
		switch p.typ {
		case "integer":
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				return &FieldError{Field: p.name, Message: "must be an integer"}
			}
			val = n
		case "number":
			f, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				return &FieldError{Field: p.name, Message: "must be a number"}
			}
			val = f
		case "boolean":
			b, err := strconv.ParseBool(raw)
			if err != nil {
				return &FieldError{Field: p.name, Message: "must be true or false"}
			}
			val = b
		}
		if err := p.schema.Validate(val); err != nil {
			fe := fieldErrorOf(err, val)
			fe.Field = joinField(p.name, fe.Field)
			return fe
		}
	}
	return nil
}

func joinField(a, b string) string {
	switch {
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

// ValidateRequestBody checks a JSON body against the request schema of an
// operation. It returns an error naming an unknown operation or one
// without a JSON body.
func (v *Validator) ValidateRequestBody(operationID string, body []byte) *FieldError {
	o := v.byID[operationID]
	if o == nil {
		return &FieldError{Message: fmt.Sprintf("unknown operation %s in %s", operationID, v.stack)}
	}
	if !o.hasBody {
		return &FieldError{Message: fmt.Sprintf("operation %s takes no JSON body", operationID)}
	}
	return o.validateBody(body)
}

// validateBody checks body: the fast path accepts, from the bytes, what
// it can tell fits; everything else is decoded and judged by the library,
// which words every error.
func (o *operation) validateBody(body []byte) *FieldError {
	if o.fast != nil && o.fast.checkJSON(body) == fits {
		return nil
	}
	schema, err := o.bodySchema()
	if err != nil {
		return &FieldError{Message: "request schema unavailable", Unavailable: err}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return &FieldError{Message: "malformed JSON: " + err.Error()}
	}
	if err := schema.Validate(inst); err != nil {
		return fieldErrorOf(err, inst)
	}
	return nil
}

// ValidateResponse checks a live answer against the operation req reached:
// the status must be documented, the media type declared for it, and a
// JSON body must fit the schema. The body is restored for the caller.
func (v *Validator) ValidateResponse(req *http.Request, resp *http.Response) error {
	o := v.find(req.Method, req.URL.Path)
	if o == nil {
		return fmt.Errorf("%s %s: no operation in %s", req.Method, req.URL.Path, v.stack)
	}
	var body []byte
	if resp.Body != nil {
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: read response body: %w", o.OperationID, err)
		}
		body = b
	}
	return v.validateResponse(o, resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

// ValidateResponseBody checks a response body of an operation for a status
// and content type (empty means application/json).
func (v *Validator) ValidateResponseBody(operationID string, status int, contentType string, body []byte) error {
	o := v.byID[operationID]
	if o == nil {
		return fmt.Errorf("unknown operation %s in %s", operationID, v.stack)
	}
	if contentType == "" {
		contentType = "application/json"
	}
	return v.validateResponse(o, status, contentType, body)
}

func (o *operation) responseFor(status int) (map[string]*jsonschema.Schema, bool) {
	responses, err := o.resp()
	if err != nil {
		return nil, false
	}
	code := strconv.Itoa(status)
	if m, ok := responses[code]; ok {
		return m, true
	}
	if m, ok := responses[code[:1]+"XX"]; ok {
		return m, true
	}
	m, ok := responses["default"]
	return m, ok
}

func (v *Validator) validateResponse(o *operation, status int, contentType string, body []byte) error {
	if _, err := o.resp(); err != nil {
		return err
	}
	media, ok := o.responseFor(status)
	if !ok {
		return fmt.Errorf("%s: status %d is not documented", o.OperationID, status)
	}
	if len(media) == 0 {
		return nil
	}
	mt := "application/json"
	if contentType != "" {
		parsed, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return fmt.Errorf("%s %d: bad Content-Type %q", o.OperationID, status, contentType)
		}
		mt = parsed
	}
	sch, declared := media[mt]
	if !declared {
		names := slices.Sorted(maps.Keys(media))
		return fmt.Errorf("%s %d: Content-Type %s not documented (want %s)", o.OperationID, status, mt, strings.Join(names, ", "))
	}
	if sch == nil {
		return nil
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %d: malformed JSON: %w", o.OperationID, status, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s %d: %s", o.OperationID, status, describeAll(err, inst))
	}
	return nil
}

func isJSONMedia(ct string) bool {
	mt := ct
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		mt = ct[:i]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

var printer = message.NewPrinter(language.English)

// fieldErrorOf turns a schema error into the FieldError of its most
// telling leaf: the deepest instance location, so that "input.text is not
// a string" wins over "input does not match".
func fieldErrorOf(err error, inst any) *FieldError {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &FieldError{Message: err.Error()}
	}
	best, bestDepth := (*jsonschema.ValidationError)(nil), -1
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if d := leafDepth(e); d > bestDepth {
				best, bestDepth = e, d
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if best == nil {
		best = ve
	}
	return leafFieldError(best, inst)
}

func leafDepth(e *jsonschema.ValidationError) int {
	d := len(e.InstanceLocation) * 2
	switch e.ErrorKind.(type) {
	case *kind.Required, *kind.AdditionalProperties:
		d += 2
	case *kind.Type, *kind.Enum, *kind.Const:
		d++ // a concrete complaint beats a structural one at the same depth
	}
	return d
}

func leafFieldError(e *jsonschema.ValidationError, inst any) *FieldError {
	loc := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return &FieldError{Field: fieldPath(inst, append(append([]string{}, loc...), k.Missing[0])), Message: "is required"}
	case *kind.AdditionalProperties:
		return &FieldError{Field: fieldPath(inst, append(append([]string{}, loc...), k.Properties[0])),
			Message: "is not allowed (closed object)"}
	case *kind.Type:
		return &FieldError{Field: fieldPath(inst, loc), Message: fmt.Sprintf("must be %s, got %s", strings.Join(k.Want, " or "), k.Got)}
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		return &FieldError{Field: fieldPath(inst, loc), Message: "must be one of: " + strings.Join(want, ", ")}
	case *kind.Const:
		return &FieldError{Field: fieldPath(inst, loc), Message: fmt.Sprintf("must be %v", k.Want)}
	}
	return &FieldError{Field: fieldPath(inst, loc), Message: e.ErrorKind.LocalizedString(printer)}
}

// fieldPath renders an instance location as "a.b[0].c", using the instance
// to tell array indexes from object keys.
func fieldPath(inst any, loc []string) string {
	var sb strings.Builder
	cur := inst
	for _, seg := range loc {
		switch c := cur.(type) {
		case []any:
			sb.WriteByte('[')
			sb.WriteString(seg)
			sb.WriteByte(']')
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			} else {
				cur = nil
			}
		default:
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(seg)
			if m, ok := cur.(map[string]any); ok {
				cur = m[seg]
			} else {
				cur = nil
			}
		}
	}
	return sb.String()
}

// describeAll lists every leaf error, for test failures.
func describeAll(err error, inst any) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, leafFieldError(e, inst).Error())
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return strings.Join(out, "; ")
}

// CompileAll compiles every schema now — request bodies and responses, which
// are otherwise compiled on first use — and reports the first that does not
// compile.
func (v *Validator) CompileAll() error {
	for _, o := range v.ops {
		if _, err := o.bodySchema(); err != nil {
			return err
		}
		if _, err := o.resp(); err != nil {
			return err
		}
	}
	return nil
}
