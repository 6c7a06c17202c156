package provider

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentos/agentos/core"
)

// readSSE hands upstream events to fn: a last one without its blank line
// counts, fn's stop and error end the read, and a stream over the bound
// is the backend's transport failure (dependency_unavailable), not a
// buffer without end.
func TestReadSSE_UpstreamStreams(t *testing.T) {
	stop := errors.New("stop here")
	tests := []struct {
		name   string
		in     string
		stopAt string // fn answers more=false on this data
		failAt string // fn fails with stop on this data
		want   []string
		code   string // the error's code; "" no error
	}{
		{name: "events and a last one without blank line", in: "event: a\ndata: 1\n\ndata: 2\ndata: 3",
			want: []string{"1", "2\n3"}},
		{name: "CRLF", in: "data: 1\r\n\r\ndata: [DONE]\r\n\r\n", want: []string{"1", "[DONE]"}},
		{name: "fn stops", in: "data: 1\n\ndata: 2\n\n", stopAt: "1", want: []string{"1"}},
		{name: "fn fails", in: "data: 1\n\ndata: 2\n\n", failAt: "1", want: []string{"1"}, code: "stop"},
		{name: "a line over the bound", in: "data: 1\n\ndata: " + strings.Repeat("x", upstreamEventLimit) + "\n\n",
			want: []string{"1"}, code: core.CodeDependencyUnavailable},
	}
	for _, tt := range tests {
		var got []string
		err := readSSE(context.Background(), "up", strings.NewReader(tt.in), func(data []byte) (bool, error) {
			got = append(got, string(data))
			if string(data) == tt.failAt {
				return false, stop
			}
			return string(data) != tt.stopAt, nil
		})
		switch {
		case tt.code == "" && err != nil, tt.code == "stop" && err != stop,
			tt.code != "" && tt.code != "stop" && core.ErrorCode(err) != tt.code:
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.code)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: events %q, want %q", tt.name, got, tt.want)
		}
	}
}
