// Package openapi embeds the OpenAPI 3.1 documents of the three ports
// (Stack A, Stack B, federation) and validates requests and responses
// against them. The documents are the contract made machine-readable: the
// node serves them at /openapi.yaml and /openapi.json, checks incoming
// bodies with ValidateRequest, and its tests check every answer with
// ValidateResponse.
package openapi

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	yaml "github.com/pb33f/go-yaml"
)

// The stacks, one OpenAPI document each.
const (
	StackA     = "stack-a"
	StackB     = "stack-b"
	Federation = "federation"
)

//go:embed stack-a.yaml stack-b.yaml federation.yaml
var documents embed.FS

// Stacks lists the stacks that have a document, in port order.
func Stacks() []string { return []string{StackA, StackB, Federation} }

// Document returns the OpenAPI document of stack ("stack-a", "stack-b" or
// "federation") as YAML, exactly as committed.
func Document(stack string) ([]byte, error) {
	switch stack {
	case StackA, StackB, Federation:
		return documents.ReadFile(stack + ".yaml")
	}
	return nil, fmt.Errorf("openapi: unknown stack %q (want stack-a, stack-b or federation)", stack)
}

type jsonDoc struct {
	once sync.Once
	b    []byte
	err  error
}

var jsonDocs = map[string]*jsonDoc{StackA: {}, StackB: {}, Federation: {}}

// DocumentJSON returns the document of stack as JSON, keys in the YAML's
// order. It is converted once and cached; callers must not modify the slice.
func DocumentJSON(stack string) ([]byte, error) {
	d, ok := jsonDocs[stack]
	if !ok {
		return nil, fmt.Errorf("openapi: unknown stack %q (want stack-a, stack-b or federation)", stack)
	}
	d.once.Do(func() {
		y, err := Document(stack)
		if err != nil {
			d.err = err
			return
		}
		d.b, d.err = yamlToJSON(y)
	})
	return d.b, d.err
}

// yamlToJSON converts a YAML document to JSON, keeping the order of keys.
func yamlToJSON(y []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(y, &n); err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	var buf bytes.Buffer
	if err := writeJSONNode(&buf, &n); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeJSONNode(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return writeJSONNode(buf, n.Content[0])
	case yaml.AliasNode:
		return writeJSONNode(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(buf, n.Content[i].Value)
			buf.WriteByte(':')
			if err := writeJSONNode(buf, n.Content[i+1]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSONNode(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			buf.WriteString("null")
		case "!!bool":
			b, err := strconv.ParseBool(strings.ToLower(n.Value))
			if err != nil {
				return fmt.Errorf("line %d: bad bool %q", n.Line, n.Value)
			}
			buf.WriteString(strconv.FormatBool(b))
		case "!!int", "!!float":
			var v any
			if err := yaml.Unmarshal([]byte(n.Value), &v); err != nil {
				return fmt.Errorf("line %d: bad number %q", n.Line, n.Value)
			}
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("line %d: number %q: %w", n.Line, n.Value, err)
			}
			buf.Write(b)
		default:
			writeJSONString(buf, n.Value)
		}
	default:
		return fmt.Errorf("line %d: unsupported yaml node kind %d", n.Line, n.Kind)
	}
	return nil
}

// writeJSONString writes s as a JSON string without HTML escaping, so the
// document's `<backend>/<model>` reads as written.
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	buf.Truncate(buf.Len() - 1) // Encode's newline
}
