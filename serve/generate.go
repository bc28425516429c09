package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vkrun/vkrun"
)

// shape writes one endpoint's responses in OpenAI's shapes.
type shape interface {
	// whole is the response of a request without streaming.
	whole(text string, r vkrun.Result) any
	// first is the chunk that opens a stream, or nil.
	first() any
	// chunk carries text; last carries the finish reason and usage.
	chunk(text string) any
	last(r vkrun.Result) any
	// usage is the chunk of stream_options.include_usage: no choices.
	usage(r vkrun.Result) any
}

func (h *Handler) completions(w http.ResponseWriter, r *http.Request) {
	h.generate(w, r, false)
}

func (h *Handler) chatCompletions(w http.ResponseWriter, r *http.Request) {
	h.generate(w, r, true)
}

func (h *Handler) generate(w http.ResponseWriter, r *http.Request, chat bool) {
	be, e := h.state()
	if e != nil {
		writeError(w, e)
		return
	}
	var req request
	if e := h.decode(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	opts, e := h.options(&req, chat)
	if e != nil {
		writeError(w, e)
		return
	}
	vr := vkrun.Request{Options: opts}
	var sh shape
	if chat {
		if vr.Messages, e = messages(req.Messages); e != nil {
			writeError(w, e)
			return
		}
		sh = &chatShape{id: newID("chatcmpl"), created: time.Now().Unix(), model: h.o.Model}
	} else {
		if e := prompt(req.Prompt, &vr); e != nil {
			writeError(w, e)
			return
		}
		sh = &completionShape{id: newID("cmpl"), created: time.Now().Unix(), model: h.o.Model}
	}
	// The request's context is the sequence's: a client that leaves
	// cancels it.
	q, err := be.submit(r.Context(), vr)
	if err != nil {
		if e := h.submitError(err); e != nil {
			writeError(w, e)
		}
		return
	}
	if req.Stream {
		h.stream(w, q, sh, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	var text strings.Builder
	gap := h.m.gapTimer()
	for t, err := range q.Tokens() {
		if err != nil {
			h.m.sequence(q.Result())
			if e := h.submitError(err); e != nil {
				writeError(w, e)
			}
			return
		}
		gap(t)
		text.WriteString(t.Text)
	}
	res := q.Result()
	h.m.sequence(res)
	writeJSON(w, http.StatusOK, sh.whole(text.String(), res))
}

// stream sends the sequence as Server-Sent Events.
func (h *Handler) stream(w http.ResponseWriter, q sequence, sh shape, includeUsage bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err = fmt.Fprintf(w, "data: %s\n\n", b); err == nil {
			err = rc.Flush()
		}
		return err == nil
	}
	if f := sh.first(); f != nil && !send(f) {
		return
	}
	gap := h.m.gapTimer()
	for t, err := range q.Tokens() {
		if err != nil {
			h.m.sequence(q.Result())
			if e := h.submitError(err); e != nil {
				send(struct {
					Error *apiError `json:"error"`
				}{e})
			}
			return
		}
		gap(t)
		if t.Text != "" && !send(sh.chunk(t.Text)) {
			return // the client is gone: leaving the loop frees the slot
		}
	}
	res := q.Result()
	h.m.sequence(res)
	if !send(sh.last(res)) || includeUsage && !send(sh.usage(res)) {
		return
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	rc.Flush()
}

func finish(r vkrun.Result) *string {
	if r.Finish == "" {
		return nil
	}
	s := string(r.Finish)
	return &s
}

type completionShape struct {
	id      string
	created int64
	model   string
}

func (s *completionShape) object(choices []completionChoice, u *usage) completion {
	return completion{ID: s.id, Object: "text_completion", Created: s.created, Model: s.model, Choices: choices, Usage: u}
}

func (s *completionShape) whole(text string, r vkrun.Result) any {
	return s.object([]completionChoice{{Text: text, FinishReason: finish(r)}}, usageOf(r))
}

func (s *completionShape) first() any { return nil }

func (s *completionShape) chunk(text string) any {
	return s.object([]completionChoice{{Text: text}}, nil)
}

func (s *completionShape) last(r vkrun.Result) any {
	return s.object([]completionChoice{{FinishReason: finish(r)}}, usageOf(r))
}

func (s *completionShape) usage(r vkrun.Result) any {
	return s.object([]completionChoice{}, usageOf(r))
}

type chatShape struct {
	id      string
	created int64
	model   string
}

func (s *chatShape) object(kind string, choices []chatChoice, u *usage) chatCompletion {
	return chatCompletion{ID: s.id, Object: kind, Created: s.created, Model: s.model, Choices: choices, Usage: u}
}

func (s *chatShape) whole(text string, r vkrun.Result) any {
	return s.object("chat.completion", []chatChoice{{Message: &chatReply{Role: vkrun.RoleAssistant, Content: text}, FinishReason: finish(r)}}, usageOf(r))
}

func (s *chatShape) first() any {
	empty := ""
	return s.object("chat.completion.chunk", []chatChoice{{Delta: &chatDelta{Role: vkrun.RoleAssistant, Content: &empty}}}, nil)
}

func (s *chatShape) chunk(text string) any {
	return s.object("chat.completion.chunk", []chatChoice{{Delta: &chatDelta{Content: &text}}}, nil)
}

func (s *chatShape) last(r vkrun.Result) any {
	return s.object("chat.completion.chunk", []chatChoice{{Delta: &chatDelta{}, FinishReason: finish(r)}}, usageOf(r))
}

func (s *chatShape) usage(r vkrun.Result) any {
	return s.object("chat.completion.chunk", []chatChoice{}, usageOf(r))
}
