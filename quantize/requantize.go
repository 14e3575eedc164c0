package quantize

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/glmrun/glmrun/backend/quant"
	"github.com/glmrun/glmrun/gguf"
)

// QuantizationVersion is the general.quantization_version every output
// records (ggml's GGML_QNT_VERSION).
const QuantizationVersion = 2

// MMFP4 metadata written whenever a file holds MMFP4 tensors (spec
// quant-formats.md §4.2).
const (
	KeyMMFP4Version   = "mmfp4.version"
	KeyMMFP4GroupSize = "mmfp4.group_size"
	MMFP4Version      = 1
)

// Options configures Requantize.
type Options struct {
	Preset Preset
	// AllowRequantize permits quantized input tensors (they are dequantized
	// exactly, then quantized to their new type). Without it a quantized
	// tensor whose type would change is an error, as in llama-quantize.
	AllowRequantize bool
	// Threads is the number of goroutines converting rows (<= 0: all CPUs).
	// The output does not depend on it.
	Threads int
	// Progress, if not nil, receives one line per tensor and the final size
	// summary, in llama-quantize's format.
	Progress io.Writer
}

// Stats summarises a conversion.
type Stats struct {
	Tensors   int
	Elements  uint64                  // weights in all tensors
	InBytes   uint64                  // tensor data read
	OutBytes  uint64                  // tensor data written (without padding)
	Types     map[gguf.TensorType]int // output tensors per type
	Fallbacks int                     // tensors that took a fallback type
	Changed   int                     // tensors whose type changed
}

// BPW returns bits per weight of the input and output tensor data.
func (s Stats) BPW() (in, out float64) {
	if s.Elements == 0 {
		return 0, 0
	}
	return float64(s.InBytes) * 8 / float64(s.Elements), float64(s.OutBytes) * 8 / float64(s.Elements)
}

// plannedTensor is one output tensor: its source and its new type.
type plannedTensor struct {
	src gguf.TensorInfo
	typ gguf.TensorType
}

// Plan returns the tensors of in, in output order (SortLikeLlama), with the
// type each gets under opt.Preset. It fails if a quantized tensor would be
// requantized without opt.AllowRequantize, or if a type cannot be
// converted.
func Plan(in *gguf.File, opt Options) ([]gguf.TensorInfo, error) {
	pl, _, err := plan(in, opt)
	if err != nil {
		return nil, err
	}
	out := make([]gguf.TensorInfo, len(pl))
	for i, p := range pl {
		out[i] = gguf.TensorInfo{Name: p.src.Name, Dims: p.src.Dims, Type: p.typ}
	}
	return out, nil
}

func isFloat(t gguf.TensorType) bool {
	return t == gguf.TypeF32 || t == gguf.TypeF16 || t == gguf.TypeBF16
}

func plan(in *gguf.File, opt Options) ([]plannedTensor, int, error) {
	info, err := ModelInfoFromGGUF(in)
	if err != nil {
		return nil, 0, err
	}
	ts := append([]gguf.TensorInfo(nil), in.Tensors...)
	SortLikeLlama(ts)
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	ch, err := NewChooser(opt.Preset, info, names)
	if err != nil {
		return nil, 0, err
	}
	out := make([]plannedTensor, len(ts))
	for i, t := range ts {
		typ, err := ch.Choose(t.Name, t.Dims, t.Type)
		if err != nil {
			return nil, 0, err
		}
		if typ != t.Type {
			if !isFloat(t.Type) && !opt.AllowRequantize {
				return nil, 0, fmt.Errorf("quantize: tensor %s: requantizing from type %s is disabled (input is already quantized; pass --allow-requantize to dequantize and requantize it, which loses accuracy)", t.Name, t.Type)
			}
			if !quant.CanDequantize(t.Type) {
				return nil, 0, fmt.Errorf("quantize: tensor %s: cannot convert from type %s", t.Name, t.Type)
			}
			if !quant.CanQuantize(typ) {
				return nil, 0, fmt.Errorf("quantize: tensor %s: cannot quantize to type %s", t.Name, typ)
			}
		}
		out[i] = plannedTensor{src: t, typ: typ}
	}
	return out, ch.Fallbacks, nil
}

// outputKV is the input's metadata as llama-quantize writes it: every pair
// in order, minus split keys, with general.quantization_version and
// general.file_type moved to the end (gguf_set_val_* removes and appends).
// MMFP4 keys are dropped and, if hasMMFP4, re-added after file_type.
func outputKV(in *gguf.File, fileType uint32, hasMMFP4 bool) []gguf.KV {
	var kv []gguf.KV
	for _, p := range in.KV {
		switch {
		case p.Key == "general.quantization_version", p.Key == "general.file_type",
			p.Key == "split.no", p.Key == "split.count", p.Key == "split.tensors.count",
			strings.HasPrefix(p.Key, "mmfp4."):
			continue
		}
		kv = append(kv, p)
	}
	kv = append(kv,
		gguf.KV{Key: "general.quantization_version", Value: gguf.Uint32(QuantizationVersion)},
		gguf.KV{Key: "general.file_type", Value: gguf.Uint32(fileType)})
	if hasMMFP4 {
		kv = append(kv,
			gguf.KV{Key: KeyMMFP4Version, Value: gguf.Uint32(MMFP4Version)},
			gguf.KV{Key: KeyMMFP4GroupSize, Value: gguf.Uint32(quant.MMFP4GroupSize)})
	}
	return kv
}

// Requantize writes in, converted to opt.Preset, to w as a GGUF file. Tensors
// are processed one at a time (the output of one tensor is buffered; the
// input is read from in's mapping), rows split over opt.Threads goroutines.
func Requantize(in *gguf.File, w io.Writer, opt Options) (Stats, error) {
	pl, fallbacks, err := plan(in, opt)
	if err != nil {
		return Stats{}, err
	}
	hasMMFP4 := false
	for _, p := range pl {
		hasMMFP4 = hasMMFP4 || p.typ == gguf.TypeMMFP4
	}
	gw := gguf.NewWriter(w)
	for _, kv := range outputKV(in, opt.Preset.FileType(), hasMMFP4) {
		if err := gw.AddKV(kv.Key, kv.Value); err != nil {
			return Stats{}, fmt.Errorf("quantize: metadata: %w", err)
		}
	}
	for _, p := range pl {
		if _, err := gw.AddTensor(p.src.Name, p.typ, p.src.Dims...); err != nil {
			return Stats{}, fmt.Errorf("quantize: %w", err)
		}
	}
	st := Stats{Types: map[gguf.TensorType]int{}, Fallbacks: fallbacks}
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	var buf []byte
	for i, p := range pl {
		src := in.TensorData(&p.src)
		n := p.src.NumElements()
		outTI := gguf.TensorInfo{Name: p.src.Name, Dims: p.src.Dims, Type: p.typ}
		size := outTI.NumBytes()
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "[%4d/%4d] %-36s - [%s], type = %6s, ", i+1, len(pl), p.src.Name, shapeString(p.src.Dims), p.src.Type)
		}
		data := src
		if p.typ != p.src.Type {
			if uint64(cap(buf)) < size {
				buf = make([]byte, size)
			}
			data = buf[:size]
			if opt.Progress != nil {
				fmt.Fprintf(opt.Progress, "converting to %s .. ", p.typ)
			}
			if err := ConvertTensor(p.src.Type, src, p.typ, data, p.src.Dims, threads); err != nil {
				return st, fmt.Errorf("quantize: tensor %s: %w", p.src.Name, err)
			}
			st.Changed++
			if opt.Progress != nil {
				fmt.Fprintf(opt.Progress, "size = %8.2f MiB -> %8.2f MiB\n", mib(uint64(len(src))), mib(size))
			}
		} else if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "size = %8.3f MiB\n", mib(size))
		}
		if err := gw.WriteTensorData(data); err != nil {
			return st, fmt.Errorf("quantize: write %s: %w", p.src.Name, err)
		}
		st.Tensors++
		st.Elements += n
		st.InBytes += uint64(len(src))
		st.OutBytes += size
		st.Types[p.typ]++
	}
	if err := gw.Close(); err != nil {
		return st, fmt.Errorf("quantize: %w", err)
	}
	if opt.Progress != nil {
		bi, bo := st.BPW()
		fmt.Fprintf(opt.Progress, "model size  = %8.2f MiB (%.2f BPW)\n", mib(st.InBytes), bi)
		fmt.Fprintf(opt.Progress, "quant size  = %8.2f MiB (%.2f BPW)\n", mib(st.OutBytes), bo)
		if st.Fallbacks > 0 {
			fmt.Fprintf(opt.Progress, "WARNING: %d of %d tensor(s) required fallback quantization\n", st.Fallbacks, st.Tensors)
		}
	}
	return st, nil
}

// RequantizeFile converts the GGUF file inPath into outPath (written to a
// temporary name in the same directory and renamed when complete).
func RequantizeFile(inPath, outPath string, opt Options) (Stats, error) {
	if sameFile(inPath, outPath) {
		return Stats{}, fmt.Errorf("quantize: output %s is the input file", outPath)
	}
	in, err := gguf.Open(inPath)
	if err != nil {
		return Stats{}, err
	}
	defer in.Close()
	return writeAtomically(outPath, func(w io.Writer) (Stats, error) { return Requantize(in, w, opt) })
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// writeAtomically runs write on a temporary file next to path and renames it
// to path on success (removing it on failure).
func writeAtomically(path string, write func(io.Writer) (Stats, error)) (Stats, error) {
	tmp := path + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return Stats{}, err
	}
	st, err := write(fh)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return st, err
	}
	return st, nil
}

func mib(b uint64) float64 { return float64(b) / 1024 / 1024 }

// shapeString is llama_format_tensor_shape: four "%5d" dims.
func shapeString(dims []uint64) string {
	var sb strings.Builder
	for i := 0; i < gguf.MaxDims; i++ {
		d := uint64(1)
		if i < len(dims) {
			d = dims[i]
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%5d", d)
	}
	return sb.String()
}

// rowsOf returns (ne0, number of rows, rows per 2-D slab) of ggml dims.
func rowsOf(dims []uint64) (ne0, rows, slabRows int, err error) {
	if len(dims) == 0 {
		return 0, 0, 0, errors.New("tensor has no dimensions")
	}
	ne0 = int(dims[0])
	rows = 1
	for _, d := range dims[1:] {
		rows *= int(d)
	}
	slabRows = 1
	if len(dims) > 1 {
		slabRows = int(dims[1])
	}
	return ne0, rows, slabRows, nil
}

// rowIO reads or writes one row of a tensor of some type: block types by row
// stride, MMFP4 through its slab layout.
type rowIO struct {
	typ      gguf.TensorType
	data     []byte
	ne0      int
	rowBytes int
	slabRows int
	slab     int // bytes per MMFP4 slab
}

func newRowIO(t gguf.TensorType, data []byte, ne0, rows, slabRows int) (rowIO, error) {
	rb, err := t.RowBytes(uint64(ne0))
	if err != nil {
		return rowIO{}, err
	}
	if uint64(len(data)) != rb*uint64(rows) {
		return rowIO{}, fmt.Errorf("%s data of %d rows x %d needs %d bytes, got %d", t, rows, ne0, rb*uint64(rows), len(data))
	}
	r := rowIO{typ: t, data: data, ne0: ne0, rowBytes: int(rb), slabRows: slabRows}
	if t == gguf.TypeMMFP4 {
		if rows%slabRows != 0 {
			return rowIO{}, fmt.Errorf("mmfp4: %d rows are not whole slabs of %d", rows, slabRows)
		}
		r.slab, err = quant.MMFP4SlabBytes(slabRows, ne0)
		if err != nil {
			return rowIO{}, err
		}
	}
	return r, nil
}

// mmfp4 returns the code and scale slices of row r.
func (r rowIO) mmfp4(row int) (q, s []byte, err error) {
	k := row / r.slabRows
	return quant.MMFP4Row(r.data[k*r.slab:(k+1)*r.slab], r.slabRows, r.ne0, row%r.slabRows)
}

func (r rowIO) read(row int, dst []float32) error {
	if r.typ == gguf.TypeMMFP4 {
		q, s, err := r.mmfp4(row)
		if err != nil {
			return err
		}
		quant.DequantizeRowMMFP4(q, s, dst)
		return nil
	}
	return quant.Dequantize(r.typ, r.data[row*r.rowBytes:(row+1)*r.rowBytes], dst)
}

func (r rowIO) write(row int, src []float32) error {
	if r.typ == gguf.TypeMMFP4 {
		q, s, err := r.mmfp4(row)
		if err != nil {
			return err
		}
		QuantizeRowMMFP4Search(src, q, s)
		return nil
	}
	return quant.Quantize(r.typ, src, r.data[row*r.rowBytes:(row+1)*r.rowBytes])
}

// ConvertTensor converts a whole tensor with ggml dims from type from (bytes
// src) to type to (bytes dst, exactly the tensor's size in that type): each
// row is dequantized exactly to float32 and quantized with the reference
// quantizer (MMFP4 through its slab layout, dims[1] rows per slab, with
// QuantizeRowMMFP4Search). Rows are
// split over threads goroutines; the result does not depend on threads.
func ConvertTensor(from gguf.TensorType, src []byte, to gguf.TensorType, dst []byte, dims []uint64, threads int) error {
	ne0, rows, slabRows, err := rowsOf(dims)
	if err != nil {
		return err
	}
	in, err := newRowIO(from, src, ne0, rows, slabRows)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	out, err := newRowIO(to, dst, ne0, rows, slabRows)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	if threads < 1 {
		threads = 1
	}
	chunk := max(1, 16384/max(ne0, 1)) // llama-quantize's min_chunk_size of 32*512 elements
	nChunks := (rows + chunk - 1) / chunk
	threads = min(threads, nChunks)
	var next atomic.Int64
	errs := make([]error, threads)
	var wg sync.WaitGroup
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			row := make([]float32, ne0)
			for {
				c := int(next.Add(1)) - 1
				if c >= nChunks {
					return
				}
				for r := c * chunk; r < min(rows, (c+1)*chunk); r++ {
					if err := in.read(r, row); err != nil {
						errs[w] = err
						return
					}
					if err := out.write(r, row); err != nil {
						errs[w] = err
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	return errors.Join(errs...)
}
