// Package examples embeds the golden payloads of the contract: one JSON
// file per request or response example, each valid against its operation
// in openapi/. The node serves them at /examples/ and /examples/{name}.json;
// the conformance suite proves every one against the documents.
//
// index.json says which operation, stack, kind and status each file belongs
// to, so nothing is guessed from file names. A file shared by several ports
// (health probes, document endpoints) lists every stack it belongs to.
package examples

import (
	"embed"
	"encoding/json"
	"fmt"
	"sync"
)

//go:embed *.json
var files embed.FS

// Kinds of example.
const (
	KindRequest  = "request"
	KindResponse = "response"
)

// Entry describes one example. Its JSON form is an item of the served
// index {"examples": [{"name", "operation_id", "kind", "status"}]}.
type Entry struct {
	// Name is the example's name; the file is Name + ".json".
	Name        string `json:"name"`
	OperationID string `json:"operation_id"`
	// Kind is "request" or "response".
	Kind string `json:"kind"`
	// Status is the HTTP status of a response example, 0 for a request.
	Status int `json:"status,omitempty"`
	// Stack is the port's document the example belongs to: "stack-a",
	// "stack-b" or "federation".
	Stack  string `json:"-"`
	Method string `json:"-"`
	// Path is the operation's path template in the document.
	Path string `json:"-"`
}

type indexEntry struct {
	Name        string   `json:"name"`
	OperationID string   `json:"operation_id"`
	Kind        string   `json:"kind"`
	Status      int      `json:"status"`
	Stacks      []string `json:"stacks"`
	Method      string   `json:"method"`
	Path        string   `json:"path"`
}

var (
	loadOnce sync.Once
	byStack  map[string][]Entry
	loadErr  error
)

func load() {
	b, err := files.ReadFile("index.json")
	if err != nil {
		loadErr = fmt.Errorf("examples: read index: %w", err)
		return
	}
	var idx struct {
		Examples []indexEntry `json:"examples"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		loadErr = fmt.Errorf("examples: parse index: %w", err)
		return
	}
	byStack = map[string][]Entry{}
	for _, e := range idx.Examples {
		for _, s := range e.Stacks {
			byStack[s] = append(byStack[s], Entry{Name: e.Name, OperationID: e.OperationID, Kind: e.Kind,
				Status: e.Status, Stack: s, Method: e.Method, Path: e.Path})
		}
	}
}

// Index lists the examples of stack ("stack-a", "stack-b" or "federation")
// in index order; nil for an unknown stack. The slice is a copy.
func Index(stack string) []Entry {
	loadOnce.Do(load)
	return append([]Entry(nil), byStack[stack]...)
}

// Err reports whether the embedded index failed to load; the conformance
// suite calls it so a broken index fails loudly instead of listing nothing.
func Err() error {
	loadOnce.Do(load)
	return loadErr
}

// Get returns the payload of the example called name (without ".json").
func Get(name string) ([]byte, bool) {
	if name == "" || name == "index" {
		return nil, false
	}
	b, err := files.ReadFile(name + ".json")
	if err != nil {
		return nil, false
	}
	return b, true
}
