package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Error types, as llama-server names them (interfaces.md §3.5).
const (
	errInvalidRequest = "invalid_request_error"
	errExceedContext  = "exceed_context_size_error"
	errAuthentication = "authentication_error"
	errNotFound       = "not_found_error"
	errServer         = "server_error"
	errUnavailable    = "unavailable_error"
)

// apiError is an error answered to a client: {"error":{...}} with HTTP status
// Code.
type apiError struct {
	Code       int    // HTTP status, repeated as the integer "code" field
	Type       string // one of the err* types
	Message    string
	Param      string // the offending request field, "" for null
	RetryAfter int    // seconds; >0 adds a Retry-After header
	// NPromptTokens and NCtx are set for exceed_context_size_error.
	NPromptTokens, NCtx int
}

func (e *apiError) Error() string { return e.Message }

// MarshalJSON writes the body {"error":{"code","message","type","param"}}.
func (e *apiError) MarshalJSON() ([]byte, error) {
	inner := map[string]any{
		"code":    e.Code,
		"message": e.Message,
		"type":    e.Type,
		"param":   nil,
	}
	if e.Param != "" {
		inner["param"] = e.Param
	}
	if e.Type == errExceedContext {
		inner["n_prompt_tokens"] = e.NPromptTokens
		inner["n_ctx"] = e.NCtx
	}
	return json.Marshal(map[string]any{"error": inner})
}

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{Code: http.StatusBadRequest, Type: errInvalidRequest, Message: fmt.Sprintf(format, args...), Param: param}
}

func exceedContext(nPrompt, nCtx int) *apiError {
	return &apiError{
		Code: http.StatusBadRequest, Type: errExceedContext,
		Message:       fmt.Sprintf("request (%d tokens) exceeds the available context size (%d tokens), try increasing it", nPrompt, nCtx),
		NPromptTokens: nPrompt, NCtx: nCtx,
	}
}

func modelNotFound(model string) *apiError {
	return &apiError{Code: http.StatusNotFound, Type: errNotFound, Message: fmt.Sprintf("model not found: '%s'", model), Param: "model"}
}

var (
	errFileNotFound = &apiError{Code: http.StatusNotFound, Type: errNotFound, Message: "File Not Found"}
	errLoading      = &apiError{Code: http.StatusServiceUnavailable, Type: errUnavailable, Message: "Loading model", RetryAfter: 1}
	errQueueFull    = &apiError{Code: http.StatusServiceUnavailable, Type: errUnavailable, Message: "server is busy: the request queue is full, retry later", RetryAfter: 1}
	errShuttingDown = &apiError{Code: http.StatusServiceUnavailable, Type: errUnavailable, Message: "server is shutting down", RetryAfter: 5}
	errBadAPIKey    = &apiError{Code: http.StatusUnauthorized, Type: errAuthentication, Message: "Invalid API Key"}
	errMethod       = &apiError{Code: http.StatusMethodNotAllowed, Type: errInvalidRequest, Message: "method not allowed"}
)

func computeError(err error) *apiError {
	return &apiError{Code: http.StatusInternalServerError, Type: errServer, Message: "Compute error: " + err.Error()}
}

// writeJSON answers status with v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":500,"message":"encoding the response failed","type":"server_error","param":null}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers e as an HTTP error response.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Code, e)
}
