package server

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingWriter records the Write and Flush calls a responder makes;
// onWrite (when set) runs before each Write with its 1-based number and
// may fail it.
type countingWriter struct {
	*httptest.ResponseRecorder
	writes, flushes int
	onWrite         func(n int) error
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.writes++
	if w.onWrite != nil {
		if err := w.onWrite(w.writes); err != nil {
			return 0, err
		}
	}
	return w.ResponseRecorder.Write(b)
}

func (w *countingWriter) Flush() {
	w.flushes++
	w.ResponseRecorder.Flush()
}

// newTestResponder is a responder for a streamed request of n choices
// whose events the test pushes itself; it returns the choices' shared
// notify channel.
func newTestResponder(w http.ResponseWriter, n int, isChat bool) (*responder, chan struct{}) {
	notify := make(chan struct{}, 1)
	choices := make([]*choice, n)
	for i := range choices {
		choices[i] = &choice{index: i, st: &stream{notify: notify}}
	}
	o := &responder{
		s: &Server{cfg: resolvedConfig{SSEPingInterval: time.Hour, Log: log.New(io.Discard, "", 0)}},
		w: w, rc: http.NewResponseController(w), isChat: isChat,
		g:  &genRequest{Stream: true, N: n, Logprobs: -1},
		id: "cmpl-0123456789abcdefghijklmnopqrstuv", created: 1763780000, choices: choices, promptN: 1,
	}
	return o, notify
}

// sseTexts lists the "text" of each text_completion frame of body and
// "[DONE]" for the end.
func sseTexts(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for f := range strings.SplitSeq(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		d, ok := strings.CutPrefix(f, "data: ")
		require.True(t, ok, "frame %q", f)
		if d == "[DONE]" {
			out = append(out, d)
			continue
		}
		k := strings.Index(d, `"text":"`)
		require.GreaterOrEqual(t, k, 0, "frame %q", f)
		rest := d[k+len(`"text":"`):]
		out = append(out, rest[:strings.IndexByte(rest, '"')])
	}
	return out
}

// TestResponderCoalescesWrites: the frames of all events one wake-up
// drains, over all choices, leave in one Write and one Flush; the last
// wake-up's frames go out together with [DONE].
func TestResponderCoalescesWrites(t *testing.T) {
	w := &countingWriter{ResponseRecorder: httptest.NewRecorder()}
	o, notify := newTestResponder(w, 2, false)
	c0, c1 := o.choices[0].st, o.choices[1].st
	c0.push(event{Text: "a", Tokens: 1})
	c1.push(event{Text: "x", Tokens: 1})
	c0.push(event{Text: "b", Tokens: 1})
	w.onWrite = func(n int) error {
		if n == 1 { // the second wake-up's events arrive while the first is written
			c1.push(event{Done: true, Finish: finishLength, Text: "y", Tokens: 1})
			c0.push(event{Done: true, Finish: finishLength})
		}
		return nil
	}
	o.run(context.Background(), notify)

	assert.Equal(t, 2, w.writes, "one Write per wake-up")
	assert.Equal(t, 2, w.flushes, "one Flush per wake-up")
	assert.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
	// Per wake-up, choice by choice in index order.
	assert.Equal(t, []string{"a", "b", "x", "", "y", "", "[DONE]"}, sseTexts(t, w.Body.String()))
}

// TestResponderStopsOnWriteError: a failed Write ends the responder at
// once, although its choices have not finished.
func TestResponderStopsOnWriteError(t *testing.T) {
	w := &countingWriter{ResponseRecorder: httptest.NewRecorder()}
	o, notify := newTestResponder(w, 1, true)
	st := o.choices[0].st
	st.push(event{Text: "a", Tokens: 1})
	w.onWrite = func(n int) error {
		st.push(event{Text: "b", Tokens: 1})
		return errors.New("connection reset")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o.run(ctx, notify)
	require.NoError(t, ctx.Err(), "the responder waited for more events after a failed write")
	assert.Equal(t, 1, w.writes)
	assert.Zero(t, w.flushes, "no Flush after a failed Write")
}

// BenchmarkStreamDeltaChunk measures the server's per-token cost of one
// streamed chat content delta: building the chunk, encoding it as an SSE
// frame and handing it to the ResponseWriter (a recorder: no syscalls).
func BenchmarkStreamDeltaChunk(b *testing.B) {
	rec := httptest.NewRecorder()
	o, _ := newTestResponder(rec, 1, true)
	o.g.IncludeUsage = true
	o.id = "chatcmpl-0123456789abcdefghijklmnopqrstuv"
	c := o.choices[0]
	c.started = true
	b.ReportAllocs()
	for b.Loop() {
		rec.Body.Reset()
		o.streamDelta(c, "", " token", false)
		if !o.flush() {
			b.Fatal("write failed")
		}
	}
}
