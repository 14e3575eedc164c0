// Command glmserve serves a GLM-4.7-Flash GGUF model over llama-server's
// OpenAI-compatible HTTP API (shared/spec/interfaces.md §3): /health,
// /v1/models, /v1/chat/completions and /v1/completions (streaming or not),
// /metrics (Prometheus), /props, /tokenize, /detokenize and /apply-template.
// Up to --max-batch-size requests decode together in one batched forward
// pass per step (continuous batching); more wait in a bounded queue.
//
// It listens at once (every route answers 503 "Loading model" until the
// model is loaded), logs "Model path verified", the device and "Ready to
// serve requests!" to stderr, and drains in-flight requests on SIGINT or
// SIGTERM (a second signal exits at once).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/glmrun/glmrun/gguf"
	"github.com/glmrun/glmrun/internal/cli"
	"github.com/glmrun/glmrun/server"
	"github.com/glmrun/glmrun/server/glm"
)

func main() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sig))
}

// run is glmserve's main; it returns the exit status. A value on sig starts
// a graceful shutdown, a second one ends the process's wait at once.
func run(args []string, stdout, stderr io.Writer, sig <-chan os.Signal) int {
	var o options
	fs := newFlags(&o)
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			cli.Usage(stdout, fs, synopsis)
			return 0
		}
		return cli.BadFlag(stderr, fs, synopsis, err)
	}
	if err := o.validate(fs); err != nil {
		return cli.BadFlag(stderr, fs, synopsis, err)
	}
	lg := log.New(stderr, "glmserve: ", log.LstdFlags|log.Lmicroseconds)

	// Check the model before binding the port: a wrong path is a usage error.
	f, err := gguf.Open(o.model)
	if err != nil {
		fmt.Fprintf(stderr, "error: failed to load model '%s'\n  %v\n", o.model, err)
		return 1
	}
	defer f.Close()
	lg.Printf("Model path verified: %s (%d tensors)", o.model, len(f.Tensors))
	if d := cli.ApplyGGUFSampling(f, fs, &o.sampling); d != "" {
		lg.Printf("sampling defaults from the GGUF's general.sampling.*: %s", d)
	}

	cfg := server.Config{
		MaxBatchSize: o.maxBatch, MaxSeqLen: o.maxSeqLen, UBatch: o.batch, MaxQueue: o.maxQueue,
		Aliases: o.aliases, APIKeys: o.apiKeys, MaxBodyBytes: o.maxBody,
		Defaults: &server.SamplingDefaults{
			Temperature: o.sampling.Temp, TopK: o.sampling.TopK, TopP: o.sampling.TopP, MinP: o.sampling.MinP,
			RepeatPenalty: o.sampling.RepeatPenalty, RepeatLastN: o.sampling.RepeatLastN,
			PresencePenalty: o.sampling.PresencePenalty, FrequencyPenalty: o.sampling.FrequencyPenalty,
			Seed: o.sampling.Seed, NPredict: o.nPredict,
		},
		ReasoningFormat: o.reasonFmt, ReasoningBudget: &o.reasonBudget,
		SSEPingInterval: time.Duration(o.ssePing) * time.Second,
		Timeout:         time.Duration(o.timeout) * time.Second,
		Log:             lg,
		LogRequests:     o.verbose,
	}
	if o.reasoning == "off" {
		off := false
		cfg.EnableThinking = &off
	}
	if o.kwargs != "" {
		_ = json.Unmarshal([]byte(o.kwargs), &cfg.ChatTemplateKwargs) // validated already
	}
	srv, err := server.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	addr := net.JoinHostPort(o.host, strconv.Itoa(o.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "error: cannot listen on %s: %v\n", addr, err)
		return 1
	}
	lg.Printf("HTTP server is listening on http://%s (503 \"Loading model\" until ready)", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	threads := o.threads
	if threads < 0 {
		threads = 0
	}
	t0 := time.Now()
	eng, err := glm.New(f, o.model, glm.Options{Threads: threads, UBatch: o.ubatch, Exact: o.exact,
		Device: o.device, CacheF32: o.cacheTypeK == "f32"})
	if err == nil {
		err = srv.Ready(eng)
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: failed to load model '%s'\n  %v\n", o.model, err)
		shutdown(srv, 0, lg)
		return 1
	}
	defer eng.Close()
	info := eng.Info()
	lg.Printf("device: %s (--device %s, -ngl %s)", info.Device, o.device, o.ngl)
	if fs.Changed("flash-attn") || fs.Changed("fa") {
		lg.Printf("note: -fa %s has no effect: attention is always one fused flash-style pass", o.flashAttn)
	}
	if !strings.HasPrefix(strings.ToLower(info.Device), "cuda") && (fs.Changed("cache-type-k") || fs.Changed("ctk") || fs.Changed("cache-type-v") || fs.Changed("ctv")) {
		lg.Printf("note: -ctk/-ctv %s has no effect on the CPU: its latent cache is f32", o.cacheTypeK)
	}
	lg.Printf("model: %s, %d params, %.2f GiB; load %.2f s", info.FType, info.NParams, float64(info.Size)/(1<<30), time.Since(t0).Seconds())
	lg.Printf("slots: %d x %d tokens (max-seq-len), logical batch %d, physical batch %d, queue %d",
		o.maxBatch, srv.MaxSeqLen(), o.batch, o.ubatch, o.maxQueue)
	lg.Printf("Ready to serve requests!")

	select {
	case err := <-served:
		if err != nil {
			fmt.Fprintf(stderr, "error: serving: %v\n", err)
			return 1
		}
		return 0
	case s := <-sig:
		lg.Printf("received %v: draining in-flight requests (up to %d s; signal again to exit now)", s, o.shutdownWait)
	}
	done := make(chan error, 1)
	go func() { done <- shutdown(srv, time.Duration(o.shutdownWait)*time.Second, lg) }()
	select {
	case err := <-done:
		if err != nil {
			return 1
		}
		lg.Printf("shut down cleanly")
		return 0
	case s := <-sig:
		lg.Printf("received %v again: exiting without waiting", s)
		return 1
	}
}

// shutdown drains srv for at most wait.
func shutdown(srv *server.Server, wait time.Duration, lg *log.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		lg.Printf("shutdown: %v", err)
	}
	return err
}
