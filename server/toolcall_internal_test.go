package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const toolOut = "Checking.<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>" +
	"<arg_key>days</arg_key><arg_value>2</arg_value><arg_key>opts</arg_key><arg_value>{\"units\": \"C\"}</arg_value></tool_call>" +
	"<tool_call>now</tool_call>"

// TestToolCallParserChunks feeds the output split at every byte boundary:
// the plain text and the calls must not depend on the chunking.
func TestToolCallParserChunks(t *testing.T) {
	for cut := 0; cut <= len(toolOut); cut++ {
		var p toolCallParser
		text := p.Add(toolOut[:cut]) + p.Add(toolOut[cut:])
		rest, calls := p.Flush()
		text += rest
		assert.Equal(t, "Checking.", text, "cut %d", cut)
		require.Len(t, calls, 2, "cut %d", cut)
		assert.Equal(t, "get_weather", calls[0].Name)
		assert.JSONEq(t, `{"city":"Paris","days":2,"opts":{"units":"C"}}`, calls[0].Arguments)
		assert.Equal(t, "now", calls[1].Name)
		assert.Equal(t, "{}", calls[1].Arguments)
		assert.Regexp(t, `^call_[A-Za-z0-9]{24}$`, calls[0].ID)
	}
}

func TestToolCallParserEdgeCases(t *testing.T) {
	var p toolCallParser
	assert.Equal(t, "a ", p.Add("a <tool"), "a possible tag start is held back")
	rest, calls := p.Flush()
	assert.Equal(t, "<tool", rest, "a tag prefix that never completes is text")
	assert.Empty(t, calls)

	// A malformed call stays text; an unterminated one too.
	calls, text := parseToolCalls("<tool_call>f<arg_key>k</arg_key>no value</tool_call>")
	assert.Empty(t, calls)
	assert.Contains(t, text, "no value")
	calls, text = parseToolCalls("<tool_call>f<arg_key>k</arg_key><arg_value>v</arg_value>")
	require.Len(t, calls, 1, "a call cut off by the token limit is still parsed when complete inside")
	assert.JSONEq(t, `{"k":"v"}`, calls[0].Arguments)
	assert.Empty(t, text)
	calls, _ = parseToolCalls("<tool_call></tool_call>")
	assert.Empty(t, calls, "a call needs a name")
	// Strings that look like JSON strings stay strings; plain text is quoted.
	assert.JSONEq(t, `"\"x\""`, string(argValue(`"x"`)))
	assert.JSONEq(t, `"hello world"`, string(argValue("hello world")))
	assert.JSONEq(t, `true`, string(argValue("true")))
}
