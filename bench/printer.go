package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Printer writes results in one of llama-bench's formats.
type Printer interface {
	Header(p *Params)
	Test(r *Result)
	Footer()
}

// NewPrinter returns the printer for format ("md", "csv", "json", "jsonl",
// "sql"; nil for "none"). backend is the backend name shown in md tables
// (it decides whether ngl/threads columns appear); extra appends glmbench's
// fields (§1.4) after llama-bench's.
func NewPrinter(format string, w io.Writer, backend string, extra bool) (Printer, error) {
	switch format {
	case "none":
		return nil, nil
	case "csv":
		return &csvPrinter{w: w, extra: extra}, nil
	case "json":
		return &jsonPrinter{w: w, extra: extra, first: true}, nil
	case "jsonl":
		return &jsonlPrinter{w: w, extra: extra}, nil
	case "md":
		return &mdPrinter{w: w, backend: backend, extra: extra}, nil
	case "sql":
		return &sqlPrinter{w: w, extra: extra}, nil
	}
	return nil, fmt.Errorf("unknown output format %q", format)
}

// csvPrinter: header row, then every value double-quoted ('"' doubled).
type csvPrinter struct {
	w     io.Writer
	extra bool
}

func csvQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (c *csvPrinter) Header(*Params) {
	f := LlamaFields()
	if c.extra {
		for _, e := range extraFields {
			if e.kind != kArray {
				f = append(f, e.name)
			}
		}
	}
	fmt.Fprintln(c.w, strings.Join(f, ","))
}

func (c *csvPrinter) Test(r *Result) {
	v := r.Values()
	for i := range v {
		v[i] = csvQuote(v[i])
	}
	if c.extra {
		for _, e := range r.Extras() {
			if e.kind != kArray {
				v = append(v, csvQuote(e.text))
			}
		}
	}
	fmt.Fprintln(c.w, strings.Join(v, ","))
}

func (c *csvPrinter) Footer() {}

// escapeJSON is llama-bench's escape_json: quotes, backslashes and control
// characters (as \u00XX); other bytes pass through.
func escapeJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c <= 0x1f:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func jsonValue(field, value string) string {
	switch fieldKindOf(field) {
	case kString:
		return `"` + escapeJSON(value) + `"`
	case kBool:
		if value == "0" {
			return "false"
		}
		return "true"
	}
	return value
}

func extraJSON(e extraValue) string {
	if e.null {
		return "null"
	}
	if e.kind == kString {
		return `"` + escapeJSON(e.text) + `"`
	}
	return e.json
}

func joinU(v []uint64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatUint(x, 10)
	}
	return strings.Join(s, ", ")
}

func joinG(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = gfmt(x)
	}
	return strings.Join(s, ", ")
}

// jsonPrinter: "[", objects separated by ",\n", "]" — flushed per test.
type jsonPrinter struct {
	w     io.Writer
	extra bool
	first bool
}

func (j *jsonPrinter) Header(*Params) { fmt.Fprint(j.w, "[\n") }

func (j *jsonPrinter) Test(r *Result) {
	if !j.first {
		fmt.Fprint(j.w, ",\n")
	}
	j.first = false
	fmt.Fprint(j.w, "  {\n")
	for i, v := range r.Values() {
		fmt.Fprintf(j.w, "    \"%s\": %s,\n", llamaFields[i], jsonValue(llamaFields[i], v))
	}
	fmt.Fprintf(j.w, "    \"samples_ns\": [ %s ],\n", joinU(r.SamplesNs))
	if !j.extra {
		fmt.Fprintf(j.w, "    \"samples_ts\": [ %s ]\n", joinG(r.TS()))
	} else {
		fmt.Fprintf(j.w, "    \"samples_ts\": [ %s ],\n", joinG(r.TS()))
		ex := r.Extras()
		for i, e := range ex {
			sep := ","
			if i == len(ex)-1 {
				sep = ""
			}
			fmt.Fprintf(j.w, "    \"%s\": %s%s\n", e.name, extraJSON(e), sep)
		}
	}
	fmt.Fprint(j.w, "  }")
	flush(j.w)
}

func (j *jsonPrinter) Footer() { fmt.Fprint(j.w, "\n]\n") }

// jsonlPrinter: one object per line.
type jsonlPrinter struct {
	w     io.Writer
	extra bool
}

func (j *jsonlPrinter) Header(*Params) {}

func (j *jsonlPrinter) Test(r *Result) {
	var b strings.Builder
	b.WriteString("{")
	for i, v := range r.Values() {
		fmt.Fprintf(&b, "\"%s\": %s, ", llamaFields[i], jsonValue(llamaFields[i], v))
	}
	fmt.Fprintf(&b, "\"samples_ns\": [ %s ],", joinU(r.SamplesNs))
	fmt.Fprintf(&b, "\"samples_ts\": [ %s ]", joinG(r.TS()))
	if j.extra {
		for _, e := range r.Extras() {
			fmt.Fprintf(&b, ", \"%s\": %s", e.name, extraJSON(e))
		}
	}
	b.WriteString("}\n")
	fmt.Fprint(j.w, b.String())
	flush(j.w)
}

func (j *jsonlPrinter) Footer() {}

// sqlPrinter: CREATE TABLE llama_bench, then one INSERT per test.
type sqlPrinter struct {
	w     io.Writer
	extra bool
}

func sqlType(field string) string {
	switch fieldKindOf(field) {
	case kString:
		return "TEXT"
	case kBool, kInt:
		return "INTEGER"
	}
	return "REAL"
}

func (s *sqlPrinter) fields() []string {
	f := LlamaFields()
	if s.extra {
		for _, e := range extraFields {
			if e.kind != kArray {
				f = append(f, e.name)
			}
		}
	}
	return f
}

func (s *sqlPrinter) Header(*Params) {
	f := s.fields()
	fmt.Fprint(s.w, "CREATE TABLE IF NOT EXISTS llama_bench (\n")
	for i, name := range f {
		sep := ","
		if i == len(f)-1 {
			sep = ""
		}
		fmt.Fprintf(s.w, "  %s %s%s\n", name, sqlType(name), sep)
	}
	fmt.Fprint(s.w, ");\n\n")
}

func (s *sqlPrinter) Test(r *Result) {
	vals := r.Values()
	for i := range vals {
		vals[i] = "'" + vals[i] + "'"
	}
	if s.extra {
		for _, e := range r.Extras() {
			if e.kind == kArray {
				continue
			}
			if e.null {
				vals = append(vals, "NULL")
			} else {
				vals = append(vals, "'"+strings.ReplaceAll(e.text, "'", "''")+"'")
			}
		}
	}
	fmt.Fprintf(s.w, "INSERT INTO llama_bench (%s) VALUES (%s);\n", strings.Join(s.fields(), ", "), strings.Join(vals, ", "))
}

func (s *sqlPrinter) Footer() {}

// mdPrinter is llama-bench's markdown table.
type mdPrinter struct {
	w       io.Writer
	backend string
	extra   bool
	fields  []string
}

func mdWidth(field string) int {
	switch field {
	case "model":
		return -30
	case "t/s":
		return 20
	case "size", "params":
		return 10
	case "n_gpu_layers", "flash_attn":
		return 3
	case "n_threads", "n_batch":
		return 7
	case "n_ubatch":
		return 8
	case "type_k", "type_v", "split_mode":
		return 6
	case "load_mode":
		return 10
	case "devices":
		return -12
	case "test":
		return 15
	case "no_op_offload", "no_host":
		return 4
	case "ttft ms", "gen t/s", "t/J", "RSS MiB", "VRAM MiB", "W":
		return 10
	}
	w := max(len(field), 10)
	if fieldKindOf(field) == kString {
		return -w
	}
	return w
}

var mdDisplay = map[string]string{
	"n_gpu_layers": "ngl", "split_mode": "sm", "n_threads": "threads", "no_kv_offload": "nkvo",
	"flash_attn": "fa", "load_mode": "lm", "embeddings": "embd", "no_op_offload": "nopo",
	"no_host": "noh", "devices": "dev", "tensor_split": "ts", "tensor_buft_overrides": "ot",
	"fit_target": "fitt", "fit_min_ctx": "fitc",
}

// pad is C's "%*s": width counts bytes; negative left-aligns.
func pad(s string, width int) string {
	w := width
	if w < 0 {
		w = -w
	}
	if len(s) >= w {
		return s
	}
	if width < 0 {
		return s + strings.Repeat(" ", w-len(s))
	}
	return strings.Repeat(" ", w-len(s)) + s
}

func changed[T comparable](v, def []T) bool { return len(v) > 1 || !slices.Equal(v, def) }

func (m *mdPrinter) Header(p *Params) {
	f := []string{"model", "size", "params", "backend"}
	isCPU := strings.Contains(m.backend, "CPU") || strings.Contains(m.backend, "BLAS")
	if !isCPU {
		f = append(f, "n_gpu_layers")
	}
	if changed(p.NCPUMoE, []int{0}) {
		f = append(f, "n_cpu_moe")
	}
	if changed(p.Threads, []int{PhysicalCores()}) || isCPU {
		f = append(f, "n_threads")
	}
	cond := []struct {
		ok    bool
		field string
	}{
		{changed(p.CPUMask, []string{"0x0"}), "cpu_mask"},
		{changed(p.CPUStrict, []bool{false}), "cpu_strict"},
		{changed(p.Poll, []int{50}), "poll"},
		{changed(p.Batch, []int{2048}), "n_batch"},
		{changed(p.UBatch, []int{512}), "n_ubatch"},
		{changed(p.TypeK, []string{""}), "type_k"},
		{changed(p.TypeV, []string{""}), "type_v"},
		{changed(p.MainGPU, []int{0}), "main_gpu"},
		{changed(p.SplitMode, []string{"layer"}), "split_mode"},
		{changed(p.NoKVOffload, []bool{false}), "no_kv_offload"},
		{changed(p.FlashAttn, []int{-1}), "flash_attn"},
		{changed(p.Devices, []string{"auto"}), "devices"},
		{changed(p.TensorSplit, []string{"0.00"}), "tensor_split"},
		{changed(p.Overrides, []string{"none"}), "tensor_buft_overrides"},
		{changed(p.LoadMode, []string{"mmap"}), "load_mode"},
		{changed(p.Embeddings, []bool{false}), "embeddings"},
		{changed(p.NoOpOffload, []bool{false}), "no_op_offload"},
		{changed(p.NoHost, []bool{false}), "no_host"},
		{changed(p.FitTarget, []int64{0}), "fit_target"},
		{changed(p.FitCtx, []int{0}), "fit_min_ctx"},
	}
	for _, c := range cond {
		if c.ok {
			f = append(f, c.field)
		}
	}
	f = append(f, "test", "t/s")
	if m.extra {
		if isCPU {
			f = append(f, "ttft ms", "gen t/s", "t/J", "RSS MiB")
		} else {
			f = append(f, "ttft ms", "gen t/s", "W", "t/J", "VRAM MiB")
		}
	}
	m.fields = f
	var b strings.Builder
	b.WriteString("|")
	for _, field := range f {
		name := field
		if d, ok := mdDisplay[field]; ok {
			name = d
		}
		b.WriteString(" " + pad(name, mdWidth(field)) + " |")
	}
	b.WriteString("\n|")
	for _, field := range f {
		w := mdWidth(field)
		aw := w
		if aw < 0 {
			aw = -aw
		}
		end := "-"
		if w > 0 {
			end = ":"
		}
		b.WriteString(" " + strings.Repeat("-", aw-1) + end + " |")
	}
	b.WriteString("\n")
	fmt.Fprint(m.w, b.String())
}

func humanSize(bytes uint64) string {
	if bytes < 1<<30 {
		return fmt.Sprintf("%.2f MiB", float64(bytes)/1024/1024)
	}
	return fmt.Sprintf("%.2f GiB", float64(bytes)/1024/1024/1024)
}

func humanParams(n uint64) string {
	if n < 1e9 {
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f B", float64(n)/1e9)
}

func optText(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func (m *mdPrinter) Test(r *Result) {
	vals := map[string]string{}
	for i, v := range r.Values() {
		vals[llamaFields[i]] = v
	}
	ex := map[string]extraValue{}
	for _, e := range r.Extras() {
		ex[e.name] = e
	}
	exf := func(name, format string) string {
		e := ex[name]
		if e.null {
			return "-"
		}
		f, err := strconv.ParseFloat(e.text, 64)
		if err != nil {
			return "-"
		}
		return fmt.Sprintf(format, f)
	}
	var b strings.Builder
	b.WriteString("|")
	for _, field := range m.fields {
		var v string
		w := mdWidth(field)
		switch field {
		case "model":
			v = r.Model.Type
		case "size":
			v = humanSize(r.Model.Size)
		case "params":
			v = humanParams(r.Model.Params)
		case "backend":
			v = r.Backend
		case "test":
			v = r.Inst.Name()
		case "t/s":
			v = fmt.Sprintf("%.2f ± %.2f", r.AvgTS(), r.StddevTS())
			w++ // llama-bench's width counts the 2-byte ± as one column
		case "ttft ms":
			v = exf("avg_ttft_ms", "%.2f")
		case "gen t/s":
			v = exf("avg_gen_ts", "%.2f")
		case "t/J":
			v = optText(r.TokensPerJoule(), "%.3f")
		case "RSS MiB":
			v = exf("rss_peak_mib", "%.0f")
		case "W":
			v = exf("gpu_avg_power_w", "%.1f")
		case "VRAM MiB":
			v = exf("vram_peak_mib", "%.0f")
		default:
			v = vals[field]
		}
		b.WriteString(" " + pad(v, w) + " |")
	}
	b.WriteString("\n")
	fmt.Fprint(m.w, b.String())
}

func (m *mdPrinter) Footer() {
	fmt.Fprintf(m.w, "\nbuild: %s (%d)\n", buildCommit(), buildNumber())
}

type flusher interface{ Flush() error }

func flush(w io.Writer) {
	if f, ok := w.(flusher); ok {
		f.Flush()
	}
}
