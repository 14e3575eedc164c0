// Package chat renders GLM-4.7-Flash chat prompts and splits the model's
// output into reasoning and content.
//
// Render is a native Go rendering of the model's own Jinja chat template
// (tokenizer.chat_template in the GGUF; a copy is in testdata/template.jinja).
// Its output is byte-for-byte what Hugging Face's apply_chat_template produces
// with that template (trim_blocks, lstrip_blocks, json.dumps-style tojson),
// which testdata/golden.jsonl (made by testdata/gen_golden.py with jinja2)
// checks. No Jinja engine is involved, so only this one template is
// supported; TemplateMatches tells whether a GGUF carries it.
package chat

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ContentPart is one element of an OpenAI-style content array. Only parts of
// Type "text" contribute text; others (images, ...) are skipped, as the
// template does.
type ContentPart struct {
	Type string
	Text string
}

// ToolCall is one function call made by the assistant.
//
// Arguments is the raw JSON of the arguments object, e.g.
// {"city": "Paris", "days": 2}; key order is kept, as the template prints
// the arguments in order. The OpenAI wire form, a JSON string holding that
// object ("{\"city\": ...}"), is accepted too. Empty or null means no
// arguments. String values are printed verbatim, other values as compact
// Python-style JSON (2.5, true, null, [1, 2], {"k": "v"}).
type ToolCall struct {
	Name      string
	Arguments json.RawMessage
}

// Message is one conversation turn.
//
// Role is "system", "user", "assistant" or "tool". Content is the text; Parts,
// when non-nil, is an OpenAI content array used instead (it is an error to set
// both). ReasoningContent (assistant only) is the turn's reasoning; when it is
// empty, reasoning is taken from a <think>…</think> block in the content, as
// the template does (an empty string counts as absent, as in llama.cpp).
// ToolCalls is for assistant messages only.
type Message struct {
	Role             string
	Content          string
	Parts            []ContentPart
	ReasoningContent string
	ToolCalls        []ToolCall
}

// Options are the template variables besides the messages.
type Options struct {
	// AddGenerationPrompt appends "<|assistant|>" and the thinking tag that
	// opens the model's turn.
	AddGenerationPrompt bool
	// EnableThinking selects the generation prompt's tag: "<think>" (the
	// model reasons first) when true, "</think>" (answer directly) when
	// false. The template's own default is true; callers should default it
	// to true as well.
	EnableThinking bool
	// ClearThinking nil or true: earlier assistant turns lose their
	// reasoning; only turns after the last user message (the current tool
	// loop) keep "<think>…</think>". False keeps the reasoning of every turn.
	ClearThinking *bool
	// Tools are the tool definitions as raw JSON (usually OpenAI's
	// {"type": "function", "function": {...}}), each printed on its own line
	// of the system tools block. Empty means no tools block.
	Tools []json.RawMessage
}

// Fixed text of the template.
const (
	prefix      = "[gMASK]<sop>"
	toolsHeader = "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
		"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
	toolsFooter = "</tools>\n\nFor each function call, output the function name and arguments within the following XML format:\n" +
		"<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key><arg_value>{arg-value-1}</arg_value>" +
		"<arg_key>{arg-key-2}</arg_key><arg_value>{arg-value-2}</arg_value>...</tool_call>"
)

// Render returns the prompt text for msgs. Tokenize it with special tokens
// parsed (tokenizer.Encode(text, true)) and no BOS: it starts with
// [gMASK]<sop> itself.
//
// It fails on an unknown role, on tool calls or reasoning outside assistant
// messages, on a message with both Content and Parts, on a tool call without
// a name or with arguments that are not a JSON object, and on tools that are
// not valid JSON.
func Render(msgs []Message, opt Options) (string, error) {
	var b strings.Builder
	b.WriteString(prefix)
	if len(opt.Tools) > 0 {
		b.WriteString(toolsHeader)
		for i, raw := range opt.Tools {
			v, err := parseJSON(raw)
			if err != nil {
				return "", fmt.Errorf("chat: tool %d: invalid JSON: %w", i, err)
			}
			dumpPy(&b, v)
			b.WriteByte('\n')
		}
		b.WriteString(toolsFooter)
	}
	lastUser := -1
	for i, m := range msgs {
		if m.Role == "user" {
			lastUser = i
		}
	}
	keepAll := opt.ClearThinking != nil && !*opt.ClearThinking
	for i, m := range msgs {
		if m.Content != "" && m.Parts != nil {
			return "", fmt.Errorf("chat: message %d (%s) has both content and content parts", i, m.Role)
		}
		if m.Role != "assistant" {
			if len(m.ToolCalls) > 0 {
				return "", fmt.Errorf("chat: message %d: tool calls are only allowed on assistant messages, not %q", i, m.Role)
			}
			if m.ReasoningContent != "" {
				return "", fmt.Errorf("chat: message %d: reasoning content is only allowed on assistant messages, not %q", i, m.Role)
			}
		}
		switch m.Role {
		case "system":
			b.WriteString("<|system|>")
			b.WriteString(visibleText(m))
		case "user":
			b.WriteString("<|user|>")
			b.WriteString(visibleText(m))
		case "assistant":
			if err := renderAssistant(&b, i, m, keepAll || i > lastUser); err != nil {
				return "", err
			}
		case "tool":
			if i == 0 || msgs[i-1].Role != "tool" {
				b.WriteString("<|observation|>")
			}
			b.WriteString("<tool_response>")
			b.WriteString(visibleText(m))
			b.WriteString("</tool_response>")
		default:
			return "", fmt.Errorf("chat: message %d: unknown role %q (want system, user, assistant or tool)", i, m.Role)
		}
	}
	if opt.AddGenerationPrompt {
		b.WriteString("<|assistant|>")
		if opt.EnableThinking {
			b.WriteString("<think>")
		} else {
			b.WriteString("</think>")
		}
	}
	return b.String(), nil
}

// visibleText is the template's visible_text macro: the content string, or
// the concatenated text parts of a content array. (For tool messages the
// template would print a content array's elements as Python dicts; here the
// text parts are joined instead, which is what a string content would give.)
func visibleText(m Message) string {
	if m.Parts == nil {
		return m.Content
	}
	var b strings.Builder
	for _, p := range m.Parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// renderAssistant writes one assistant turn; keepReasoning says whether its
// reasoning is shown (after the last user message, or clear_thinking=false).
func renderAssistant(b *strings.Builder, i int, m Message, keepReasoning bool) error {
	b.WriteString("<|assistant|>")
	content := visibleText(m)
	reasoning := m.ReasoningContent
	if reasoning == "" {
		if end := strings.Index(content, "</think>"); end >= 0 {
			// content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
			r := strings.TrimRight(content[:end], "\n")
			if j := strings.LastIndex(r, "<think>"); j >= 0 {
				r = r[j+len("<think>"):]
			}
			reasoning = strings.TrimLeft(r, "\n")
			// content.split('</think>')[-1].lstrip('\n')
			content = strings.TrimLeft(content[strings.LastIndex(content, "</think>")+len("</think>"):], "\n")
		}
	}
	if keepReasoning && reasoning != "" {
		b.WriteString("<think>")
		b.WriteString(pyStrip(reasoning))
		b.WriteString("</think>")
	} else {
		b.WriteString("</think>")
	}
	b.WriteString(pyStrip(content))
	for j, tc := range m.ToolCalls {
		if tc.Name == "" {
			return fmt.Errorf("chat: message %d: tool call %d has no name", i, j)
		}
		args, err := toolArguments(tc.Arguments)
		if err != nil {
			return fmt.Errorf("chat: message %d: tool call %d (%s): %w", i, j, tc.Name, err)
		}
		b.WriteString("<tool_call>")
		b.WriteString(tc.Name)
		for k, key := range args.keys {
			b.WriteString("<arg_key>")
			b.WriteString(key)
			b.WriteString("</arg_key><arg_value>")
			if v := args.vals[k]; v.kind == 's' {
				b.WriteString(v.str)
			} else {
				dumpPy(b, v)
			}
			b.WriteString("</arg_value>")
		}
		b.WriteString("</tool_call>")
	}
	return nil
}

// toolArguments parses a tool call's arguments: a JSON object, a JSON string
// holding one, or empty/null for none.
func toolArguments(raw json.RawMessage) (jsonValue, error) {
	if len(strings.TrimSpace(string(raw))) == 0 {
		return jsonValue{kind: 'o'}, nil
	}
	v, err := parseJSON(raw)
	if err != nil {
		return jsonValue{}, fmt.Errorf("arguments are not valid JSON: %w", err)
	}
	if v.kind == 's' {
		if strings.TrimSpace(v.str) == "" {
			return jsonValue{kind: 'o'}, nil
		}
		if v, err = parseJSON([]byte(v.str)); err != nil {
			return jsonValue{}, fmt.Errorf("arguments string is not valid JSON: %w", err)
		}
	}
	switch v.kind {
	case 'o':
		return v, nil
	case 'z':
		return jsonValue{kind: 'o'}, nil
	}
	return jsonValue{}, errors.New("arguments must be a JSON object")
}

// isPySpace reports whether Python's str.isspace() holds for r: Unicode
// White_Space plus U+001C..U+001F.
func isPySpace(r rune) bool {
	return unicode.Is(unicode.White_Space, r) || (0x1C <= r && r <= 0x1F)
}

// pyStrip is Python's str.strip() with no argument.
func pyStrip(s string) string { return strings.TrimFunc(s, isPySpace) }

// TemplateSHA256 is the SHA-256 (hex) of the GLM-4.7-Flash chat template text
// that Render implements.
const TemplateSHA256 = "d63ad536c3c81880043e22ec7fd08db42b4d8fb7c89c7138bc562bfa25281375"

// TemplateMatches reports whether tmpl (a GGUF's tokenizer.chat_template) is
// exactly the template Render implements. Callers that find another
// template should say that Render's output may differ from it.
func TemplateMatches(tmpl string) bool {
	sum := sha256.Sum256([]byte(tmpl))
	return hex.EncodeToString(sum[:]) == TemplateSHA256
}
