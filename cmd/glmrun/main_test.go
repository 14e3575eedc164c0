package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/testdata"
	"github.com/glmrun/glmrun/model/glm4moe"
	"github.com/glmrun/glmrun/tokenizer"
)

func glmrun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := run(args, &out, &errb)
	return rc, out.String(), errb.String()
}

func tinyQ4(t *testing.T) string { return testdata.GLMTiny(t, "glm-tiny-q4_k_m.gguf") }

func TestGenerateChatPrintsTimings(t *testing.T) {
	m := tinyQ4(t)
	rc, out, errs := glmrun(t, "-m", m, "-p", "Hello", "-n", "16", "-t", "2", "-s", "3")
	if rc != 0 {
		t.Fatalf("rc %d, stderr:\n%s", rc, errs)
	}
	for _, want := range []string{
		"llama_perf_context_print:        load time =",
		"llama_perf_context_print: prompt eval time =",
		"llama_perf_context_print:        eval time =",
		"llama_perf_context_print:       total time =",
		"[ Prompt: ", "| Generation: ", "time to first token", "peak RSS", "sampler seed:",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	// The prompt is the rendered chat turn, and generation ran: either 16
	// tokens (15 eval runs after the first) or an earlier end of generation.
	_, ids, _ := glmrun(t, "-m", m, "-p", "Hello", "--tokenize")
	var prompt []int32
	if err := json.Unmarshal([]byte(strings.TrimSpace(ids)), &prompt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errs, "/ "+fmt.Sprintf("%5d", len(prompt))+" tokens (") {
		t.Errorf("prompt eval line does not count the %d prompt tokens:\n%s", len(prompt), errs)
	}
	if !strings.Contains(errs, "/    15 runs") && !strings.Contains(errs, "[Start thinking]") {
		t.Errorf("no generation visible:\nstdout %q\nstderr %s", out, errs)
	}
	if strings.Contains(out, "[Start thinking]") {
		t.Error("reasoning leaked to stdout")
	}
}

func TestRawModeAndSeed(t *testing.T) {
	m := tinyQ4(t)
	args := []string{"-m", m, "-no-cnv", "-p", "The history of", "-n", "12", "-s", "7", "--no-show-timings"}
	rc, out1, errs := glmrun(t, args...)
	if rc != 0 {
		t.Fatalf("rc %d: %s", rc, errs)
	}
	if !strings.HasPrefix(out1, "The history of") {
		t.Errorf("raw mode should echo the prompt, got %q", out1)
	}
	if strings.Contains(errs, "[ Prompt:") {
		t.Error("--no-show-timings still printed the [ Prompt ] line")
	}
	_, out2, _ := glmrun(t, args...)
	if out1 != out2 {
		t.Errorf("same seed, different output:\n%q\n%q", out1, out2)
	}
	rc, out3, _ := glmrun(t, append(args, "--no-display-prompt")...)
	if rc != 0 || strings.HasPrefix(out3, "The history of") {
		t.Errorf("--no-display-prompt: rc %d out %q", rc, out3)
	}
	if strings.TrimSpace(out3) == "" {
		t.Error("no generated text")
	}
	// llama-bench style '_' for '-' and single-dash long flags.
	if rc, _, errs := glmrun(t, "-m", m, "-no-cnv", "-p", "a", "--n_predict", "2", "-ub", "1", "-ngl", "99"); rc != 0 || !strings.Contains(errs, "-ngl 99 ignored") {
		t.Errorf("--n_predict/-ub/-ngl: rc %d stderr %s", rc, errs)
	}
}

func readIDs(t *testing.T) []int32 {
	b, err := os.ReadFile(testdata.GLMTiny(t, "tokens.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, f := range strings.Fields(string(b)) {
		v, _ := strconv.Atoi(f)
		ids = append(ids, int32(v))
	}
	return ids
}

func TestDumpLogitsMatchesForward(t *testing.T) {
	m := tinyQ4(t)
	ids := readIDs(t)[:40]
	dir := t.TempDir()
	idsFile := filepath.Join(dir, "ids.txt")
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(strconv.Itoa(int(id)) + "\n")
	}
	os.WriteFile(idsFile, []byte(sb.String()), 0o644)
	out := filepath.Join(dir, "logits.f32")
	rc, _, errs := glmrun(t, "-m", m, "--token-ids-file", idsFile, "--dump-logits", out, "--exact", "-ub", "16", "-b", "24")
	if rc != 0 {
		t.Fatalf("rc %d: %s", rc, errs)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	model, err := glm4moe.Load(f, glm4moe.Options{Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := model.NewCache(len(ids))
	want, err := model.Forward(c, ids, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4*len(want) {
		t.Fatalf("dump has %d bytes, want %d", len(b), 4*len(want))
	}
	for i, w := range want {
		if g := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])); g != w {
			t.Fatalf("logit %d: dump %v, Forward %v", i, g, w)
		}
	}
}

func TestTokenizeAndInspect(t *testing.T) {
	m := tinyQ4(t)
	rc, out, errs := glmrun(t, "-m", m, "-no-cnv", "-p", "Hello world, 123", "--tokenize")
	if rc != 0 {
		t.Fatalf("rc %d: %s", rc, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var got []int32
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	f, _ := gguf.Open(m)
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	want := tok.Encode("Hello world, 123", true)
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("--tokenize %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("--tokenize %v, want %v", got, want)
		}
	}
	// Chat mode tokenizes the rendered template: it starts with [gMASK]<sop>.
	_, out, _ = glmrun(t, "-m", m, "-p", "Hi", "--tokenize")
	gm, _ := tok.ID("[gMASK]")
	if !strings.HasPrefix(strings.TrimSpace(out), "["+strconv.Itoa(int(gm))+",") {
		t.Errorf("chat --tokenize %q does not start with [gMASK] (%d)", out, gm)
	}
	rc, out, errs = glmrun(t, "-m", m, "--inspect")
	if rc != 0 || !strings.Contains(out, "deepseek2") || !strings.Contains(out, "blk.0.attn_k_b.weight") {
		t.Errorf("--inspect: rc %d out %.300q err %s", rc, out, errs)
	}
}

func TestBadInput(t *testing.T) {
	m := tinyQ4(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-m", m, "--bogus"}, "error: invalid parameter for argument: --bogus"},
		{[]string{"-m", m, "-p", "x", "--device", "metal"}, "not available in this build"},
		{[]string{"-m", m, "-p", "x", "--device", "tpu"}, "error: invalid parameter for argument: --device"},
		{[]string{"-m", m, "-p", "x", "-ngl", "lots"}, "error: invalid parameter for argument: --gpu-layers"},
		{[]string{"-m", m, "-p", "x", "--show-thinking", "maybe"}, "--show-thinking"},
		{[]string{"-m", m, "-p", "x", "-n", "abc"}, "error: invalid parameter for argument:"},
		{[]string{"-p", "x"}, "--model"},
		{[]string{"-m", m}, "no prompt"},
		{[]string{"-m", m, "-i", "-p", "x"}, "error: invalid parameter for argument: -i"},
		{[]string{"-m", filepath.Join(t.TempDir(), "nope.gguf"), "-p", "x"}, "error: failed to load model '"},
		{[]string{"-m", m, "-no-cnv", "-p", strings.Repeat("word ", 50), "-c", "8"}, "too long"},
	}
	for _, c := range cases {
		rc, _, errs := glmrun(t, c.args...)
		if rc != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: rc %d, stderr lacks %q:\n%.400s", c.args, rc, c.want, errs)
		}
	}
	// A file that is not GGUF.
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	os.WriteFile(bad, []byte("not a gguf file at all"), 0o644)
	if rc, _, errs := glmrun(t, "-m", bad, "-p", "x"); rc != 1 || !strings.Contains(errs, "error: failed to load model '"+bad+"'") {
		t.Errorf("bad file: rc %d %s", rc, errs)
	}
}

func TestTextSinkStopsAndThinking(t *testing.T) {
	var out bytes.Buffer
	s := newRawSink(&out, []string{"STOP"})
	for _, chunk := range []string{"hello S", "T", "OP and more"} {
		if s.write(chunk) {
			break
		}
	}
	s.finish()
	if out.String() != "hello " || !s.stopped {
		t.Errorf("stop string: got %q stopped %v", out.String(), s.stopped)
	}
	out.Reset()
	s = newRawSink(&out, []string{"STOP"})
	s.write("no S")
	s.write("top here")
	s.finish()
	if out.String() != "no Stop here" {
		t.Errorf("false prefix held back: got %q", out.String())
	}
	var think bytes.Buffer
	out.Reset()
	s = newChatSink(&out, &think, nil, true)
	for _, c := range []string{"let me ", "think</th", "ink>The answer", " is 4."} {
		s.write(c)
	}
	s.finish()
	if !strings.HasPrefix(think.String(), "[Start thinking]\n") || !strings.Contains(think.String(), "let me think") || !strings.Contains(think.String(), "[End thinking]") {
		t.Errorf("thinking stream %q", think.String())
	}
	if strings.TrimSpace(out.String()) != "The answer is 4." {
		t.Errorf("answer %q", out.String())
	}
}

// TestDeviceCUDA: without a usable GPU, --device cuda is a load failure that
// names the problem; with one, it generates.
func TestDeviceCUDA(t *testing.T) {
	rc, _, errs := glmrun(t, "-m", tinyQ4(t), "-no-cnv", "-p", "The", "-n", "4", "--device", "cuda", "--temp", "0")
	switch rc {
	case 0:
		if !strings.Contains(errs, "llama_perf_context_print") {
			t.Errorf("cuda run printed no timings:\n%s", errs)
		}
	case 1:
		if !strings.Contains(errs, "error: failed to load model") || !strings.Contains(strings.ToLower(errs), "cuda") {
			t.Errorf("cuda failure does not say why:\n%s", errs)
		}
	default:
		t.Fatalf("rc %d:\n%s", rc, errs)
	}
}
