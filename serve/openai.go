package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/vkrun/vkrun"
)

// request is the body of /v1/completions and /v1/chat/completions: the
// fields vkrun reads. Pointers tell an absent field from a zero one.
type request struct {
	Prompt              json.RawMessage `json:"prompt"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	MinP                *float64        `json:"min_p"`
	Seed                *int64          `json:"seed"`
	Stop                stopList        `json:"stop"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// chatMessage is one message of a chat request. Content is a string or a
// list of parts, of which vkrun takes the text ones.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// stopList is "stop": a string or a list of strings.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stopList{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return &fieldError{"stop", "want a string or a list of strings"}
	}
	*s = list
	return nil
}

// fieldError is a field of the wrong shape, found by its UnmarshalJSON.
type fieldError struct{ field, want string }

func (e *fieldError) Error() string { return e.field + ": " + e.want }

// decode reads the JSON body into req, with the error to answer with.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, req *request) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the request body is over %d bytes", tooBig.Limit),
				Type: "invalid_request_error", Code: "request_too_large"}
		}
		return errInvalid("", "reading the request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(req); err != nil {
		var typeErr *json.UnmarshalTypeError
		var fieldErr *fieldError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return errInvalid(typeErr.Field, "field %s: a JSON %s is not a valid value (want %s)", typeErr.Field, typeErr.Value, jsonKind(typeErr.Type.String()))
		case errors.As(err, &typeErr):
			return errInvalid("", "the request body must be a JSON object, not a %s", typeErr.Value)
		case errors.As(err, &fieldErr):
			return errInvalid(fieldErr.field, "field %s: %s", fieldErr.field, fieldErr.want)
		case errors.Is(err, io.EOF):
			return errInvalid("", "the request body is empty; send a JSON object")
		}
		return errInvalid("", "the request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return errInvalid("", "the request body has data after its JSON object")
	}
	return nil
}

// jsonKind names a Go type as the JSON a client should send.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "*"):
		return jsonKind(goType[1:])
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	}
	return "an object"
}

// options turns the request's sampling fields into Generate options, after
// the server's defaults. chat says which token limit field to prefer.
func (h *Handler) options(req *request, chat bool) ([]vkrun.GenerateOption, *apiError) {
	if req.N != nil && *req.N != 1 {
		return nil, errInvalid("n", "n must be 1 (one choice per request), not %d", *req.N)
	}
	var opts []vkrun.GenerateOption
	// A request without a seed samples afresh; -1 asks for that too
	// (llama.cpp's convention).
	switch {
	case req.Seed == nil || *req.Seed == -1:
		opts = append(opts, vkrun.WithSeed(rand.Uint64()))
	case *req.Seed < 0:
		return nil, errInvalid("seed", "seed must be ≥ 0, or -1 for a random one; not %d", *req.Seed)
	}
	opts = append(opts, h.o.Defaults...)
	if req.Seed != nil && *req.Seed >= 0 {
		opts = append(opts, vkrun.WithSeed(uint64(*req.Seed)))
	}
	limit, param := req.MaxTokens, "max_tokens"
	if chat && req.MaxCompletionTokens != nil {
		limit, param = req.MaxCompletionTokens, "max_completion_tokens"
	}
	if limit != nil {
		if *limit < 0 {
			return nil, errInvalid(param, "%s must be ≥ 0, not %d", param, *limit)
		}
		opts = append(opts, vkrun.WithMaxTokens(*limit))
	}
	if v := req.Temperature; v != nil {
		if *v < 0 {
			return nil, errInvalid("temperature", "temperature must be ≥ 0, not %v", *v)
		}
		opts = append(opts, vkrun.WithTemperature(*v))
	}
	if v := req.TopP; v != nil {
		if *v < 0 || *v > 1 {
			return nil, errInvalid("top_p", "top_p must be in [0, 1], not %v", *v)
		}
		opts = append(opts, vkrun.WithTopP(*v))
	}
	if v := req.TopK; v != nil {
		if *v < 0 {
			return nil, errInvalid("top_k", "top_k must be ≥ 0, not %d", *v)
		}
		opts = append(opts, vkrun.WithTopK(*v))
	}
	if v := req.MinP; v != nil {
		if *v < 0 || *v > 1 {
			return nil, errInvalid("min_p", "min_p must be in [0, 1], not %v", *v)
		}
		opts = append(opts, vkrun.WithMinP(*v))
	}
	if len(req.Stop) > 0 {
		opts = append(opts, vkrun.WithStop(req.Stop...))
	}
	return opts, nil
}

// prompt reads a completion's prompt: a string, a list of one string, token
// ids, or a list of one list of ids. Absent or null, the text starts from BOS.
func prompt(raw json.RawMessage, r *vkrun.Request) *apiError {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		r.Prompt = s
		return nil
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		r.PromptIDs = ids
		if len(ids) == 0 {
			return errInvalid("prompt", "the prompt is an empty list of token ids")
		}
		return nil
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		if len(texts) != 1 {
			return errInvalid("prompt", "one prompt per request, not %d", len(texts))
		}
		r.Prompt = texts[0]
		return nil
	}
	var idLists [][]int
	if json.Unmarshal(raw, &idLists) == nil {
		if len(idLists) != 1 || len(idLists[0]) == 0 {
			return errInvalid("prompt", "one prompt per request, not %d", len(idLists))
		}
		r.PromptIDs = idLists[0]
		return nil
	}
	return errInvalid("prompt", "prompt must be a string, a list of strings or a list of token ids")
}

// messages reads a chat request's messages.
func messages(in []chatMessage) ([]vkrun.Message, *apiError) {
	if len(in) == 0 {
		return nil, errInvalid("messages", "messages must be a non-empty list")
	}
	out := make([]vkrun.Message, len(in))
	for i, m := range in {
		role := m.Role
		if role == "developer" { // OpenAI's newer name for the system role
			role = vkrun.RoleSystem
		}
		text, err := content(m.Content)
		if err != nil {
			return nil, errInvalid(fmt.Sprintf("messages[%d].content", i), "messages[%d].content: %v", i, err)
		}
		out[i] = vkrun.Message{Role: role, Content: text}
	}
	return out, nil
}

// content is a message's text: a string, null, or text parts joined.
func content(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("want a string or a list of content parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("a %q part: vkrun takes text only", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// usage is OpenAI's token count of a response.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(r vkrun.Result) *usage {
	return &usage{PromptTokens: r.PromptTokens, CompletionTokens: r.Tokens, TotalTokens: r.PromptTokens + r.Tokens}
}

// completionChoice is a choice of /v1/completions, whole or streamed.
type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

// chatDelta is a streamed chat chunk's change to the message.
type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChoice struct {
	Index        int        `json:"index"`
	Message      *chatReply `json:"message,omitempty"`
	Delta        *chatDelta `json:"delta,omitempty"`
	Logprobs     any        `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chatReply struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
}

func newID(prefix string) string {
	return fmt.Sprintf("%s-%016x%08x", prefix, rand.Uint64(), rand.Uint32())
}
