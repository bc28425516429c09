// Package serve is vkrun's OpenAI-compatible HTTP API, an http.Handler over
// a vkrun.Batch (the scheduler: the HTTP layer knows nothing of slots or
// sessions). It uses net/http only.
//
// Endpoints:
//
//	GET  /v1/models            the one model, as OpenAI lists models (and /v1/models/{id})
//	POST /v1/completions       text completion; "stream": true sends Server-Sent Events
//	POST /v1/chat/completions  chat, rendered with the batch's chat template
//	GET  /health               200 when ready; 503 while loading, after device loss, while shutting down
//	GET  /metrics              Prometheus text: requests, tokens, sequences, latencies, device memory
//
// Request fields: max_tokens (max_completion_tokens for chat), temperature,
// top_p, top_k, min_p, seed, stop (a string or a list), n (1 only), stream
// and stream_options.include_usage. Other fields (model, user, penalties,
// logit_bias, …) are accepted and ignored. A completion's prompt is a
// string, a list of one string, or token ids; an absent prompt starts from
// BOS. A field of the wrong type is a 400.
//
// Streaming sends `data: {json}` events in OpenAI's chunk shapes (chat:
// a first delta with the role, then content deltas, then an empty delta
// with finish_reason) and ends with `data: [DONE]`. The last chunk carries
// usage; with stream_options.include_usage a chunk with no choices and the
// usage follows, as OpenAI sends it. An error after the stream has begun
// is sent as a `data: {"error": …}` event, and the stream ends there.
//
// Errors carry OpenAI's body, {"error": {"message", "type", "param",
// "code"}}: 400 for malformed JSON, wrong field types, max_tokens < 0,
// n ≠ 1 and prompts longer than the context of a model with global layers;
// 401 for a missing or wrong key when Options.APIKey is set (Bearer; /health
// needs none); 404 and 405 for unknown paths and methods; 413 for a body
// over Options.MaxBodyBytes; 429 with Retry-After when the queue is full;
// 503 while loading, after the device was lost and after the batch closed.
//
// A client that disconnects cancels its sequence: the request's context is
// the sequence's, and the batch frees the slot within one step.
package serve
