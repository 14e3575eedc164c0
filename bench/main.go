// Package bench is glmbench: llama-bench's command line, test matrix,
// timing and output formats (shared/spec/interfaces.md §1) driving glmrun's
// engine, plus the seed sweep (prompt sizes × output lengths with time to
// first token and decode rate), the summary JSON, energy and memory columns
// (CPU: RAPL and peak RSS; GPU backends: NVML energy, power and VRAM through
// the engine's GPUTelemetry), SVG plots and the comparison of saved runs.
//
// Backends: the CPU engine is built in; GPU backends (CUDA) are registered
// by the command as Backend values, so this package holds no GPU code and
// -dev auto|none|CUDA0 chooses among them per test.
package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// Main runs glmbench with args (without the program name) and returns the
// exit status. backends are the GPU backends the command registers (the CPU
// backend, package glm4moe, is always there); -dev picks among them.
func Main(args []string, stdout, stderr io.Writer, backends ...Backend) int {
	cores := PhysicalCores()
	p, err := Parse(args, cores)
	switch {
	case errors.Is(err, ErrHelp):
		Usage(stdout, "glmbench", cores)
		return 0
	case errors.Is(err, ErrListDevices):
		ListDevices(stdout, backends)
		return 0
	case err != nil:
		var ae *ArgError
		if errors.As(err, &ae) {
			if ae.Err != nil {
				fmt.Fprintf(stderr, "error: %v\n", ae.Err)
			}
			fmt.Fprintf(stderr, "error: invalid parameter for argument: %s\n", ae.Flag)
			Usage(stdout, "glmbench", cores)
			return 1
		}
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if len(p.Compare) > 0 {
		return compareMain(p, stdout, stderr)
	}
	bout := bufio.NewWriter(stdout)
	berr := bufio.NewWriter(stderr)
	defer bout.Flush()
	defer berr.Flush()
	r := &Runner{Params: p, Backends: append([]Backend{CPUBackend()}, backends...), Stdout: flushWriter{bout}, Stderr: flushWriter{berr}}
	runErr := r.Run()
	bout.Flush()
	if runErr != nil {
		fmt.Fprintf(berr, "glmbench: error: %v\n", runErr)
		return 1
	}
	if p.SummaryJSON != "" {
		s := Summarize(r.Results, r.Skipped, r.Started)
		if err := WriteSummary(s, p.SummaryJSON, bout); err != nil {
			fmt.Fprintf(berr, "glmbench: error: %v\n", err)
			return 1
		}
		if p.SummaryJSON != "-" {
			fmt.Fprintf(berr, "glmbench: summary written to %s\n", p.SummaryJSON)
		}
	}
	if p.Plot != "" {
		model := ""
		if len(r.Results) > 0 {
			model = r.Results[0].Model.Type
		}
		if err := writeSVGFile(p.Plot, func(w io.Writer) error { return WriteLineCharts(w, ResultCharts(r.Results, model)) }); err != nil {
			fmt.Fprintf(berr, "glmbench: error: %v\n", err)
			return 1
		}
	}
	return 0
}

// flushWriter flushes after every write so that progress lines and json
// objects appear as soon as they are written.
type flushWriter struct{ w *bufio.Writer }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

func writeSVGFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func compareMain(p *Params, stdout, stderr io.Writer) int {
	var runs []*Run
	for _, path := range p.Compare {
		r, err := LoadRun(path)
		if err != nil {
			fmt.Fprintf(stderr, "glmbench: error: %v\n", err)
			return 1
		}
		runs = append(runs, r)
	}
	WriteCompareTable(stdout, runs)
	if p.Plot != "" {
		if err := writeSVGFile(p.Plot, func(w io.Writer) error { return WriteBarChart(w, CompareChart(runs)) }); err != nil {
			fmt.Fprintf(stderr, "glmbench: error: %v\n", err)
			return 1
		}
	}
	return 0
}
