package ops_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/vk"
)

// nmseAttnCoopMat bounds the cooperative-matrix prefill attention against
// the float64 reference with the keys and values rounded as the ring
// stores them: q and P are rounded to f16 too (measured on lavapipe,
// emulated: at most 9.6e-7).
const nmseAttnCoopMat = 1e-5

// TestAttentionCoopMat: prefill attention in tiles of 32 query rows on
// cooperative matrices (shaders.AttentionCoopMat), emulated (lavapipe) and
// on each cooperative-matrix extension the device offers, against the
// float64 reference over whole sequences: a local ring whose later chunks
// read it and their own keys, past several query blocks and key tiles; a
// global ring; a soft cap and a scale; head dims 32, 64, 128 (Mistral's)
// and 256 (Gemma's);
// both ring types. A
// chunking's short chunks and decode take the exact kernel, so a sequence
// mixes the two. Every chunk of 16 or more queries must have run the
// cooperative-matrix kernel.
func TestAttentionCoopMat(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	cases := []struct {
		name  string
		s     optest.AttnShape
		slots int
		opts  ops.AttentionOpts
		npos  int
		sizes []int
	}{
		{"W=40", optest.AttnShape{Heads: 4, KVHeads: 2, HeadDim: 64, Window: 40}, 40, ops.AttentionOpts{}, 150, []int{40, 3, 1, 36, 40, 30}},
		{"global", optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 32, Window: 0}, 130, ops.AttentionOpts{}, 120, []int{20, 100}},
		{"W=24/softcap=30/scale=0.1", optest.AttnShape{Heads: 2, KVHeads: 2, HeadDim: 64, Window: 24}, 24, ops.AttentionOpts{Softcap: 30, Scale: 0.1}, 90, []int{17, 24, 24, 24, 1}},
		{"hd128/W=48", optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 128, Window: 48}, 48, ops.AttentionOpts{}, 70, []int{16, 40, 14}},
		// Gemma's head dim, soft cap and query scale: the values take the
		// keys' staging once S is computed.
		{"hd256/W=40/softcap=50", optest.AttnShape{Heads: 2, KVHeads: 1, HeadDim: 256, Window: 40}, 40, ops.AttentionOpts{Softcap: 50, Scale: 0.0625}, 60, []int{20, 40}},
	}
	for _, v := range coopmatVariants {
		t.Run(v.name, func(t *testing.T) {
			lib := coopmatLibrary(t, d, v.choice)
			e := &env{d: d, lib: lib, wg: lib.WG}
			round := f16Rounding(t, e)
			for _, kv := range kvTypes {
				for i, c := range cases {
					t.Run(fmt.Sprintf("%v/%s", kv, c.name), func(t *testing.T) {
						a := newAttnSeq(t, e, c.s, c.npos, uint64(700+i))
						a.slots, a.opts = c.slots, c.opts
						want := reference(a, nil, 0)
						if kv == ops.KVF16 {
							want = reference(a, round, 0)
						}
						got := a.run(t, e, kv, c.sizes, 0)
						check(t, fmt.Sprintf("chunks %v", c.sizes), got, want, nmseAttnCoopMat)
					})
				}
			}
			ran := 0
			for _, p := range lib.Picks() {
				if p.Op == "attention" && strings.HasPrefix(p.Kernel, "swa_coopmat") && strings.Contains(p.Kernel, v.kernel) {
					ran++
				}
			}
			require.Equal(t, 4*len(kvTypes), ran, "cooperative-matrix attention kernels that ran: one a ring type and head dim (64, 32, 128 and 256)")
		})
	}
}
