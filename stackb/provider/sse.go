package provider

import (
	"bufio"
	"bytes"
	"context"
	"io"
)

// readSSE reads a server-sent event stream and hands each event's name and
// data to fn as it arrives, until fn says stop, fn fails, or the stream
// ends. A broken stream is a transport error of backend.
func readSSE(ctx context.Context, backend string, r io.Reader, fn func(event string, data []byte) (more bool, err error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var event string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data == nil {
				event = ""
				continue
			}
			more, err := fn(event, data)
			if err != nil || !more {
				return err
			}
			event, data = "", nil
		case bytes.HasPrefix(line, []byte("event:")):
			event = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			d := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, d...)
		}
	}
	if err := sc.Err(); err != nil {
		return transportError(ctx, backend, err)
	}
	if data != nil {
		// A last event without its blank line.
		_, err := fn(event, data)
		return err
	}
	return nil
}
