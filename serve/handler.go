package serve

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vkrun/vkrun"
)

// Options configures a Handler.
type Options struct {
	// Model is the model's id in /v1/models and in responses (default
	// "vkrun"). Requests may name any model; there is one.
	Model string
	// APIKey, when set, is required as "Authorization: Bearer KEY" on
	// every path but /health.
	APIKey string
	// MaxBodyBytes bounds a request body (default 1 MiB); a bigger one is
	// refused with 413.
	MaxBodyBytes int64
	// Defaults are applied before each request's own fields: the server's
	// token limit and sampling settings for requests that give none.
	Defaults []vkrun.GenerateOption
	// RetryAfter is what a 429 tells the client to wait (default 1 s).
	RetryAfter time.Duration
}

// Handler serves the OpenAI API over a Batch. It answers from the moment it
// is made: /health says 503 until Ready hands it the batch.
type Handler struct {
	o       Options
	created int64 // the model's "created" time in /v1/models
	m       *metrics

	mu   sync.Mutex
	be   backend // nil while the model loads
	lost bool    // a sequence failed with ErrDeviceLost
}

// backend is what the handler needs of a Batch; tests give it a fake one to
// reach states a real device rarely does (a lost device).
type backend interface {
	submit(ctx context.Context, r vkrun.Request) (sequence, error)
	stats() vkrun.BatchStats
}

// sequence is what the handler needs of a vkrun.Sequence.
type sequence interface {
	Tokens() iter.Seq2[vkrun.Token, error]
	Result() vkrun.Result
}

type batchBackend struct{ b *vkrun.Batch }

func (x batchBackend) submit(ctx context.Context, r vkrun.Request) (sequence, error) {
	q, err := x.b.Submit(ctx, r)
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (x batchBackend) stats() vkrun.BatchStats { return x.b.Stats() }

// New returns a handler that answers 503 (loading) until Ready.
func New(o Options) *Handler {
	if o.Model == "" {
		o.Model = "vkrun"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	return &Handler{o: o, created: time.Now().Unix(), m: newMetrics()}
}

// Ready starts serving requests from b. The caller still owns b: close the
// HTTP server first (http.Server.Shutdown waits for the requests in flight),
// then b.
func (h *Handler) Ready(b *vkrun.Batch) { h.ready(batchBackend{b}) }

func (h *Handler) ready(be backend) {
	h.mu.Lock()
	h.be = be
	h.mu.Unlock()
}

// state returns the backend, or the error to answer with when there is none
// to serve from.
func (h *Handler) state() (backend, *apiError) {
	h.mu.Lock()
	be, lost := h.be, h.lost
	h.mu.Unlock()
	switch {
	case be == nil:
		return nil, errUnavailable("the model is loading", "loading")
	case lost:
		return nil, errDeviceLost()
	}
	st := be.stats()
	switch {
	case st.DeviceLost:
		h.markLost()
		return nil, errDeviceLost()
	case st.Closed:
		return nil, errUnavailable("the server is shutting down", "shutting_down")
	}
	return be, nil
}

func (h *Handler) markLost() {
	h.mu.Lock()
	h.lost = true
	h.mu.Unlock()
}

// routes: path → method → handler; the endpoint label of /metrics is the
// path (unknown paths count as "other").
func (h *Handler) route(path string) (endpoint, method string, fn func(http.ResponseWriter, *http.Request)) {
	switch {
	case path == "/health":
		return path, http.MethodGet, h.health
	case path == "/metrics":
		return path, http.MethodGet, h.metrics
	case path == "/v1/models":
		return path, http.MethodGet, h.models
	case strings.HasPrefix(path, "/v1/models/"):
		return "/v1/models/{id}", http.MethodGet, h.model
	case path == "/v1/completions":
		return path, http.MethodPost, h.completions
	case path == "/v1/chat/completions":
		return path, http.MethodPost, h.chatCompletions
	}
	return "other", "", nil
}

// ServeHTTP answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, method, fn := h.route(r.URL.Path)
	sw := &statusWriter{ResponseWriter: w}
	defer func() { h.m.request(endpoint, sw.code()) }()
	switch {
	case fn == nil:
		writeError(sw, &apiError{status: http.StatusNotFound, Message: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path), Type: "not_found_error", Code: "not_found"})
	case r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead):
		sw.Header().Set("Allow", method)
		writeError(sw, &apiError{status: http.StatusMethodNotAllowed, Message: fmt.Sprintf("%s takes %s, not %s", r.URL.Path, method, r.Method), Type: "invalid_request_error", Code: "method_not_allowed"})
	case endpoint != "/health" && !h.authorized(r):
		sw.Header().Set("WWW-Authenticate", `Bearer realm="vkrun"`)
		writeError(sw, &apiError{status: http.StatusUnauthorized, Message: "a missing or wrong API key: send Authorization: Bearer KEY", Type: "authentication_error", Code: "invalid_api_key"})
	default:
		fn(sw, r)
	}
}

func (h *Handler) authorized(r *http.Request) bool {
	if h.o.APIKey == "" {
		return true
	}
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(h.o.APIKey)) == 1
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	if _, e := h.state(); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// modelObject is an entry of /v1/models.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (h *Handler) modelObject() modelObject {
	return modelObject{ID: h.o.Model, Object: "model", Created: h.created, OwnedBy: "vkrun"}
}

func (h *Handler) models(w http.ResponseWriter, r *http.Request) {
	if _, e := h.state(); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", []modelObject{h.modelObject()}})
}

func (h *Handler) model(w http.ResponseWriter, r *http.Request) {
	if _, e := h.state(); e != nil {
		writeError(w, e)
		return
	}
	if id := strings.TrimPrefix(r.URL.Path, "/v1/models/"); id != h.o.Model {
		writeError(w, &apiError{status: http.StatusNotFound, Message: fmt.Sprintf("no model %q; this server serves %q", id, h.o.Model), Type: "not_found_error", Code: "model_not_found"})
		return
	}
	writeJSON(w, http.StatusOK, h.modelObject())
}

func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	be := h.be
	h.mu.Unlock()
	var st *vkrun.BatchStats
	if be != nil {
		s := be.stats()
		st = &s
	}
	_, e := h.state()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	h.m.write(w, st, e == nil)
}

// apiError is an OpenAI error body and its status.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
	// retryAfter, for a 429, is the Retry-After header.
	retryAfter time.Duration
}

func errUnavailable(msg, code string) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, Message: msg, Type: "unavailable_error", Code: code}
}

func errDeviceLost() *apiError {
	return errUnavailable("the GPU was lost (VK_ERROR_DEVICE_LOST); restart the server", "device_lost")
}

func errInvalid(param, format string, args ...any) *apiError {
	e := &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error", Code: "invalid_value"}
	if param != "" {
		e.Param = &param
	}
	return e
}

// submitError is the answer to an error of Batch.Submit or of a sequence
// before anything was sent; nil for a cancelled request (the client left).
func (h *Handler) submitError(err error) *apiError {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	case errors.Is(err, vkrun.ErrContextFull) && errors.Is(err, vkrun.ErrInvalidRequest):
		e := errInvalid("prompt", "%s", message(err))
		e.Code = "context_length_exceeded"
		return e
	case errors.Is(err, vkrun.ErrInvalidRequest):
		return errInvalid("", "%s", message(err))
	case errors.Is(err, vkrun.ErrQueueFull):
		return &apiError{status: http.StatusTooManyRequests, Message: "every slot is busy and the queue is full; retry later",
			Type: "rate_limit_error", Code: "queue_full", retryAfter: h.o.RetryAfter}
	case errors.Is(err, vkrun.ErrDeviceLost):
		h.markLost()
		return errDeviceLost()
	case errors.Is(err, vkrun.ErrBatchClosed), errors.Is(err, vkrun.ErrModelClosed), errors.Is(err, vkrun.ErrSessionClosed):
		return errUnavailable("the server is shutting down", "shutting_down")
	}
	return &apiError{status: http.StatusInternalServerError, Message: err.Error(), Type: "server_error", Code: "internal_error"}
}

// message is err's text without the package prefix of the sentinel.
func message(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, vkrun.ErrInvalidRequest.Error()+": ")
	return s
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((e.retryAfter+time.Second-1)/time.Second))))
	}
	writeJSON(w, e.status, struct {
		Error *apiError `json:"error"`
	}{e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own types: cannot happen
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// statusWriter records the status code for /metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (Flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
