package provider

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/agentos/agentos/stackb/wire"
)

// decodeAnswer must read an answer exactly as json.Decoder.Decode did
// before it: the same value, the same error or none, for whole answers,
// answers with bytes after the value, and broken ones.
func TestDecodeAnswer_AsTheDecoder(t *testing.T) {
	good := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi \u00e9"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
	for _, body := range []string{
		good, good + "\n", "  " + good + " \r\n", good + "garbage", good + `{"id":"second"}`,
		`{"id":"c1","choices":"not a list"}`, `{"id":`, ``, `null`, `[]`, strings.Repeat(" ", 5000) + good,
	} {
		var want, got wire.ChatResponse
		werr := json.NewDecoder(strings.NewReader(body)).Decode(&want)
		gerr := decodeAnswer(bytes.NewReader([]byte(body)), &got)
		if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
			t.Errorf("%q: error %v, the Decoder's %v", body, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: decoded %+v, the Decoder %+v", body, got, want)
		}
	}
}
