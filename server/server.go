// Package server is glmserve's OpenAI-compatible HTTP server: llama-server's
// routes, request fields, response and SSE stream shapes, errors and
// Prometheus metrics (see ../shared/spec/interfaces.md §3), on top of a
// continuous-batching scheduler that decodes up to MaxBatchSize sequences
// together in one batched forward pass per step.
//
// The server talks to a model only through the Engine interface (engine.go);
// package server/glm provides the real GLM-4.7-Flash engine.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CanonicalModelID is the id every glmserve answers to and reports.
const CanonicalModelID = "glm-4.7-flash"

// DefaultMaxBodyBytes is the default request body limit (413 above it).
const DefaultMaxBodyBytes = 32 << 20

// SamplingDefaults are the server-wide sampling settings a request starts
// from (llama.cpp's defaults: interfaces.md §0).
type SamplingDefaults struct {
	Temperature      float32
	TopK             int
	TopP             float32
	MinP             float32
	RepeatPenalty    float32
	RepeatLastN      int
	PresencePenalty  float32
	FrequencyPenalty float32
	Seed             int64 // -1 = a random seed per request
	NPredict         int   // -1 = until EOG or the context is full
}

// LlamaDefaults returns llama.cpp's sampling defaults: temp 0.80, top_k 40,
// top_p 0.95, min_p 0.05, repeat_penalty 1.0 over 64 tokens, no presence or
// frequency penalty, random seed, unlimited n_predict.
func LlamaDefaults() SamplingDefaults {
	return SamplingDefaults{
		Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05,
		RepeatPenalty: 1, RepeatLastN: 64, Seed: -1, NPredict: -1,
	}
}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// MaxBatchSize is the number of slots: sequences decoded together in one
	// forward pass (default 8).
	MaxBatchSize int
	// MaxSeqLen is the context limit of one sequence, prompt + completion
	// (0 = min(model's n_ctx_train, 32768), resolved in Ready).
	MaxSeqLen int
	// CtxSize is the total number of KV positions all slots together may
	// reserve (0 = MaxBatchSize * MaxSeqLen). Must be >= MaxSeqLen.
	CtxSize int
	// UBatch is the most tokens one forward pass processes (default 512);
	// decode tokens always fit, prefill chunks fill the rest.
	UBatch int
	// MaxQueue is how many requests may wait for a slot (default 1024);
	// beyond it requests get 503 with Retry-After.
	MaxQueue int
	// Aliases are extra model ids accepted besides CanonicalModelID.
	Aliases []string
	// APIKeys, when non-empty, are the accepted bearer tokens.
	APIKeys []string
	// MaxBodyBytes limits request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Defaults are the sampling defaults (zero value: LlamaDefaults()).
	Defaults *SamplingDefaults
	// EnableThinking is the default for chat_template_kwargs.enable_thinking
	// (nil = true).
	EnableThinking *bool
	// ChatTemplateKwargs are server-wide template arguments
	// (--chat-template-kwargs); a request's own override them.
	ChatTemplateKwargs map[string]any
	// ReasoningFormat is the default reasoning_format ("" = auto).
	ReasoningFormat string
	// ReasoningBudget forces </think> after this many tokens (-1 = no limit;
	// nil = -1).
	ReasoningBudget *int
	// SSEPingInterval is how often an idle stream gets a ":" keep-alive
	// comment (default 30 s).
	SSEPingInterval time.Duration
	// Timeout bounds reading one request and a keep-alive connection's idle
	// time (llama-server's --timeout; default 3600 s). Responses, streams
	// included, are not cut by it.
	Timeout time.Duration
	// Log receives one line per notable event (nil = discard).
	Log *log.Logger
	// LogRequests adds one Log line per HTTP request: method, path, status,
	// duration.
	LogRequests bool
}

// resolvedConfig holds Config with every default applied.
type resolvedConfig struct {
	MaxBatchSize, MaxSeqLen, CtxSize, UBatch, MaxQueue int
	Aliases, APIKeys                                   []string
	MaxBodyBytes                                       int64
	Defaults                                           SamplingDefaults
	EnableThinking                                     bool
	ChatTemplateKwargs                                 map[string]any
	ReasoningFormat                                    string
	ReasoningBudget                                    int
	SSEPingInterval, Timeout                           time.Duration
	Log                                                *log.Logger
	LogRequests                                        bool
}

// Server serves the HTTP API. Create it with New, start serving at once
// (every route answers 503 "Loading model" until Ready is called), then call
// Ready with the loaded engine.
type Server struct {
	cfg       resolvedConfig
	modelIDs  []string // CanonicalModelID first, then the aliases
	created   int64
	met       *metrics
	mux       *http.ServeMux
	eng       atomic.Pointer[engineBox]
	sched     *scheduler
	schedOnce sync.Once
	httpSrv   *http.Server
	startedAt time.Time
}

type engineBox struct{ e Engine }

// New validates cfg and returns a server in the loading state.
func New(cfg Config) (*Server, error) {
	rc := resolvedConfig{
		MaxBatchSize: cfg.MaxBatchSize, MaxSeqLen: cfg.MaxSeqLen, CtxSize: cfg.CtxSize,
		UBatch: cfg.UBatch, MaxQueue: cfg.MaxQueue, APIKeys: cfg.APIKeys, MaxBodyBytes: cfg.MaxBodyBytes,
		EnableThinking: true, ChatTemplateKwargs: cfg.ChatTemplateKwargs, ReasoningFormat: cfg.ReasoningFormat,
		ReasoningBudget: -1, SSEPingInterval: cfg.SSEPingInterval, Timeout: cfg.Timeout, Log: cfg.Log,
		LogRequests: cfg.LogRequests,
	}
	if rc.MaxBatchSize == 0 {
		rc.MaxBatchSize = 8
	}
	if rc.MaxBatchSize < 1 {
		return nil, fmt.Errorf("max batch size must be >= 1, got %d", cfg.MaxBatchSize)
	}
	if rc.MaxSeqLen < 0 {
		return nil, fmt.Errorf("max sequence length must be >= 0 (0 = from the model), got %d", cfg.MaxSeqLen)
	}
	if rc.CtxSize < 0 {
		return nil, fmt.Errorf("context size must be >= 0, got %d", cfg.CtxSize)
	}
	if rc.UBatch == 0 {
		rc.UBatch = 512
	}
	if rc.UBatch < 1 {
		return nil, fmt.Errorf("ubatch size must be >= 1, got %d", cfg.UBatch)
	}
	if rc.MaxQueue == 0 {
		rc.MaxQueue = 1024
	}
	if rc.MaxQueue < 0 {
		return nil, fmt.Errorf("max queue must be >= 0, got %d", cfg.MaxQueue)
	}
	if rc.MaxBodyBytes == 0 {
		rc.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if rc.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("max body size must be > 0, got %d", cfg.MaxBodyBytes)
	}
	if cfg.Defaults != nil {
		rc.Defaults = *cfg.Defaults
	} else {
		rc.Defaults = LlamaDefaults()
	}
	if cfg.EnableThinking != nil {
		rc.EnableThinking = *cfg.EnableThinking
	}
	if cfg.ReasoningBudget != nil {
		rc.ReasoningBudget = *cfg.ReasoningBudget
	}
	switch rc.ReasoningFormat {
	case "", "auto", "deepseek", "none", "deepseek-legacy":
	default:
		return nil, fmt.Errorf("unknown reasoning format %q (want auto, deepseek, deepseek-legacy or none)", rc.ReasoningFormat)
	}
	for k, v := range rc.ChatTemplateKwargs {
		if e := checkKwarg(k, v); e != nil {
			return nil, fmt.Errorf("chat template kwargs: %s", e.Message)
		}
	}
	if rc.SSEPingInterval == 0 {
		rc.SSEPingInterval = 30 * time.Second
	}
	if rc.Timeout == 0 {
		rc.Timeout = time.Hour
	}
	if rc.Timeout < 0 {
		return nil, fmt.Errorf("timeout must be > 0, got %v", cfg.Timeout)
	}
	if rc.Log == nil {
		rc.Log = log.New(io.Discard, "", 0)
	}
	ids := []string{CanonicalModelID}
	for _, a := range cfg.Aliases {
		a = strings.TrimSpace(a)
		if a != "" && !containsString(ids, a) {
			ids = append(ids, a)
		}
	}
	rc.Aliases = ids[1:]
	s := &Server{cfg: rc, modelIDs: ids, met: newMetrics(), startedAt: time.Now()}
	s.created = s.startedAt.Unix()
	s.routes()
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: min(30*time.Second, rc.Timeout),
		ReadTimeout:       rc.Timeout,
		IdleTimeout:       rc.Timeout,
		ErrorLog:          rc.Log,
	}
	return s, nil
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Ready installs the loaded engine, resolves MaxSeqLen from it if it was 0,
// starts the scheduler and makes every route answer.
func (s *Server) Ready(eng Engine) error {
	if eng == nil {
		return errors.New("server: Ready needs an engine")
	}
	if s.eng.Load() != nil {
		return errors.New("server: Ready called twice")
	}
	if s.cfg.MaxSeqLen == 0 {
		s.cfg.MaxSeqLen = min(eng.Info().NCtxTrain, 32768)
		if s.cfg.MaxSeqLen <= 0 {
			s.cfg.MaxSeqLen = 4096
		}
	}
	if s.cfg.CtxSize == 0 {
		s.cfg.CtxSize = s.cfg.MaxBatchSize * s.cfg.MaxSeqLen
	}
	if s.cfg.CtxSize < s.cfg.MaxSeqLen {
		return fmt.Errorf("server: context size %d is smaller than the max sequence length %d", s.cfg.CtxSize, s.cfg.MaxSeqLen)
	}
	if eng.VocabSize() <= 0 {
		return fmt.Errorf("server: engine reports vocabulary size %d", eng.VocabSize())
	}
	s.sched = newScheduler(eng, s.cfg.MaxBatchSize, s.cfg.MaxSeqLen, s.cfg.CtxSize, s.cfg.UBatch, s.cfg.MaxQueue, s.met)
	go s.sched.run()
	s.eng.Store(&engineBox{eng})
	s.met.setLoaded(true)
	return nil
}

// MaxSeqLen is the per-sequence context limit (resolved once Ready ran).
func (s *Server) MaxSeqLen() int { return s.cfg.MaxSeqLen }

// engine returns the loaded engine (nil while loading).
func (s *Server) engine() Engine {
	if b := s.eng.Load(); b != nil {
		return b.e
	}
	return nil
}

// Handler returns the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s }

// Serve answers HTTP requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.httpSrv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, waits for in-flight requests
// (streams included) to finish or ctx to expire, then stops the scheduler.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.httpSrv.Shutdown(ctx)
	if s.sched != nil {
		if err != nil {
			// Draining timed out: stop anyway, abandoning what is left.
			_ = s.httpSrv.Close()
		}
		s.schedOnce.Do(s.sched.stop)
	}
	return err
}

// publicPaths need no API key (llama-server's public endpoints).
var publicPaths = map[string]bool{"/health": true, "/v1/health": true, "/models": true, "/v1/models": true}

// statusRecorder remembers the status code for requests_total.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets SSE handlers flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ServeHTTP applies the middleware (loading state, API key, body limit,
// metrics) and dispatches to the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	defer func() {
		if rec.status != 0 {
			s.met.response(rec.status)
		}
		if s.cfg.LogRequests {
			s.cfg.Log.Printf("%s %s %s -> %d in %v", r.RemoteAddr, r.Method, r.URL.Path, rec.status, time.Since(start).Round(time.Microsecond))
		}
	}()
	path := r.URL.Path
	// CORS, as llama-server: any origin may call the API from a browser.
	if r.Header.Get("Origin") != "" {
		rec.Header().Set("Access-Control-Allow-Origin", "*")
	}
	if r.Method == http.MethodOptions {
		h := rec.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h.Set("Access-Control-Allow-Headers", req)
		} else {
			h.Set("Access-Control-Allow-Headers", "*")
		}
		h.Set("Access-Control-Max-Age", "86400")
		rec.WriteHeader(http.StatusNoContent)
		return
	}
	if path != "/metrics" && s.engine() == nil {
		if path == "/health" || path == "/v1/health" {
			writeJSON(rec, http.StatusServiceUnavailable, map[string]any{
				"status": "loading", "model_loaded": false,
				"error": map[string]any{"code": 503, "message": "Loading model", "type": errUnavailable},
			})
			return
		}
		writeError(rec, errLoading)
		return
	}
	if len(s.cfg.APIKeys) > 0 && !publicPaths[path] && !strings.HasPrefix(path, "/v1/models/") {
		if !s.validKey(r) {
			writeError(rec, errBadAPIKey)
			return
		}
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rec, r.Body, s.cfg.MaxBodyBytes)
	}
	s.mux.ServeHTTP(rec, r)
}

func (s *Server) validKey(r *http.Request) bool {
	key := ""
	if h := r.Header.Get("Authorization"); h != "" {
		if k, ok := strings.CutPrefix(h, "Bearer "); ok {
			key = strings.TrimSpace(k)
		}
	}
	if key == "" {
		key = r.Header.Get("X-Api-Key")
	}
	if key == "" {
		return false
	}
	ok := false
	for _, k := range s.cfg.APIKeys {
		if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
			ok = true
		}
	}
	return ok
}

// readBody reads a request body, answering 413 above the limit.
func readBody(r *http.Request) ([]byte, *apiError) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{Code: http.StatusRequestEntityTooLarge, Type: errInvalidRequest,
				Message: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)}
		}
		return nil, badRequest("", "reading the request body: %v", err)
	}
	return b, nil
}
