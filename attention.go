package vkrun

import (
	"context"

	"github.com/vkrun/vkrun/engine"
)

// AttentionMap is one layer's attention probabilities over a prompt, as
// its kernel computed them (see Session.ProbeAttention).
type AttentionMap = engine.AttentionMap

// ProbeAttention starts a new conversation, prefills ids (no BOS is added)
// and returns the softmax probabilities that layer's attention kernel used
// for every head and query, by absolute key position: the debug path of
// `vkrun attention`. The model must run the CPU kernel layout
// (WithLayout("cpu")), whose kernel alone records them. The session is left
// after the prompt. It fails with ErrBusy inside a Generate range loop and
// ErrSessionClosed after Close.
func (s *Session) ProbeAttention(ctx context.Context, ids []int, layer int) (*AttentionMap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrSessionClosed
	case s.busy:
		return nil, ErrBusy
	}
	s.pending, s.ready = -1, nil
	return s.es.ProbeAttention(ctx, ids, layer)
}
