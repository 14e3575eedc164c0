package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// This file registers the routes and holds the small ones: health, models,
// metrics, props, tokenize, detokenize and apply-template.

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/health", s.handleHealth)
	m.HandleFunc("/v1/health", s.handleHealth)
	m.HandleFunc("/v1/models", s.handleModels)
	m.HandleFunc("/models", s.handleModels)
	m.HandleFunc("/v1/models/{id...}", s.handleModel)
	m.HandleFunc("/metrics", s.handleMetrics)
	m.HandleFunc("/v1/chat/completions", s.handleChat)
	m.HandleFunc("/chat/completions", s.handleChat)
	m.HandleFunc("/v1/completions", s.handleCompletion)
	m.HandleFunc("/completions", s.handleCompletion)
	m.HandleFunc("/props", s.handleProps)
	m.HandleFunc("/slots", s.handleSlots)
	m.HandleFunc("/tokenize", s.handleTokenize)
	m.HandleFunc("/detokenize", s.handleDetokenize)
	m.HandleFunc("/apply-template", s.handleApplyTemplate)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeError(w, errFileNotFound) })
	s.mux = m
}

// allow answers 405 unless r uses one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, errMethod)
	return false
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model_loaded": true})
}

// modelEntry is one element of /v1/models' "data".
func (s *Server) modelEntry(id string) map[string]any {
	info := s.engine().Info()
	return map[string]any{
		"id": id, "object": "model", "created": s.created, "owned_by": "glmrun",
		"aliases": s.modelIDs,
		"meta": map[string]any{
			"vocab_type": info.VocabType, "n_vocab": s.engine().VocabSize(), "n_ctx": s.cfg.MaxSeqLen,
			"n_ctx_train": info.NCtxTrain, "n_embd": info.NEmbd, "n_params": info.NParams,
			"size": info.Size, "ftype": info.FType,
		},
	}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	data := make([]any, 0, len(s.modelIDs))
	for _, id := range s.modelIDs {
		data = append(data, s.modelEntry(id))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	id := r.PathValue("id")
	if !containsString(s.modelIDs, id) {
		writeError(w, modelNotFound(id))
		return
	}
	writeJSON(w, http.StatusOK, s.modelEntry(id))
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	var buf bytes.Buffer
	s.met.writePrometheus(&buf)
	if dm, ok := s.engine().(DeviceMemoryReporter); ok {
		if used, total, ok := dm.DeviceMemory(); ok {
			fmt.Fprintf(&buf, "# HELP gpu_memory_used_bytes Device memory in use.\n# TYPE gpu_memory_used_bytes gauge\ngpu_memory_used_bytes %d\n", used)
			fmt.Fprintf(&buf, "# HELP gpu_memory_total_bytes Device memory in all.\n# TYPE gpu_memory_total_bytes gauge\ngpu_memory_total_bytes %d\n", total)
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Header().Set("Process-Start-Time-Unix", strconv.FormatInt(s.created, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) handleProps(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	info := s.engine().Info()
	d := s.cfg.Defaults
	writeJSON(w, http.StatusOK, map[string]any{
		"model_path":         info.Path,
		"model_alias":        CanonicalModelID,
		"total_slots":        s.cfg.MaxBatchSize,
		"n_ctx":              s.cfg.MaxSeqLen,
		"n_ctx_total":        s.cfg.CtxSize,
		"max_queue":          s.cfg.MaxQueue,
		"device":             info.Device,
		"build_info":         "glmrun",
		"is_sleeping":        false,
		"modalities":         map[string]bool{"vision": false, "audio": false},
		"chat_template_caps": map[string]any{"supports_thinking": true},
		"default_generation_settings": map[string]any{
			"n_ctx": s.cfg.MaxSeqLen,
			"params": map[string]any{
				"temperature": d.Temperature, "top_k": d.TopK, "top_p": d.TopP, "min_p": d.MinP,
				"repeat_penalty": d.RepeatPenalty, "repeat_last_n": d.RepeatLastN,
				"presence_penalty": d.PresencePenalty, "frequency_penalty": d.FrequencyPenalty,
				"seed": d.Seed, "n_predict": d.NPredict, "reasoning_format": s.cfg.ReasoningFormat,
			},
		},
	})
}

func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, e := readBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req struct {
		Content    *string `json:"content"`
		AddSpecial bool    `json:"add_special"`
		ParseSpec  *bool   `json:"parse_special"`
		WithPieces bool    `json:"with_pieces"`
	}
	if e := decodeStrict(body, &req); e != nil {
		writeError(w, e)
		return
	}
	if req.Content == nil {
		writeError(w, badRequest("content", "'content' is required"))
		return
	}
	special := true
	if req.ParseSpec != nil {
		special = *req.ParseSpec
	}
	ids, err := s.engine().Tokenize(*req.Content, special)
	if err != nil {
		writeError(w, badRequest("content", "tokenizing: %v", err))
		return
	}
	if !req.WithPieces {
		if ids == nil {
			ids = []int32{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tokens": ids})
		return
	}
	toks := make([]map[string]any, len(ids))
	for i, id := range ids {
		piece, _ := s.engine().Detokenize([]int32{id})
		toks[i] = map[string]any{"id": id, "piece": piece}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
}

func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, e := readBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req struct {
		Tokens []int32 `json:"tokens"`
	}
	if e := decodeStrict(body, &req); e != nil {
		writeError(w, e)
		return
	}
	for _, id := range req.Tokens {
		if id < 0 || int(id) >= s.engine().VocabSize() {
			writeError(w, badRequest("tokens", "token id %d is outside the vocabulary [0, %d)", id, s.engine().VocabSize()))
			return
		}
	}
	text, err := s.engine().Detokenize(req.Tokens)
	if err != nil {
		writeError(w, badRequest("tokens", "detokenizing: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"content": text})
}

func (s *Server) handleApplyTemplate(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, e := readBody(r)
	if e != nil {
		writeError(w, e)
		return
	}
	g, e := s.parseChatRequest(body)
	if e != nil {
		writeError(w, e)
		return
	}
	prompt, err := s.engine().RenderChat(g.Messages, g.ChatOpts)
	if err != nil {
		writeError(w, badRequest("messages", "applying the chat template: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"prompt": prompt})
}

// encodeFailedJSON stands in for a payload that could not be encoded.
const encodeFailedJSON = `{"error":{"code":500,"message":"encoding failed","type":"server_error","param":null}}`

// jsonString encodes v compactly; used inside SSE payloads.
func jsonString(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(encodeFailedJSON)
	}
	return b
}

func (s *Server) handleSlots(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	writeJSON(w, http.StatusOK, s.sched.slotStates())
}
