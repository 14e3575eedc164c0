package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseIntRange(t *testing.T) {
	ok := []struct {
		in   string
		neg  bool
		want []int
	}{
		{"512", false, []int{512}},
		{"1-5", false, []int{1, 2, 3, 4, 5}},
		{"128-1024*2", false, []int{128, 256, 512, 1024}},
		{"0-4096+1024", false, []int{0, 1024, 2048, 3072, 4096}},
		{"16,64-256*2", false, []int{16, 64, 128, 256}},
		{"1,2,3", false, []int{1, 2, 3}},
		{"5-1", false, nil}, // llama-bench: an empty range, not an error
		{"-1", true, []int{-1}},
		{"-2-2", true, []int{-2, -1, 0, 1, 2}},
		{"100-130+15", false, []int{100, 115, 130}},
		{"3-10*3", false, []int{3, 9}},
	}
	for _, c := range ok {
		got, err := ParseIntRange(c.in, c.neg)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseIntRange(%q, %v) = %v, %v; want %v", c.in, c.neg, got, err, c.want)
		}
	}
	bad := []struct {
		in  string
		neg bool
	}{
		{"1-5*1", false}, {"1-5+0", false}, {"0-8*2", false}, {"abc", false}, {"1,,2", false},
		{"-1", false}, {"1-5x", false}, {"1-5|2", false}, {"1.5", false}, {"1-", false}, {" 1", false},
		{"1-100000000", false},
	}
	for _, c := range bad {
		if got, err := ParseIntRange(c.in, c.neg); err == nil {
			t.Errorf("ParseIntRange(%q, %v) = %v, want an error", c.in, c.neg, got)
		}
	}
}

func TestParseSizes(t *testing.T) {
	ok := map[string][]int{
		"1k,10k,100k": {1000, 10000, 100000},
		"16,256,1024": {16, 256, 1024},
		"1K-8k*2":     {1000, 2000, 4000, 8000},
		"500-1k+250":  {500, 750, 1000},
		"2k":          {2000},
	}
	for in, want := range ok {
		got, err := ParseSizes(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseSizes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1m", "1kk", "k", "1k-1k*1", "1.5k", "10k-1k+0"} {
		if got, err := ParseSizes(in); err == nil && len(got) > 0 {
			t.Errorf("ParseSizes(%q) = %v, want an error", in, got)
		}
	}
}

func argErrFlag(t *testing.T, err error) string {
	t.Helper()
	var ae *ArgError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *ArgError", err)
	}
	return ae.Flag
}

func TestParseDefaults(t *testing.T) {
	p, err := Parse(nil, 6)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"model", p.Models, []string{"models/7B/ggml-model-q4_0.gguf"}},
		{"n_prompt", p.NPrompt, []int{512}},
		{"n_gen", p.NGen, []int{128}},
		{"depth", p.Depth, []int{0}},
		{"batch", p.Batch, []int{2048}},
		{"ubatch", p.UBatch, []int{512}},
		{"threads", p.Threads, []int{6}},
		{"ngl", p.NGL, []int{-1}},
		{"fa", p.FlashAttn, []int{-1}},
		{"reps", p.Reps, 5},
		{"output", p.Output, "md"},
		{"output err", p.OutputErr, "none"},
		{"poll", p.Poll, []int{50}},
		{"ts", p.TensorSplit, []string{"0.00"}},
		{"ot", p.Overrides, []string{"none"}},
		{"lm", p.LoadMode, []string{"mmap"}},
		{"dev", p.Devices, []string{"auto"}},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if p.SeedMode() || len(p.Warnings()) != 0 {
		t.Errorf("seed mode %v, warnings %v", p.SeedMode(), p.Warnings())
	}
}

func TestParseListsAndNormalisation(t *testing.T) {
	p, err := Parse([]string{"-m", "a.gguf,b.gguf", "--n_prompt", "16", "-p", "32-64*2", "--n-gen", "4",
		"-pg", "8,2", "-pg", "16,4", "-t", "1,2", "-mg", "1", "-mg", "2", "--repetitions", "3", "-o", "jsonl",
		"--batch_size", "128", "-fa", "on,off,auto"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Models, []string{"a.gguf", "b.gguf"}) || !slices.Equal(p.NPrompt, []int{16, 32, 64}) ||
		!slices.Equal(p.NGen, []int{4}) || len(p.PG) != 2 || p.PG[1] != [2]int{16, 4} ||
		!slices.Equal(p.Threads, []int{1, 2}) || !slices.Equal(p.MainGPU, []int{2}) || p.Reps != 3 ||
		p.Output != "jsonl" || !slices.Equal(p.Batch, []int{128}) || !slices.Equal(p.FlashAttn, []int{1, 0, -1}) {
		t.Errorf("parsed %+v", p)
	}
	// -C and --poll have no effect here: one warning per flag, however often
	// given. -ngl is honoured per backend (the runner warns when it is only
	// echoed), so Parse does not warn about it.
	p, err = Parse([]string{"-C", "0x1", "-C", "0x3", "--poll", "10", "-ngl", "99"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Warnings(); len(w) != 2 || !strings.Contains(w[0], "-C") || !strings.Contains(w[1], "--poll") {
		t.Errorf("warnings %q", w)
	}
	if !slices.Equal(p.CPUMask, []string{"0x1", "0x3"}) || !slices.Equal(p.NGL, []int{99}) {
		t.Errorf("values not echoed: %v %v", p.CPUMask, p.NGL)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"--bogus"}, "--bogus"},
		{[]string{"-x"}, "-x"},
		{[]string{"--no_such_flag"}, "--no-such-flag"},
		{[]string{"-p"}, "-p"},
		{[]string{"-p", "1-5*1"}, "-p"},
		{[]string{"-n", "abc"}, "-n"},
		{[]string{"-pg", "1"}, "-pg"},
		{[]string{"-pg", "1,2,3"}, "-pg"},
		{[]string{"-o", "xml"}, "-o"},
		{[]string{"-ctk", "q8_0"}, "-ctk"},
		{[]string{"-ctk", "bf16"}, "-ctk"},
		{[]string{"-ctv", "q9"}, "-ctv"},
		{[]string{"-dev", "CUDA1"}, "-dev"},
		{[]string{"-dev", "CUDA0/CUDA1"}, "-dev"},
		{[]string{"-dev", "Vulkan0"}, "-dev"},
		{[]string{"--device", ""}, "--device"},
		{[]string{"-sm", "diagonal"}, "-sm"},
		{[]string{"-lm", "dio"}, "-lm"},
		{[]string{"-embd", "1"}, "-embd"},
		{[]string{"-r", "0"}, "-r"},
		{[]string{"-t", "0"}, "-t"},
		{[]string{"-b", "0"}, "-b"},
		{[]string{"-hf", "org/model"}, "-hf"},
		{[]string{"--cpu-strict", "2"}, "--cpu-strict"},
		{[]string{"--prompt-sizes", "1m"}, "--prompt-sizes"},
		{[]string{"--energy", "maybe"}, "--energy"},
		{[]string{"--plot", "out.png"}, "--plot"},
		{[]string{"--compare"}, "--compare"},
	}
	for _, c := range cases {
		_, err := Parse(c.args, 2)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", c.args)
			continue
		}
		if got := argErrFlag(t, err); got != c.flag {
			t.Errorf("Parse(%q): flag %q, want %q", c.args, got, c.flag)
		}
	}
	if _, err := Parse([]string{"-h"}, 2); !errors.Is(err, ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestParseSeedMode(t *testing.T) {
	p, err := Parse([]string{"--prompt-sizes", "1k,2k", "-m", "x.gguf"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !p.SeedMode() || !slices.Equal(p.PromptSizes, []int{1000, 2000}) || !slices.Equal(p.OutputTokens, []int{16, 256, 1024}) ||
		p.SummaryJSON != "benchmark_results.json" || len(p.NPrompt) != 0 || len(p.NGen) != 0 || !p.ExtraCols {
		t.Errorf("seed defaults: %+v", p)
	}
	ins := Instances(p)
	if len(ins) != 6 {
		t.Fatalf("%d instances, want 6", len(ins))
	}
	if ins[0].NPrompt != 1000 || ins[0].NGen != 16 || !ins[0].Split || ins[5].NPrompt != 2000 || ins[5].NGen != 1024 {
		t.Errorf("instances %+v", ins)
	}
	// Explicit -p/-n add llama-bench tests before the sweep.
	p, err = Parse([]string{"--output-tokens", "4", "--prompt-sizes", "8", "-p", "2", "--json-out", "s.json"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	ins = Instances(p)
	if len(ins) != 2 || ins[0].Name() != "pp2" || ins[1].Name() != "pp8+tg4" || p.SummaryJSON != "s.json" {
		t.Errorf("instances %+v", ins)
	}
}

func TestInstancesOrder(t *testing.T) {
	p, err := Parse([]string{"-p", "8,16", "-n", "4", "-pg", "8,2", "-pg", "0,0", "-d", "0,32", "-t", "1,2"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range Instances(p) {
		names = append(names, fmt.Sprintf("t%d:%s", in.Threads, in.Name()))
	}
	want := []string{
		"t1:pp8", "t1:pp16", "t1:tg4", "t1:pp8+tg2",
		"t1:pp8 @ d32", "t1:pp16 @ d32", "t1:tg4 @ d32", "t1:pp8+tg2 @ d32",
		"t2:pp8", "t2:pp16", "t2:tg4", "t2:pp8+tg2",
		"t2:pp8 @ d32", "t2:pp16 @ d32", "t2:tg4 @ d32", "t2:pp8+tg2 @ d32",
	}
	if !slices.Equal(names, want) {
		t.Errorf("order\n got %v\nwant %v", names, want)
	}
}

func TestParseDevicesAndCacheTypes(t *testing.T) {
	p, err := Parse([]string{"-dev", "auto,none,cpu", "--device", "cuda", "-dev", "CUDA0,cuda0", "-ctk", "f16,f32", "-ctv", "f32"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"auto", "none", "none", "CUDA0", "CUDA0", "CUDA0"}; !slices.Equal(p.Devices, want) {
		t.Errorf("devices %q, want %q", p.Devices, want)
	}
	if !slices.Equal(p.TypeK, []string{"f16", "f32"}) || !slices.Equal(p.TypeV, []string{"f32"}) {
		t.Errorf("cache types %q %q", p.TypeK, p.TypeV)
	}
	// Unset cache types stay "" (the backend's default, resolved by the run).
	p, err = Parse(nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.TypeK, []string{""}) || !slices.Equal(p.TypeV, []string{""}) {
		t.Errorf("default cache types %q %q", p.TypeK, p.TypeV)
	}
	var b strings.Builder
	Usage(&b, "glmbench", 2)
	if strings.Contains(b.String(), "no GPU backend") || !strings.Contains(b.String(), "CUDA0") {
		t.Errorf("usage text is stale:\n%s", b.String())
	}
}
