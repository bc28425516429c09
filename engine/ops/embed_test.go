package ops_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// Embed copies dequantised rows, so it must match the CPU exactly.
const nmseEmbed = 0

func TestEmbed(t *testing.T) {
	shapes := map[int][][2]int{ // (vocab, cols)
		1:   {{1, 1}, {7, 33}, {33, 4097}},
		32:  {{1, 32}, {7, 96}, {33, 4128}},
		256: {{1, 256}, {7, 768}, {33, 4096}},
	}
	variants(t, func(t *testing.T, e *env) {
		for _, typ := range weightTypes {
			for i, s := range shapes[blockSize(typ)] {
				vocab, cols := s[0], s[1]
				w, deq := e.uploadRand(t, typ, vocab, cols, uint64(60+i))
				for _, ntok := range []int{1, 3, 17} {
					t.Run(fmt.Sprintf("%s/%dx%d/ntok=%d", typ, vocab, cols, ntok), func(t *testing.T) {
						r := rand.New(rand.NewPCG(uint64(ntok), 1))
						ids := make([]uint32, 5+ntok) // the tensor starts at element 5
						for k := range ids {
							ids[k] = uint32(r.IntN(vocab + 2)) // some out of range
						}
						ids[5+ntok-1] = math.MaxUint32
						tok := ops.F32(e.uploadU32(t, "tokens", ids)).Sub(5, uint64(ntok))
						xb := e.zeros(t, "x", 3+ntok*cols) // x starts at element 3
						e.run(t, func(p *ops.Plan) {
							p.Embed(w, tok, ops.F32(xb).Sub(3, uint64(ntok*cols)), ntok)
						})
						got := e.download(t, xb)
						check(t, "embed", got[3:], optest.Embed(deq, ids[5:], vocab, cols), nmseEmbed)
					})
				}
			}
		}
	})
}

// TestEmbedScaled: EmbedScaled with scale 1 equals Embed bit for bit, and
// with √cols equals each dequantised value times the scale in f32, exactly
// (one correctly rounded product), on odd row lengths of a plain, a legacy
// block and a K-quant type.
func TestEmbedScaled(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	for i, c := range []struct {
		typ         loader.DType
		vocab, cols int
	}{{loader.F32, 7, 37}, {loader.Q8_0, 5, 96}, {loader.Q4_K, 3, 768}} {
		t.Run(c.typ.String(), func(t *testing.T) {
			w, deq := e.uploadRand(t, c.typ, c.vocab, c.cols, uint64(160+i))
			ids := []uint32{2, 0, uint32(c.vocab) + 1, 1, 2}
			ntok := len(ids)
			tok := ops.F32(e.uploadU32(t, "tokens", ids))
			plain, one, scaled := e.zeros(t, "plain", ntok*c.cols), e.zeros(t, "one", ntok*c.cols), e.zeros(t, "scaled", ntok*c.cols)
			scale := float32(math.Sqrt(float64(c.cols)))
			e.run(t, func(p *ops.Plan) {
				p.Embed(w, tok, ops.F32(plain), ntok)
				p.EmbedScaled(w, tok, ops.F32(one), ntok, 1)
				p.EmbedScaled(w, tok, ops.F32(scaled), ntok, scale)
			})
			want := optest.Embed(deq, ids, c.vocab, c.cols)
			require.Equal(t, want, e.download(t, plain))
			require.Equal(t, want, e.download(t, one), "scale 1")
			for k := range want {
				want[k] *= scale
			}
			require.Equal(t, want, e.download(t, scaled), "scale √cols")
		})
	}
	tok := ops.F32(e.uploadU32(t, "tokens", []uint32{0}))
	w, _ := e.uploadRand(t, loader.F32, 2, 4, 1)
	x := ops.F32(e.zeros(t, "x", 4))
	require.ErrorContains(t, e.try(t, func(p *ops.Plan) { p.EmbedScaled(w, tok, x, 1, float32(math.Inf(-1))) }), "scale -Inf is not finite")
}
