package vkrun

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStopperHoldsBackPrefixes(t *testing.T) {
	tests := []struct {
		name   string
		stops  []string
		pieces []string
		want   []string // released per piece
		stopAt int      // index of the piece that completes a stop, or -1
		rest   string
	}{
		{"no stops", nil, []string{"a", "b"}, []string{"a", "b"}, -1, ""},
		{"stop inside a piece", []string{"."}, []string{"Lily", ". She"}, []string{"Lily", ""}, 1, ""},
		{"held across pieces", []string{"END"}, []string{"the E", "N", "D!"}, []string{"the ", "", ""}, 2, ""},
		{"false start released", []string{"END"}, []string{"the E", "NO"}, []string{"the ", "ENO"}, -1, ""},
		{"tail kept at the end", []string{"</s>"}, []string{"hi <", "/"}, []string{"hi ", ""}, -1, "</"},
		{"earliest stop wins", []string{"b", "a"}, []string{"xab"}, []string{"x"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStopper(tt.stops)
			stopped := -1
			for i, p := range tt.pieces {
				out, done := s.push(p)
				assert.Equal(t, tt.want[i], out, "piece %d", i)
				if done {
					stopped = i
					break
				}
			}
			assert.Equal(t, tt.stopAt, stopped)
			assert.Equal(t, tt.rest, s.flush())
		})
	}
}

// TestBatchWaitOrder: the queue is in Submit order whatever order the
// consumers begin their Tokens loops in.
func TestBatchWaitOrder(t *testing.T) {
	b := &Batch{}
	for _, o := range []uint64{3, 1, 4, 0, 2} {
		b.wait(&Sequence{order: o})
	}
	var got []uint64
	for _, q := range b.waiting {
		got = append(got, q.order)
	}
	if !slices.Equal(got, []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("waiting in order %v, want Submit order", got)
	}
}
