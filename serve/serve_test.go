package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/vk"
)

// loadStories loads stories260K (skipping without a Vulkan loader) and
// checks at cleanup that the validation layer (VKRUN_VALIDATE=1) said
// nothing.
func loadStories(t *testing.T, opts ...vkrun.Option) *vkrun.Model {
	t.Helper()
	m, err := vkrun.Load(context.Background(), testmodel.Stories260K(t), opts...)
	if errors.Is(err, vk.ErrNoLoader) {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.Empty(t, m.ValidationMessages())
		m.Close()
	})
	return m
}

func rawTemplate(t *testing.T) vkrun.ChatTemplate {
	t.Helper()
	tmpl, err := vkrun.ChatTemplateByName("raw")
	require.NoError(t, err)
	return tmpl
}

// server is a Handler over a Batch of m behind an httptest server.
type server struct {
	*httptest.Server
	h *Handler
	b *vkrun.Batch
}

func newServer(t *testing.T, m *vkrun.Model, bo vkrun.BatchOptions, o Options) *server {
	t.Helper()
	b, err := m.NewBatch(bo)
	require.NoError(t, err)
	h := New(o)
	h.Ready(b)
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		b.Close()
	})
	return &server{Server: ts, h: h, b: b}
}

// lone is the text a lone Session generates for prompt.
func lone(t *testing.T, m *vkrun.Model, prompt string, opts ...vkrun.GenerateOption) string {
	t.Helper()
	s, err := m.NewSession()
	require.NoError(t, err)
	defer s.Close()
	var b strings.Builder
	for tok, err := range s.Generate(context.Background(), prompt, opts...) {
		require.NoError(t, err)
		b.WriteString(tok.Text)
	}
	return b.String()
}

func post(t *testing.T, url, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

func get(t *testing.T, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// decodeJSON reads resp's body as JSON into a generic map, and closes it.
func decodeJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	var v map[string]any
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &v), "body %s", b)
	return v
}

// completionResponse is the part of a response the tests read.
type completionResponse struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Text    string `json:"text"`
		Message *struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta *struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
	} `json:"error"`
}

func decodeCompletion(t *testing.T, resp *http.Response) completionResponse {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body %s", b)
	var c completionResponse
	require.NoError(t, json.Unmarshal(b, &c), "body %s", b)
	return c
}

// readEvents parses a Server-Sent Events body as a client does: "data: "
// lines, each event ended by a blank line. It returns the JSON events before
// [DONE] and whether [DONE] came last.
func readEvents(t *testing.T, resp *http.Response) (events []completionResponse, done bool) {
	t.Helper()
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			payload, ok := strings.CutPrefix(line, "data: ")
			require.True(t, ok, "a line that is not data: %q", line)
			data = append(data, payload)
			continue
		}
		require.Len(t, data, 1, "one data line per event")
		require.False(t, done, "an event after [DONE]")
		if data[0] == "[DONE]" {
			done = true
		} else {
			var c completionResponse
			require.NoError(t, json.Unmarshal([]byte(data[0]), &c), "event %s", data[0])
			events = append(events, c)
		}
		data = nil
	}
	require.NoError(t, sc.Err())
	require.Empty(t, data, "an event without its blank line")
	return events, done
}

// streamedText joins the text of a completion or chat stream and checks the
// chunk shapes: one choice per chunk, finish_reason only on the last.
func streamedText(t *testing.T, events []completionResponse, chat bool) (string, string, *usage) {
	t.Helper()
	var b strings.Builder
	finish := ""
	var u *usage
	for i, e := range events {
		require.Nil(t, e.Error)
		if len(e.Choices) == 0 { // include_usage's chunk
			require.NotNil(t, e.Usage)
			u = e.Usage
			continue
		}
		require.Len(t, e.Choices, 1)
		c := e.Choices[0]
		if chat {
			assert.Equal(t, "chat.completion.chunk", e.Object)
			require.NotNil(t, c.Delta)
			if i == 0 {
				require.NotNil(t, c.Delta.Role, "the first delta carries the role")
				assert.Equal(t, "assistant", *c.Delta.Role)
			}
			if c.Delta.Content != nil {
				b.WriteString(*c.Delta.Content)
			}
		} else {
			assert.Equal(t, "text_completion", e.Object)
			b.WriteString(c.Text)
		}
		if c.FinishReason != nil {
			assert.Empty(t, finish, "one chunk carries finish_reason")
			finish = *c.FinishReason
			require.NotNil(t, e.Usage, "the last chunk carries usage")
			u = e.Usage
		}
	}
	return b.String(), finish, u
}

func TestHealthModelsAndLoading(t *testing.T) {
	h := New(Options{Model: "stories"})
	for _, path := range []string{"/health", "/v1/models"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, path)
		assert.Contains(t, rec.Body.String(), `"code":"loading"`, path)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/completions", strings.NewReader(`{"prompt":"x"}`)))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), "\nvkrun_ready 0\n")

	m := loadStories(t)
	b, err := m.NewBatch(vkrun.BatchOptions{})
	require.NoError(t, err)
	defer b.Close()
	h.Ready(b)
	ts := httptest.NewServer(h)
	defer ts.Close()
	resp := get(t, ts.URL+"/health")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, map[string]any{"status": "ok"}, decodeJSON(t, resp))

	list := decodeJSON(t, get(t, ts.URL+"/v1/models"))
	assert.Equal(t, "list", list["object"])
	require.Len(t, list["data"], 1)
	model := list["data"].([]any)[0].(map[string]any)
	assert.Equal(t, "stories", model["id"])
	assert.Equal(t, "model", model["object"])
	assert.Equal(t, model, decodeJSON(t, get(t, ts.URL+"/v1/models/stories")))
	resp = get(t, ts.URL+"/v1/models/gpt-4")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "model_not_found", decodeJSON(t, resp)["error"].(map[string]any)["code"])
}

// A completion is the text a lone Session gives, whole or streamed, with
// its usage and finish reason, for each form of prompt.
func TestCompletions(t *testing.T) {
	m := loadStories(t)
	s := newServer(t, m, vkrun.BatchOptions{}, Options{Model: "stories"})
	want := lone(t, m, "Once upon a time", vkrun.WithMaxTokens(30))
	ids := m.Tokenizer().EncodeWith("Once upon a time", true)
	idsJSON, _ := json.Marshal(ids)
	for _, p := range []string{`"Once upon a time"`, `["Once upon a time"]`, string(idsJSON), "[" + string(idsJSON) + "]"} {
		t.Run(p, func(t *testing.T) {
			c := decodeCompletion(t, post(t, s.URL+"/v1/completions", `{"model":"x","prompt":`+p+`,"max_tokens":30,"temperature":0}`))
			assert.Equal(t, "text_completion", c.Object)
			assert.Equal(t, "stories", c.Model)
			assert.True(t, strings.HasPrefix(c.ID, "cmpl-"), c.ID)
			require.Len(t, c.Choices, 1)
			assert.Equal(t, want, c.Choices[0].Text)
			assert.Equal(t, "length", *c.Choices[0].FinishReason)
			assert.Equal(t, &usage{PromptTokens: len(ids), CompletionTokens: 30, TotalTokens: len(ids) + 30}, c.Usage)
		})
	}
	t.Run("stream", func(t *testing.T) {
		events, done := readEvents(t, post(t, s.URL+"/v1/completions", `{"prompt":"Once upon a time","max_tokens":30,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`))
		assert.True(t, done, "the stream ends with [DONE]")
		text, finish, u := streamedText(t, events, false)
		assert.Equal(t, want, text)
		assert.Equal(t, "length", finish)
		assert.Equal(t, 30, u.CompletionTokens)
		assert.Empty(t, events[len(events)-1].Choices, "include_usage adds a last chunk without choices")
	})
	t.Run("stop", func(t *testing.T) {
		stop := strings.Fields(want)[4]
		wantStop := lone(t, m, "Once upon a time", vkrun.WithMaxTokens(30), vkrun.WithStop(stop, "zzz"))
		for _, field := range []string{strconv.Quote(stop), `["zzz",` + strconv.Quote(stop) + `]`} {
			c := decodeCompletion(t, post(t, s.URL+"/v1/completions", `{"prompt":"Once upon a time","max_tokens":30,"temperature":0,"stop":`+field+`}`))
			assert.Equal(t, wantStop, c.Choices[0].Text)
			assert.Equal(t, "stop", *c.Choices[0].FinishReason)
			assert.Less(t, c.Usage.CompletionTokens, 30)
		}
	})
	t.Run("seeded sampling", func(t *testing.T) {
		body := `{"prompt":"Once upon a time","max_tokens":20,"temperature":1,"top_k":40,"top_p":0.9,"min_p":0.05,"seed":7}`
		a := decodeCompletion(t, post(t, s.URL+"/v1/completions", body))
		b := decodeCompletion(t, post(t, s.URL+"/v1/completions", body))
		assert.Equal(t, a.Choices[0].Text, b.Choices[0].Text, "the same seed gives the same text")
		assert.Equal(t, lone(t, m, "Once upon a time", vkrun.WithMaxTokens(20), vkrun.WithTemperature(1), vkrun.WithTopK(40),
			vkrun.WithTopP(0.9), vkrun.WithMinP(0.05), vkrun.WithSeed(7)), a.Choices[0].Text)
	})
}

// Chat renders the messages with the batch's template ("raw" for
// stories260K, which has none), whole and streamed.
func TestChatCompletions(t *testing.T) {
	m := loadStories(t)
	tmpl := rawTemplate(t)
	s := newServer(t, m, vkrun.BatchOptions{Template: tmpl}, Options{})
	msgs := []vkrun.Message{{Role: "system", Content: "Once upon a time"}, {Role: "user", Content: " there was a cat"}}
	ids, err := tmpl.Encode(m.Tokenizer(), msgs, true)
	require.NoError(t, err)
	want := lone(t, m, "", vkrun.WithPromptTokens(ids), vkrun.WithMaxTokens(25))
	body := `{"model":"vkrun","messages":[{"role":"system","content":"Once upon a time"},{"role":"user","content":[{"type":"text","text":" there was"},{"type":"text","text":" a cat"}]}],"max_tokens":25,"temperature":0`

	c := decodeCompletion(t, post(t, s.URL+"/v1/chat/completions", body+"}"))
	assert.Equal(t, "chat.completion", c.Object)
	assert.True(t, strings.HasPrefix(c.ID, "chatcmpl-"), c.ID)
	require.Len(t, c.Choices, 1)
	require.NotNil(t, c.Choices[0].Message)
	assert.Equal(t, "assistant", c.Choices[0].Message.Role)
	assert.Equal(t, want, c.Choices[0].Message.Content)
	assert.Equal(t, "length", *c.Choices[0].FinishReason)
	assert.Equal(t, len(ids), c.Usage.PromptTokens)

	events, done := readEvents(t, post(t, s.URL+"/v1/chat/completions", body+`,"stream":true}`))
	assert.True(t, done)
	text, finish, u := streamedText(t, events, true)
	assert.Equal(t, want, text)
	assert.Equal(t, "length", finish)
	assert.Equal(t, 25, u.CompletionTokens)

	// max_completion_tokens is the newer name of the limit.
	c = decodeCompletion(t, post(t, s.URL+"/v1/chat/completions", body+`,"max_completion_tokens":5}`))
	assert.Equal(t, 5, c.Usage.CompletionTokens)
}

// Every bad request gets OpenAI's error body and its status, and the server
// keeps serving.
func TestErrors(t *testing.T) {
	m := loadStories(t)
	s := newServer(t, m, vkrun.BatchOptions{}, Options{MaxBodyBytes: 4096})
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		typ, code, param         string
	}{
		{"malformed JSON", "POST", "/v1/completions", `{"prompt":`, 400, "invalid_request_error", "invalid_value", ""},
		{"empty body", "POST", "/v1/completions", ``, 400, "invalid_request_error", "invalid_value", ""},
		{"data after the object", "POST", "/v1/completions", `{"prompt":"a"} {}`, 400, "invalid_request_error", "invalid_value", ""},
		{"not an object", "POST", "/v1/completions", `[1]`, 400, "invalid_request_error", "invalid_value", ""},
		{"max_tokens a string", "POST", "/v1/completions", `{"prompt":"a","max_tokens":"ten"}`, 400, "invalid_request_error", "invalid_value", "max_tokens"},
		{"max_tokens a fraction", "POST", "/v1/completions", `{"prompt":"a","max_tokens":1.5}`, 400, "invalid_request_error", "invalid_value", "max_tokens"},
		{"stream a string", "POST", "/v1/completions", `{"prompt":"a","stream":"yes"}`, 400, "invalid_request_error", "invalid_value", "stream"},
		{"temperature a string", "POST", "/v1/chat/completions", `{"messages":[],"temperature":"hot"}`, 400, "invalid_request_error", "invalid_value", "temperature"},
		{"stop a number", "POST", "/v1/completions", `{"prompt":"a","stop":5}`, 400, "invalid_request_error", "invalid_value", "stop"},
		{"max_tokens < 0", "POST", "/v1/completions", `{"prompt":"a","max_tokens":-1}`, 400, "invalid_request_error", "invalid_value", "max_tokens"},
		{"n = 2", "POST", "/v1/completions", `{"prompt":"a","n":2}`, 400, "invalid_request_error", "invalid_value", "n"},
		{"n = 0", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"n":0}`, 400, "invalid_request_error", "invalid_value", "n"},
		{"temperature < 0", "POST", "/v1/completions", `{"prompt":"a","temperature":-0.5}`, 400, "invalid_request_error", "invalid_value", "temperature"},
		{"top_p > 1", "POST", "/v1/completions", `{"prompt":"a","top_p":1.5}`, 400, "invalid_request_error", "invalid_value", "top_p"},
		{"top_k < 0", "POST", "/v1/completions", `{"prompt":"a","top_k":-2}`, 400, "invalid_request_error", "invalid_value", "top_k"},
		{"min_p > 1", "POST", "/v1/completions", `{"prompt":"a","min_p":2}`, 400, "invalid_request_error", "invalid_value", "min_p"},
		{"seed < -1", "POST", "/v1/completions", `{"prompt":"a","seed":-5}`, 400, "invalid_request_error", "invalid_value", "seed"},
		{"two prompts", "POST", "/v1/completions", `{"prompt":["a","b"]}`, 400, "invalid_request_error", "invalid_value", "prompt"},
		{"prompt an object", "POST", "/v1/completions", `{"prompt":{"text":"a"}}`, 400, "invalid_request_error", "invalid_value", "prompt"},
		{"empty ids", "POST", "/v1/completions", `{"prompt":[]}`, 400, "invalid_request_error", "invalid_value", "prompt"},
		{"id outside the vocabulary", "POST", "/v1/completions", `{"prompt":[1,512]}`, 400, "invalid_request_error", "invalid_value", ""},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"x"}`, 400, "invalid_request_error", "invalid_value", "messages"},
		{"an image part", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "invalid_request_error", "invalid_value", "messages[0].content"},
		{"no chat template", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}]}`, 400, "invalid_request_error", "invalid_value", ""},
		{"body too large", "POST", "/v1/completions", `{"prompt":"` + strings.Repeat("a", 5000) + `"}`, 413, "invalid_request_error", "request_too_large", ""},
		{"unknown path", "GET", "/v2/engines", ``, 404, "not_found_error", "not_found", ""},
		{"GET a completion", "GET", "/v1/completions", ``, 405, "invalid_request_error", "method_not_allowed", ""},
		{"POST the models", "POST", "/v1/models", `{}`, 405, "invalid_request_error", "method_not_allowed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			body := decodeJSON(t, resp)
			e, ok := body["error"].(map[string]any)
			require.True(t, ok, "an OpenAI error body: %v", body)
			assert.NotEmpty(t, e["message"])
			assert.Equal(t, tc.typ, e["type"], "message %v", e["message"])
			assert.Equal(t, tc.code, e["code"], "message %v", e["message"])
			if tc.param != "" {
				assert.Equal(t, tc.param, e["param"], "message %v", e["message"])
			}
		})
	}
	c := decodeCompletion(t, post(t, s.URL+"/v1/completions", `{"prompt":"Once","max_tokens":3}`))
	assert.Equal(t, 3, c.Usage.CompletionTokens, "the server keeps serving")
}

// A prompt longer than the context of a model with global layers is a 400.
func TestPromptLongerThanContext(t *testing.T) {
	m := loadStories(t, vkrun.WithContext(16))
	s := newServer(t, m, vkrun.BatchOptions{}, Options{})
	resp := post(t, s.URL+"/v1/completions", `{"prompt":"`+strings.Repeat("Once upon a time ", 8)+`"}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	e := decodeJSON(t, resp)["error"].(map[string]any)
	assert.Equal(t, "context_length_exceeded", e["code"])
	assert.Equal(t, "prompt", e["param"])
	assert.Contains(t, e["message"], "the context holds 16")
	// A prompt that fits runs to the end of the context: "length".
	c := decodeCompletion(t, post(t, s.URL+"/v1/completions", `{"prompt":"Once","max_tokens":100}`))
	assert.Equal(t, "length", *c.Choices[0].FinishReason)
	assert.Equal(t, 16, c.Usage.TotalTokens-1, "every position used, and the last token sampled after it")
}

func TestAPIKey(t *testing.T) {
	m := loadStories(t)
	s := newServer(t, m, vkrun.BatchOptions{}, Options{APIKey: "sesame"})
	for _, tc := range []struct {
		name, path, auth string
		status           int
	}{
		{"no key", "/v1/models", "", 401},
		{"wrong key", "/v1/models", "Bearer open", 401},
		{"not Bearer", "/v1/models", "Basic sesame", 401},
		{"the key", "/v1/models", "Bearer sesame", 200},
		{"the key, scheme in lower case", "/v1/models", "bearer sesame", 200},
		{"metrics need the key", "/metrics", "", 401},
		{"health needs none", "/health", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.auth != "" {
				h = []string{"Authorization", tc.auth}
			}
			resp := get(t, s.URL+tc.path, h...)
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status == 401 {
				assert.Equal(t, "invalid_api_key", decodeJSON(t, resp)["error"].(map[string]any)["code"])
				return
			}
			resp.Body.Close()
		})
	}
	resp := post(t, s.URL+"/v1/completions", `{"prompt":"Once","max_tokens":2}`, "Authorization", "Bearer wrong")
	assert.Equal(t, 401, resp.StatusCode)
	resp.Body.Close()
	c := decodeCompletion(t, post(t, s.URL+"/v1/completions", `{"prompt":"Once","max_tokens":2}`, "Authorization", "Bearer sesame"))
	assert.Equal(t, 2, c.Usage.CompletionTokens)
}

// holdSlot runs a sequence on b directly and holds its slot inside its
// Tokens loop until release is closed.
func holdSlot(t *testing.T, b *vkrun.Batch) (release chan struct{}, done chan struct{}) {
	t.Helper()
	q, err := b.Submit(context.Background(), vkrun.Request{Options: []vkrun.GenerateOption{vkrun.WithMaxTokens(3)}})
	require.NoError(t, err)
	release, done, held := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for _, err := range q.Tokens() {
			if err == nil && first {
				first = false
				close(held)
				<-release
			}
		}
	}()
	<-held
	return release, done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// With every slot busy and the queue full, a request gets 429 with
// Retry-After; a queued one is served when the slot frees.
func TestQueueFull(t *testing.T) {
	m := loadStories(t)
	s := newServer(t, m, vkrun.BatchOptions{Slots: 1, MaxQueue: 1}, Options{RetryAfter: 2 * time.Second})
	release, done := holdSlot(t, s.b)
	queued := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(s.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"Once","max_tokens":4}`))
		if err != nil {
			resp = &http.Response{StatusCode: 0, Body: io.NopCloser(strings.NewReader(err.Error()))}
		}
		queued <- resp
	}()
	waitFor(t, "the queued request", func() bool { return s.b.Stats().Queued == 1 })

	resp := post(t, s.URL+"/v1/completions", `{"prompt":"Once","max_tokens":4,"stream":true}`)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"))
	e := decodeJSON(t, resp)["error"].(map[string]any)
	assert.Equal(t, "queue_full", e["code"])
	assert.Equal(t, "rate_limit_error", e["type"])

	close(release)
	<-done
	assert.Equal(t, 4, decodeCompletion(t, <-queued).Usage.CompletionTokens)
}

// A client that disconnects mid-stream cancels its sequence and frees the
// slot for the next request.
func TestDisconnectFreesSlot(t *testing.T) {
	m := loadStories(t)
	s := newServer(t, m, vkrun.BatchOptions{Slots: 1}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/completions",
		strings.NewReader(`{"max_tokens":400,"temperature":0,"stream":true}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r := bufio.NewReader(resp.Body)
	for events := 0; events < 3; {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(line, "data: ") {
			events++
		}
	}
	start := time.Now()
	cancel() // closes the connection
	resp.Body.Close()
	waitFor(t, "the cancelled sequence", func() bool { st := s.b.Stats(); return st.Cancelled == 1 && st.Active == 0 })
	assert.Zero(t, s.b.Stats().Served, "the sequence did not run to its end")
	t.Logf("slot freed %v after the disconnect", time.Since(start))
	c := decodeCompletion(t, post(t, s.URL+"/v1/completions", `{"prompt":"Once","max_tokens":5}`))
	assert.Equal(t, 5, c.Usage.CompletionTokens, "the next request gets the slot")
}

// fakeBackend plays a batch whose device is lost: submit fails with
// submitErr, or its sequence yields tokens and then err.
type fakeBackend struct {
	mu        sync.Mutex
	submitErr error
	tokens    []vkrun.Token
	err       error
	st        vkrun.BatchStats
}

func (f *fakeBackend) submit(ctx context.Context, r vkrun.Request) (sequence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitErr != nil {
		return nil, f.submitErr
	}
	return &fakeSequence{tokens: f.tokens, err: f.err}, nil
}

func (f *fakeBackend) stats() vkrun.BatchStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

type fakeSequence struct {
	tokens []vkrun.Token
	err    error
}

func (q *fakeSequence) Tokens() iter.Seq2[vkrun.Token, error] {
	return func(yield func(vkrun.Token, error) bool) {
		for _, t := range q.tokens {
			if !yield(t, nil) {
				return
			}
		}
		if q.err != nil {
			yield(vkrun.Token{}, q.err)
		}
	}
}

func (q *fakeSequence) Result() vkrun.Result { return vkrun.Result{Tokens: len(q.tokens)} }

// Device loss: a request that hits it gets 503 (an error event once the
// stream has begun), and /health then fails for good.
func TestDeviceLost(t *testing.T) {
	lost := fmt.Errorf("engine: decode: vk: vkQueueSubmit: %w", vkrun.ErrDeviceLost)
	for _, tc := range []struct {
		name   string
		fake   *fakeBackend
		stream bool
	}{
		{"at submit", &fakeBackend{submitErr: lost}, false},
		{"mid-sequence", &fakeBackend{tokens: []vkrun.Token{{ID: 5, Text: "Once"}}, err: lost}, false},
		{"mid-stream", &fakeBackend{tokens: []vkrun.Token{{ID: 5, Text: "Once"}}, err: lost}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Options{})
			h.ready(tc.fake)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
			require.Equal(t, http.StatusOK, rec.Code)

			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/completions", strings.NewReader(fmt.Sprintf(`{"prompt":"x","stream":%v}`, tc.stream))))
			if tc.stream {
				assert.Equal(t, http.StatusOK, rec.Code, "the stream had begun")
				assert.Contains(t, rec.Body.String(), "data: {\"error\":{")
				assert.Contains(t, rec.Body.String(), `"code":"device_lost"`)
				assert.NotContains(t, rec.Body.String(), "[DONE]")
			} else {
				assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
				assert.Contains(t, rec.Body.String(), `"code":"device_lost"`)
			}
			tc.fake.mu.Lock()
			tc.fake.submitErr, tc.fake.err = nil, nil // the backend would work again: the handler still refuses
			tc.fake.mu.Unlock()
			for _, path := range []string{"/health", "/v1/models"} {
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				assert.Equal(t, http.StatusServiceUnavailable, rec.Code, path)
				assert.Contains(t, rec.Body.String(), `"code":"device_lost"`, path)
			}
		})
	}
	// The batch's own report of a lost device fails /health too.
	fake := &fakeBackend{st: vkrun.BatchStats{DeviceLost: true}}
	h := New(Options{})
	h.ready(fake)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
}

// metricValue finds the value of the series named (with its labels) in a
// Prometheus text body.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("no series %s in\n%s", series, body)
	return 0
}

func TestMetrics(t *testing.T) {
	m := loadStories(t)
	s := newServer(t, m, vkrun.BatchOptions{Slots: 2}, Options{})
	generated := 0
	for i := range 3 {
		c := decodeCompletion(t, post(t, s.URL+"/v1/completions", fmt.Sprintf(`{"prompt":"Once","max_tokens":%d}`, 4+i)))
		generated += c.Usage.CompletionTokens
	}
	events, _ := readEvents(t, post(t, s.URL+"/v1/completions", `{"prompt":"Once","max_tokens":6,"stream":true}`))
	_, _, u := streamedText(t, events, false)
	generated += u.CompletionTokens
	post(t, s.URL+"/v1/completions", `{`).Body.Close()

	resp := get(t, s.URL+"/metrics")
	assert.Equal(t, "text/plain; version=0.0.4; charset=utf-8", resp.Header.Get("Content-Type"))
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	body := string(b)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`vkrun_ready`, 1},
		{`vkrun_requests_total{endpoint="/v1/completions",code="200"}`, 4},
		{`vkrun_requests_total{endpoint="/v1/completions",code="400"}`, 1},
		{`vkrun_generated_tokens_total`, float64(generated)},
		{`vkrun_decode_steps_total`, float64(generated)},
		{`vkrun_sequences_total{result="served"}`, 4},
		{`vkrun_sequences_active`, 0},
		{`vkrun_sequences_queued`, 0},
		{`vkrun_slots`, 2},
		{`vkrun_time_to_first_token_seconds_count`, 4},
		{`vkrun_time_to_first_token_seconds_bucket{le="+Inf"}`, 4},
		{`vkrun_time_per_output_token_seconds_count`, float64(generated - 4)},
		{`vkrun_device_lost`, 0},
	} {
		assert.Equal(t, tc.want, metricValue(t, body, tc.series), tc.series)
	}
	assert.Equal(t, float64(s.b.Stats().DeviceBytes), metricValue(t, body, `vkrun_device_memory_bytes{memory="device"}`))
	assert.Positive(t, metricValue(t, body, `vkrun_device_memory_bytes{memory="device"}`)+metricValue(t, body, `vkrun_device_memory_bytes{memory="host"}`))
	assert.Positive(t, metricValue(t, body, `vkrun_prompt_tokens_total`))
	st := s.b.Stats()
	var steps, seqs uint64
	for k, n := range st.StepSizes {
		steps += n
		seqs += uint64(k) * n
	}
	assert.Equal(t, float64(steps), metricValue(t, body, `vkrun_batch_size_count`))
	assert.Equal(t, float64(steps), metricValue(t, body, `vkrun_batch_size_bucket{le="2"}`), "2 slots: every step in the last bucket")
	assert.Equal(t, float64(seqs), metricValue(t, body, `vkrun_batch_size_sum`))
	assert.Positive(t, steps)
	checkPrometheusText(t, body)
	// Buckets are cumulative.
	prev := -1.0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "vkrun_time_to_first_token_seconds_bucket") {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, v, prev, line)
			prev = v
		}
	}
}

// Shutting the HTTP server down lets a stream in flight run to its end;
// then the batch closes, and the handler says so.
func TestShutdownDrains(t *testing.T) {
	m := loadStories(t)
	b, err := m.NewBatch(vkrun.BatchOptions{})
	require.NoError(t, err)
	h := New(Options{})
	h.Ready(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	want := lone(t, m, "Once upon a time", vkrun.WithMaxTokens(60))

	resp := post(t, url+"/v1/completions", `{"prompt":"Once upon a time","max_tokens":60,"temperature":0,"stream":true}`)
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	require.NoError(t, err)
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(context.Background()) }()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	resp.Body.Close()
	events, done := readEvents(t, &http.Response{StatusCode: 200, Header: resp.Header, Body: io.NopCloser(strings.NewReader(first + string(rest)))})
	assert.True(t, done, "the stream in flight ran to its end")
	text, finish, _ := streamedText(t, events, false)
	assert.Equal(t, want, text)
	assert.Equal(t, "length", finish)
	require.NoError(t, <-shutdown)
	assert.ErrorIs(t, <-served, http.ErrServerClosed)

	require.NoError(t, b.Close())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), `"code":"shutting_down"`)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/completions", strings.NewReader(`{}`)))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
}

// N concurrent greedy requests, streamed and not, on fewer slots, each
// return exactly the text of the request alone.
func TestConcurrentGreedyEqualsAlone(t *testing.T) {
	m := loadStories(t)
	s := newServer(t, m, vkrun.BatchOptions{Slots: 3}, Options{})
	prompts := []string{"Once upon a time", "Lily saw", "The dog", "Tom was", "One day", "The sun was"}
	want := make([]string, len(prompts))
	for i, p := range prompts {
		want[i] = decodeCompletion(t, post(t, s.URL+"/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":40,"temperature":0}`, p))).Choices[0].Text
		assert.Equal(t, lone(t, m, p, vkrun.WithMaxTokens(40)), want[i])
	}
	got := make([]string, 2*len(prompts))
	var wg sync.WaitGroup
	for i := range got {
		p := prompts[i%len(prompts)]
		stream := i >= len(prompts)
		wg.Go(func() {
			resp := post(t, s.URL+"/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":40,"temperature":0,"stream":%v}`, p, stream))
			if stream {
				events, _ := readEvents(t, resp)
				got[i], _, _ = streamedText(t, events, false)
			} else {
				got[i] = decodeCompletion(t, resp).Choices[0].Text
			}
		})
	}
	wg.Wait()
	for i, g := range got {
		assert.Equal(t, want[i%len(prompts)], g, "request %d", i)
	}
}

// A bounded load on loopback (issue 12): 16 clients at a time on 2 slots,
// chat and completions, streamed and not, greedy and sampled; 200 requests
// to warm up, then 200 measured. None fails; the device memory after the
// first request is the device memory at the end, exactly; the Go heap and
// RSS at the end are what they were after the warm-up, within tight
// bounds; and no goroutine outlives the server.
//
// Why after a warm-up, and why 2 slots: host memory grows with the step
// shapes the engine has recorded (engine.Batch keeps one command buffer
// per shape, the slots a step carries and their token counts, at most 32,
// least recently used evicted). Measured on lavapipe, 2 cores, with a
// scratch copy of this test that read runtime.MemStats and glibc's
// mallinfo2 every 100 requests: the Go heap stays at 3.5 MiB and the file
// mappings at 80 MiB throughout; each recorded shape holds about 0.2–0.3
// MiB of driver memory.
//   - On 2 slots this mix takes about 20 shapes. They are recorded over the
//     first few hundred requests, and then nothing is: 140 MiB after the
//     first request, 145.5 after 100, 146.6 after 1000 (+0.4 to +0.7 MiB
//     from 300 to 1000 in two runs), malloc's in-use bytes growing only by
//     the last few shapes.
//   - On 4 slots it takes more than 77 shapes (which slot holds the prompt,
//     its length, which others decode, whether logits are read back). The
//     32 recordings are then evicted and made again (about one per three
//     requests), and the churn fragments malloc's heap: in-use bytes flat
//     at 49 MB from request 100 on, but free bytes held grow from 5 to 18
//     MB, so RSS climbs for about 1500 requests (138, 155 after 300, 164
//     after 1200) and only then holds (165.8 after 1800, 166.2 after 3000).
//     That is a plateau, not a leak, but too slow to reach in a test.
//
// So this test runs the shapes of a 2-slot load, which fit the recording
// cache, and measures from the end of a warm-up of the same mix, when
// (nearly) every shape has been recorded. Over the next 200 requests,
// measured: the Go heap moves by less than 0.15 MiB and RSS grows by 0.4
// to 2.1 MiB (a shape or two that the warm-up missed, and page-level
// noise). The bounds, 1 MiB of Go heap (5 KiB a request) and 4 MiB of RSS
// (20 KiB a request, an eighth of the 32 MiB slack from the first request
// this test had before), catch a leak per request or per recording.
func TestLoad(t *testing.T) {
	m := loadStories(t)
	goroutines := runtime.NumGoroutine()
	const warm, total, concurrent = 200, 200, 16
	// MaxQueue = concurrent: 16 clients can never overflow the queue, so a
	// 429 here is a failure.
	b, err := m.NewBatch(vkrun.BatchOptions{Slots: 2, MaxQueue: concurrent, Template: rawTemplate(t)})
	require.NoError(t, err)
	h := New(Options{Defaults: []vkrun.GenerateOption{vkrun.WithMaxTokens(8)}})
	h.Ready(b)
	ts := httptest.NewServer(h) // 127.0.0.1
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrent}}
	request := func(i int) error {
		path, body := "/v1/completions", fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":%d`, 1+i%7)
		if i%3 == 1 {
			path, body = "/v1/chat/completions", fmt.Sprintf(`{"messages":[{"role":"user","content":"Lily"}],"max_tokens":%d`, 1+i%5)
		}
		if i%2 == 1 {
			body += `,"temperature":0.8,"seed":` + strconv.Itoa(i)
		} else {
			body += `,"temperature":0`
		}
		stream := i%4 >= 2
		body += fmt.Sprintf(`,"stream":%v}`, stream)
		resp, err := client.Post(ts.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		all, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
			return err
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("status %d: %s", resp.StatusCode, all)
		case stream && !strings.HasSuffix(string(all), "data: [DONE]\n\n"):
			return fmt.Errorf("a stream without [DONE]: %s", all)
		}
		return nil
	}
	var mu sync.Mutex
	var failures []string
	// load sends requests from…to−1, concurrent at a time, and waits for
	// them all.
	load := func(from, to int) {
		sem := make(chan struct{}, concurrent)
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := request(i); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("request %d: %v", i, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	require.NoError(t, request(0))
	first := b.Stats()
	rssFirst := rss(t)

	start := time.Now()
	load(1, warm)
	rssWarm, heapWarm := rss(t), heapAlloc()
	load(warm, warm+total)
	rssEnd, heapEnd := rss(t), heapAlloc()
	t.Logf("%d requests, %d at a time, in %v; RSS %d KiB after the first, %d KiB after %d, %d KiB at the end; Go heap %d KiB after %d, %d KiB at the end",
		warm+total, concurrent, time.Since(start), rssFirst>>10, rssWarm>>10, warm, rssEnd>>10, heapWarm>>10, warm, heapEnd>>10)
	assert.Empty(t, failures)
	st := b.Stats()
	assert.Equal(t, warm+total, st.Served)
	assert.Zero(t, st.Failed+st.Cancelled)
	assert.Equal(t, first.DeviceBytes, st.DeviceBytes, "device memory after the first request and at the end")
	assert.Equal(t, first.HostBytes, st.HostBytes, "host-visible device memory after the first request and at the end")
	// The Go heap after a GC: live objects only, so 1 MiB is slack for
	// the connections' buffers that the pool keeps (measured: ±0.2 MiB).
	assert.LessOrEqual(t, heapEnd, heapWarm+1<<20, "Go heap after the warm-up %d KiB, at the end %d KiB", heapWarm>>10, heapEnd>>10)
	assert.LessOrEqual(t, rssEnd, rssWarm+4<<20, "RSS after the warm-up %d KiB, at the end %d KiB", rssWarm>>10, rssEnd>>10)

	client.CloseIdleConnections()
	ts.Close()
	require.NoError(t, b.Close())
	settle(t, goroutines)
}

// heapAlloc is the bytes of live Go objects after a GC.
func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rss is the process's resident set (VmRSS of /proc/self/status) after a
// GC that returns what it can to the kernel.
func rss(t *testing.T) uint64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status to read RSS from: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err, line)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// settle waits for the goroutine count to come back to before.
func settle(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkPrometheusText checks the text exposition format: every sample's
// family has one HELP and one TYPE line before its samples, families are not
// split, and each histogram has cumulative _bucket series with ascending le
// ending in +Inf, whose count is _count, and a _sum.
func checkPrometheusText(t *testing.T, body string) {
	t.Helper()
	require.True(t, strings.HasSuffix(body, "\n"), "the last line ends with a newline")
	types := map[string]string{}
	helps := map[string]bool{}
	done := map[string]bool{} // families whose samples have ended
	current := ""
	type hist struct {
		les     []float64
		counts  []float64
		sum     bool
		count   float64
		counted bool
	}
	hists := map[string]*hist{}
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			f := strings.SplitN(rest, " ", 3)
			require.Len(t, f, 3, line)
			switch f[0] {
			case "HELP":
				assert.False(t, helps[f[1]], "one HELP for %s", f[1])
				helps[f[1]] = true
			case "TYPE":
				assert.Empty(t, types[f[1]], "one TYPE for %s", f[1])
				assert.Contains(t, []string{"counter", "gauge", "histogram"}, f[2], line)
				types[f[1]] = f[2]
				if f[2] == "histogram" {
					hists[f[1]] = &hist{}
				}
			default:
				t.Errorf("a comment that is neither HELP nor TYPE: %q", line)
			}
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		require.Positive(t, sp, line)
		series, value := line[:sp], line[sp+1:]
		v, err := strconv.ParseFloat(value, 64)
		require.NoError(t, err, line)
		name, labels, _ := strings.Cut(series, "{")
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == "histogram" {
				family = base
			}
		}
		require.NotEmpty(t, types[family], "a TYPE line before %s", line)
		assert.True(t, helps[family], "a HELP line before %s", line)
		if family != current {
			assert.False(t, done[family], "family %s split", family)
			done[current] = true
			current = family
		}
		if types[family] == "counter" {
			assert.True(t, strings.HasSuffix(family, "_total"), "counter %s ends in _total", family)
		}
		h := hists[family]
		if h == nil {
			continue
		}
		switch {
		case name == family+"_bucket":
			le, ok := strings.CutPrefix(labels, `le="`)
			require.True(t, ok, line)
			le = strings.TrimSuffix(le, `"}`)
			b, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
			require.NoError(t, err, line)
			if n := len(h.les); n > 0 {
				assert.Greater(t, b, h.les[n-1], "le ascending: %s", line)
				assert.GreaterOrEqual(t, v, h.counts[n-1], "buckets cumulative: %s", line)
			}
			h.les, h.counts = append(h.les, b), append(h.counts, v)
		case name == family+"_sum":
			h.sum = true
		case name == family+"_count":
			h.count, h.counted = v, true
		}
	}
	for name, h := range hists {
		require.NotEmpty(t, h.les, name)
		assert.True(t, math.IsInf(h.les[len(h.les)-1], 1), "%s ends with le=\"+Inf\"", name)
		assert.True(t, h.sum && h.counted, "%s has _sum and _count", name)
		assert.Equal(t, h.count, h.counts[len(h.counts)-1], "%s: the +Inf bucket is _count", name)
	}
}
