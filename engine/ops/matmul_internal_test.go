package ops

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vkrun/vkrun/shaders"
)

func TestTokenStep(t *testing.T) {
	const budget = 1 << 25 // 128 MiB of f32
	for _, c := range []struct{ rows, cols, n uint64 }{
		{4096, 4096, 4096}, {32000, 4096, 32000}, {1 << 20, 32, 1 << 20}, {4096, 1, 4096},
		{3, 4096, 3}, {budget, 1, budget}, {7, 1 << 24, 7},
	} {
		t.Run(fmt.Sprintf("%dx%d/%d", c.rows, c.cols, c.n), func(t *testing.T) {
			m := tokenStep(budget, c.rows, c.cols, c.n)
			require.GreaterOrEqual(t, m, uint64(1))
			if m > 1 {
				require.LessOrEqual(t, m*c.cols, uint64(budget), "x block")
				require.LessOrEqual(t, (m-1)*c.rows+c.n, uint64(budget), "y span")
			}
			if m >= shaders.MatMulTokens {
				require.Zero(t, m%shaders.MatMulTokens)
				// Maximal: one more group of tokens would not fit.
				more := m + shaders.MatMulTokens
				require.True(t, more*c.cols > budget || (more-1)*c.rows+c.n > budget)
			}
		})
	}
	require.EqualValues(t, 8192, tokenStep(budget, 3, 4096, 3))
	require.EqualValues(t, 8184, tokenStep(budget-4, 3, 4096, 3))
	require.EqualValues(t, 8192, tokenStep(budget, 4096, 1, 4096))
	require.EqualValues(t, 8184, tokenStep(budget, 4096, 1, 4097))
	require.EqualValues(t, 1, tokenStep(budget, 1, budget, 1))
}
