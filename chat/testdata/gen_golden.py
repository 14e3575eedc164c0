#!/usr/bin/env python3
"""Render chat test cases with GLM-4.7-Flash's own Jinja template -> golden.jsonl.

The template (template.jinja beside this script) is tokenizer.chat_template of
the glm-tiny GGUF, which carries the real GLM-4.7-Flash template text. It is
rendered the way Hugging Face's apply_chat_template does (transformers
chat_template_utils): an ImmutableSandboxedEnvironment with trim_blocks and
lstrip_blocks, the loopcontrols extension, and a `tojson` filter that is plain
json.dumps (ensure_ascii=False by default, insertion key order, ", "/": "
separators, no HTML escaping) instead of Jinja's built-in one.

Cases are written in OpenAI wire form: tool-call arguments and tool schemas are
raw JSON *strings*, decoded here with json.loads before rendering (as a server
does), so the Go test can feed the same raw text to chat.Render.

Usage: python3 gen_golden.py   (needs jinja2; rewrites golden.jsonl)
"""

import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def load_template():
    with open(os.path.join(HERE, "template.jinja"), encoding="utf-8") as f:
        src = f.read()
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(src)


def tc(name, args_raw):
    """A tool call in OpenAI wire form (arguments as a JSON string)."""
    return {"type": "function", "function": {"name": name, "arguments": args_raw}}


WEATHER = '{"type": "function", "function": {"name": "get_weather", "description": "Get the weather «now» & later <ok>", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name, e.g. Zürich"}, "days": {"type": "integer", "minimum": 1, "maximum": 1E1}}, "required": ["city"]}}}'
SEARCH = '{"type":"function","function":{"name":"search","parameters":{"type":"object","properties":{"q":{"type":"string"},"limit":{"type":"number","default":2.50},"exact":{"type":"boolean","default":false},"tags":{"type":"array","items":{"type":"string"},"default":null}}}}}'
ODD = '{"z": 1, "a": {"nested": [1, 2.0, -0, -0.0, 1e16, 1.5e-7, 0.0001, 123456789012345678901234567890, 3.14159, 1e400]}, "s": "quote\\" back\\\\ tab\\t nl\\n ctl\\u0001 del\\u007f emoji😀 \\ud83d\\ude80 nbsp\\u00a0 ls\\u2028", "z": 2}'

CASES = [
    {"name": "system_user_thinking",
     "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hi"}]},
    {"name": "user_thinking_off", "enable_thinking": False,
     "messages": [{"role": "user", "content": "What is 2+2?"}]},
    {"name": "multi_turn_drops_old_reasoning",
     "messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "A1", "reasoning_content": "thinking about Q1"},
                  {"role": "user", "content": "Q2"}]},
    {"name": "multi_turn_thinking_off", "enable_thinking": False,
     "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]},
    {"name": "reasoning_in_content",
     "messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "<think>\nold reasoning\n</think>\n\nA1"},
                  {"role": "user", "content": "Q2"},
                  {"role": "assistant", "content": "<think>\n\nnew reasoning\n\n</think>\n\n  A2  "}]},
    {"name": "reasoning_in_content_no_generation_prompt", "add_generation_prompt": False,
     "messages": [{"role": "user", "content": "Q"},
                  {"role": "assistant", "content": "pre<think>a</think>mid</think>\nend"}]},
    {"name": "clear_thinking_false_keeps_all", "clear_thinking": False,
     "messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "A1", "reasoning_content": "  R1  "},
                  {"role": "user", "content": "Q2"},
                  {"role": "assistant", "content": "<think>R2</think>A2"},
                  {"role": "user", "content": "Q3"}]},
    {"name": "clear_thinking_true_is_default", "clear_thinking": True,
     "messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "A1", "reasoning_content": "R1"},
                  {"role": "user", "content": "Q2"}]},
    {"name": "tools_block", "tools": [WEATHER, SEARCH],
     "messages": [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Paris?"}]},
    {"name": "tool_call_loop", "tools": [WEATHER],
     "messages": [{"role": "user", "content": "Weather in Paris and Rome?"},
                  {"role": "assistant", "content": "", "reasoning_content": "I should call the tool twice.",
                   "tool_calls": [tc("get_weather", '{"city": "Paris", "days": 2}'),
                                  tc("get_weather", '{"city":"Rome","days":1}')]},
                  {"role": "tool", "content": "{\"temp\": 21}"},
                  {"role": "tool", "content": "sunny, 25°C"}]},
    {"name": "tool_call_nonstring_args",
     "messages": [{"role": "user", "content": "go"},
                  {"role": "assistant", "content": "Calling.",
                   "tool_calls": [tc("f", '{"i": 3, "f": 2.50, "e": 1E-7, "big": 1e16, "neg0": -0, "t": true, "n": null, "l": [1, "two", {"x": "é"}], "o": {"k": "v", "k2": [false]}, "s": "plain <b>&</b>", "u": "日本"}')]},
                  {"role": "tool", "content": "ok"}]},
    {"name": "tool_call_empty_args_and_dup_keys",
     "messages": [{"role": "user", "content": "go"},
                  {"role": "assistant", "content": "",
                   "tool_calls": [tc("noargs", "{}"), tc("dup", '{"a": 1, "b": 2, "a": "last"}')]},
                  {"role": "tool", "content": ""},
                  {"role": "user", "content": "again"}]},
    {"name": "tool_runs_separated",
     "messages": [{"role": "user", "content": "u"},
                  {"role": "assistant", "content": "", "tool_calls": [tc("a", '{"x": "1"}')]},
                  {"role": "tool", "content": "r1"},
                  {"role": "assistant", "content": "mid", "reasoning_content": "keep me",
                   "tool_calls": [tc("b", '{"y": [1, 2]}')]},
                  {"role": "tool", "content": "r2"},
                  {"role": "tool", "content": "r3"},
                  {"role": "assistant", "content": "done"}],
     "add_generation_prompt": False},
    {"name": "odd_json_in_tools", "tools": [ODD],
     "messages": [{"role": "user", "content": "x"}]},
    {"name": "empty_contents",
     "messages": [{"role": "system", "content": ""}, {"role": "user", "content": ""},
                  {"role": "assistant", "content": ""}, {"role": "user", "content": ""}]},
    {"name": "content_lists",
     "messages": [{"role": "system", "content": [{"type": "text", "text": "Sys A. "}, {"type": "text", "text": "Sys B."}]},
                  {"role": "user", "content": [{"type": "text", "text": "Look: "},
                                               {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
                                               {"type": "text", "text": "what is it?"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "<think>r</think>"}, {"type": "text", "text": "A cat."}]},
                  {"role": "user", "content": []}]},
    {"name": "whitespace_python_strip",
     "messages": [{"role": "user", "content": "  keep user spaces \n"},
                  {"role": "assistant", "content": "\u3000\x1c answer \x1f\u2028\u00a0", "reasoning_content": "\x1d\u2003 r \x85"},
                  {"role": "user", "content": "\t"}]},
    {"name": "whitespace_only_reasoning",
     "messages": [{"role": "user", "content": "q"},
                  {"role": "assistant", "content": "a", "reasoning_content": " \n "}]},
    {"name": "no_user_messages",
     "messages": [{"role": "system", "content": "S"},
                  {"role": "assistant", "content": "hello", "reasoning_content": "R"}]},
    {"name": "reasoning_content_with_tags_in_content",
     "messages": [{"role": "user", "content": "q"},
                  {"role": "assistant", "content": "<think>inline</think>visible", "reasoning_content": "given"}]},
    {"name": "think_open_without_close",
     "messages": [{"role": "user", "content": "q"},
                  {"role": "assistant", "content": "<think>unterminated reasoning"}]},
    {"name": "empty_tools_list", "tools": [],
     "messages": [{"role": "user", "content": "hi"}]},
    {"name": "specials_in_text",
     "messages": [{"role": "user", "content": "<|user|>[gMASK]{{ not jinja }}{% raw %}"},
                  {"role": "assistant", "content": "\n\n</think>\n\nonly content"}]},
    {"name": "no_messages_generation_prompt", "messages": []},
]


def to_template_messages(msgs):
    out = []
    for m in msgs:
        m = dict(m)
        if "tool_calls" in m:
            m["tool_calls"] = [{"type": c["type"], "function": {"name": c["function"]["name"],
                                                                "arguments": json.loads(c["function"]["arguments"])}}
                               for c in m["tool_calls"]]
        out.append(m)
    return out


def main():
    tmpl = load_template()
    path = os.path.join(HERE, "golden.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for c in CASES:
            opts = {
                "add_generation_prompt": c.get("add_generation_prompt", True),
                "enable_thinking": c.get("enable_thinking", True),
            }
            kwargs = dict(opts)
            if "clear_thinking" in c:
                kwargs["clear_thinking"] = c["clear_thinking"]
            tools = [json.loads(t) for t in c["tools"]] if c.get("tools") is not None else None
            expected = tmpl.render(messages=to_template_messages(c["messages"]), tools=tools, **kwargs)
            rec = {"name": c["name"], "messages": c["messages"], "tools": c.get("tools"),
                   "add_generation_prompt": opts["add_generation_prompt"], "enable_thinking": opts["enable_thinking"],
                   "clear_thinking": c.get("clear_thinking"), "expected": expected}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(CASES)} cases to {path}")


if __name__ == "__main__":
    main()
