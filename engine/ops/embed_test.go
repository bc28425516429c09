package ops_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
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
