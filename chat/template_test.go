package chat

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
)

// goldenCase is one line of testdata/golden.jsonl (see gen_golden.py).
type goldenCase struct {
	Name     string `json:"name"`
	Messages []struct {
		Role             string          `json:"role"`
		Content          json.RawMessage `json:"content"`
		ReasoningContent *string         `json:"reasoning_content"`
		ToolCalls        []struct {
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Tools               []string `json:"tools"`
	AddGenerationPrompt bool     `json:"add_generation_prompt"`
	EnableThinking      bool     `json:"enable_thinking"`
	ClearThinking       *bool    `json:"clear_thinking"`
	Expected            string   `json:"expected"`
}

func loadGolden(t *testing.T) []goldenCase {
	t.Helper()
	f, err := os.Open("testdata/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []goldenCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var c goldenCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// toMessages converts a golden case to Render's input.
func (c goldenCase) toMessages(t *testing.T) ([]Message, Options) {
	var msgs []Message
	for _, gm := range c.Messages {
		m := Message{Role: gm.Role}
		if gm.ReasoningContent != nil {
			m.ReasoningContent = *gm.ReasoningContent
		}
		if len(gm.Content) > 0 && gm.Content[0] == '[' {
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			if err := json.Unmarshal(gm.Content, &parts); err != nil {
				t.Fatal(err)
			}
			m.Parts = []ContentPart{}
			for _, p := range parts {
				m.Parts = append(m.Parts, ContentPart{Type: p.Type, Text: p.Text})
			}
		} else if err := json.Unmarshal(gm.Content, &m.Content); err != nil {
			t.Fatal(err)
		}
		for _, tc := range gm.ToolCalls {
			m.ToolCalls = append(m.ToolCalls, ToolCall{Name: tc.Function.Name, Arguments: json.RawMessage(tc.Function.Arguments)})
		}
		msgs = append(msgs, m)
	}
	opt := Options{AddGenerationPrompt: c.AddGenerationPrompt, EnableThinking: c.EnableThinking, ClearThinking: c.ClearThinking}
	for _, tool := range c.Tools {
		opt.Tools = append(opt.Tools, json.RawMessage(tool))
	}
	return msgs, opt
}

// TestRenderGolden compares Render with the real template rendered by jinja2.
func TestRenderGolden(t *testing.T) {
	cases := loadGolden(t)
	if len(cases) < 15 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			msgs, opt := c.toMessages(t)
			got, err := Render(msgs, opt)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.Expected {
				i := 0
				for i < len(got) && i < len(c.Expected) && got[i] == c.Expected[i] {
					i++
				}
				t.Errorf("mismatch at byte %d:\n got …%q\nwant …%q", i, tail(got, i), tail(c.Expected, i))
			}
		})
	}
}

func tail(s string, i int) string {
	lo := max(0, i-40)
	hi := min(len(s), i+80)
	return s[lo:hi]
}

// TestTemplateFileIsGGUFs checks that testdata/template.jinja (which the
// golden cases were rendered from) is the glm-tiny GGUF's template and that
// TemplateMatches recognizes it.
func TestTemplateFileIsGGUFs(t *testing.T) {
	local, err := os.ReadFile("testdata/template.jinja")
	if err != nil {
		t.Fatal(err)
	}
	if !TemplateMatches(string(local)) {
		t.Fatal("testdata/template.jinja does not match TemplateSHA256")
	}
	if TemplateMatches(string(local) + " ") {
		t.Fatal("TemplateMatches accepts a modified template")
	}
	f, err := gguf.Open(testdata.GLMTiny(t, "glm-tiny-bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tmpl, err := f.String("tokenizer.chat_template")
	if err != nil {
		t.Fatal(err)
	}
	if tmpl != string(local) {
		t.Fatal("glm-tiny's tokenizer.chat_template differs from testdata/template.jinja: regenerate the golden file")
	}
}

func TestRenderErrors(t *testing.T) {
	bad := map[string][]Message{
		"unknown role":            {{Role: "developer", Content: "x"}},
		"tool calls on user":      {{Role: "user", ToolCalls: []ToolCall{{Name: "f"}}}},
		"reasoning on user":       {{Role: "user", ReasoningContent: "r"}},
		"content and parts":       {{Role: "user", Content: "x", Parts: []ContentPart{{Type: "text", Text: "y"}}}},
		"nameless tool call":      {{Role: "assistant", ToolCalls: []ToolCall{{Arguments: json.RawMessage(`{}`)}}}},
		"array arguments":         {{Role: "assistant", ToolCalls: []ToolCall{{Name: "f", Arguments: json.RawMessage(`[1]`)}}}},
		"invalid arguments":       {{Role: "assistant", ToolCalls: []ToolCall{{Name: "f", Arguments: json.RawMessage(`{"a":`)}}}},
		"string of non-object":    {{Role: "assistant", ToolCalls: []ToolCall{{Name: "f", Arguments: json.RawMessage(`"5"`)}}}},
		"trailing data arguments": {{Role: "assistant", ToolCalls: []ToolCall{{Name: "f", Arguments: json.RawMessage(`{} {}`)}}}},
	}
	for name, msgs := range bad {
		if _, err := Render(msgs, Options{}); err == nil {
			t.Errorf("%s: Render accepted it", name)
		}
	}
	if _, err := Render(nil, Options{Tools: []json.RawMessage{json.RawMessage(`{"a": }`)}}); err == nil {
		t.Error("Render accepted an invalid tool definition")
	}
}

// TestToolArgumentForms: the OpenAI wire form (a JSON string), an object and
// empty/null arguments render as the template renders the object.
func TestToolArgumentForms(t *testing.T) {
	render := func(args string) string {
		out, err := Render([]Message{{Role: "assistant", ToolCalls: []ToolCall{{Name: "f", Arguments: json.RawMessage(args)}}}}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		return out
	}
	obj := render(`{"b": 1.0, "a": "x"}`)
	if !strings.HasSuffix(obj, "<tool_call>f<arg_key>b</arg_key><arg_value>1.0</arg_value><arg_key>a</arg_key><arg_value>x</arg_value></tool_call>") {
		t.Errorf("object form rendered %q", obj)
	}
	if s := render(`"{\"b\": 1.0, \"a\": \"x\"}"`); s != obj {
		t.Errorf("string form rendered %q, want %q", s, obj)
	}
	empty := render(`{}`)
	for _, a := range []string{``, `null`, `""`, `"null"`} {
		if s := render(a); s != empty {
			t.Errorf("arguments %q rendered %q, want %q", a, s, empty)
		}
	}
}

func TestPyFloatRepr(t *testing.T) {
	cases := map[float64]string{
		1: "1.0", 2.5: "2.5", 1e16: "1e+16", 1e15: "1000000000000000.0", 1.5e-7: "1.5e-07", 0.0001: "0.0001",
		0.00001: "1e-05", -3.25: "-3.25", 123456789012345678: "1.2345678901234568e+17", 1e100: "1e+100",
		0.1: "0.1", 1.0 / 3: "0.3333333333333333", 5e-324: "5e-324", 12345.678: "12345.678",
	}
	for f, want := range cases {
		if got := pyFloatRepr(f); got != want {
			t.Errorf("pyFloatRepr(%v) = %q, want %q", f, got, want)
		}
	}
}
