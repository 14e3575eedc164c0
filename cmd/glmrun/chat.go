package main

import (
	"io"

	"github.com/glmrun/glmrun/chat"
)

// renderChat renders the single chat turn (optional system message + the
// user prompt) with the GLM template and the generation prompt.
func renderChat(o *options) (string, error) {
	var msgs []chat.Message
	if o.system != "" {
		msgs = append(msgs, chat.Message{Role: "system", Content: o.system})
	}
	msgs = append(msgs, chat.Message{Role: "user", Content: o.prompt})
	return chat.Render(msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: o.reasoning != "off"})
}

// newChatSink returns a sink that splits reasoning from the answer. With
// thinking on, the generation prompt ends inside <think>, so the output
// starts in reasoning.
func newChatSink(out, think io.Writer, stops []string, thinking bool) *textSink {
	p := chat.NewReasoningParser(thinking)
	return &textSink{out: out, think: think, stops: stops, parse: p.Add, flush: p.Flush}
}
