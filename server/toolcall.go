package server

import (
	"encoding/json"
	"strings"
)

// This file parses GLM-4.7-Flash's tool calls out of the content stream
// (interfaces.md §3.8):
//
//	<tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value>...</tool_call>
//
// Each call becomes an OpenAI tool call {id, type:"function", function:{name,
// arguments}} where arguments is a JSON object as a string. Values that are
// valid JSON other than a bare string (numbers, booleans, null, arrays,
// objects) keep their type, as the template JSON-encodes non-string values;
// everything else is a string.

const (
	tagToolCall    = "<tool_call>"
	tagToolCallEnd = "</tool_call>"
	tagArgKey      = "<arg_key>"
	tagArgKeyEnd   = "</arg_key>"
	tagArgValue    = "<arg_value>"
	tagArgValueEnd = "</arg_value>"
)

// parsedToolCall is one call found in the output.
type parsedToolCall struct {
	ID        string
	Name      string
	Arguments string // a JSON object
}

// toolCallParser splits content into plain text (before the first
// <tool_call>) and tool calls. Text after the first <tool_call> is held until
// Flush, since it belongs to the calls.
type toolCallParser struct {
	pending string // content that may be the start of "<tool_call>"
	inCalls bool
	calls   strings.Builder
}

// Add consumes content and returns the plain text that is certain now.
func (p *toolCallParser) Add(text string) string {
	if p.inCalls {
		p.calls.WriteString(text)
		return ""
	}
	text = p.pending + text
	p.pending = ""
	if k := strings.Index(text, tagToolCall); k >= 0 {
		p.inCalls = true
		p.calls.WriteString(text[k:])
		return text[:k]
	}
	for n := min(len(tagToolCall)-1, len(text)); n > 0; n-- {
		if strings.HasSuffix(text, tagToolCall[:n]) {
			p.pending = text[len(text)-n:]
			return text[:len(text)-n]
		}
	}
	return text
}

// Flush ends the content: it returns the remaining plain text and the calls
// parsed. Text after the calls that is not a call is returned as plain text.
func (p *toolCallParser) Flush() (string, []parsedToolCall) {
	if !p.inCalls {
		t := p.pending
		p.pending = ""
		return t, nil
	}
	calls, rest := parseToolCalls(p.calls.String())
	return rest, calls
}

// parseToolCalls parses consecutive <tool_call> blocks; text that is not
// part of a complete block is returned as rest.
func parseToolCalls(s string) ([]parsedToolCall, string) {
	var calls []parsedToolCall
	var rest strings.Builder
	for {
		k := strings.Index(s, tagToolCall)
		if k < 0 {
			rest.WriteString(s)
			break
		}
		rest.WriteString(s[:k])
		s = s[k+len(tagToolCall):]
		end := strings.Index(s, tagToolCallEnd)
		body := s
		if end >= 0 {
			body, s = s[:end], s[end+len(tagToolCallEnd):]
		} else {
			s = ""
		}
		c, ok := parseOneCall(body)
		if !ok {
			rest.WriteString(tagToolCall + body)
			if end >= 0 {
				rest.WriteString(tagToolCallEnd)
			}
			continue
		}
		calls = append(calls, c)
	}
	return calls, strings.TrimSpace(rest.String())
}

func parseOneCall(body string) (parsedToolCall, bool) {
	name := body
	if k := strings.Index(body, tagArgKey); k >= 0 {
		name, body = body[:k], body[k:]
	} else {
		body = ""
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return parsedToolCall{}, false
	}
	args := map[string]json.RawMessage{}
	var order []string
	for body != "" {
		body = strings.TrimSpace(body)
		if body == "" {
			break
		}
		key, ok := between(&body, tagArgKey, tagArgKeyEnd)
		if !ok {
			return parsedToolCall{}, false
		}
		body = strings.TrimSpace(body)
		val, ok := between(&body, tagArgValue, tagArgValueEnd)
		if !ok {
			return parsedToolCall{}, false
		}
		key = strings.TrimSpace(key)
		if _, dup := args[key]; !dup {
			order = append(order, key)
		}
		args[key] = argValue(val)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(args[k])
	}
	b.WriteByte('}')
	return parsedToolCall{ID: newID("call_")[:29], Name: name, Arguments: b.String()}, true
}

// between cuts open...close off the front of *s and returns the inside.
func between(s *string, open, close string) (string, bool) {
	if !strings.HasPrefix(*s, open) {
		return "", false
	}
	rest := (*s)[len(open):]
	k := strings.Index(rest, close)
	if k < 0 {
		return "", false
	}
	*s = rest[k+len(close):]
	return rest[:k], true
}

// argValue keeps JSON values other than strings as they are and encodes
// everything else as a JSON string.
func argValue(v string) json.RawMessage {
	t := strings.TrimSpace(v)
	if t != "" && t[0] != '"' && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(v)
	return b
}
