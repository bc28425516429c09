package engine

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// tinyConfig is a two-layer model small enough to load in every test.
var tinyConfig = loader.Config{Arch: "llama", Dim: 64, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, FFNDim: 96,
	VocabSize: 64, Window: 16, RopeTheta: 10000, NormEps: 1e-5}

// openSynthetic writes a synthetic model of cfg with every matrix in dt and
// opens it; it is closed at cleanup.
func openSynthetic(t *testing.T, cfg loader.Config, dt loader.DType) *loader.Model {
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, loader.WriteSynthetic(path, cfg, dt, 5, nil))
	lm, err := loader.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { lm.Close() })
	return lm
}

// TestRecordingsAreBoundedAndReplaceable feeds prompts of many lengths into
// one session: it keeps at most maxRecordings step shapes, and evicting and
// re-recording them changes no result.
func TestRecordingsAreBoundedAndReplaceable(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	cfg := tinyConfig
	lm := openSynthetic(t, cfg, loader.F32)
	m, err := Load(d, lm, Options{})
	require.NoError(t, err)
	defer m.Close()

	var tokens []int
	for i := range 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 {
		tokens = append(tokens, 3+(i*7)%61)
	}
	ref, err := m.NewSession()
	require.NoError(t, err)
	defer ref.Close()
	want, err := ref.PrefillAll(context.Background(), tokens, 1)
	require.NoError(t, err)

	s, err := m.NewSession()
	require.NoError(t, err)
	defer s.Close()
	at := 0
	for n := 1; n <= 12; n++ {
		got, err := s.Prefill(context.Background(), tokens[at:at+n])
		require.NoError(t, err)
		at += n
		require.Equal(t, want[at-1], got, "after a %d-token prompt", n)
		assert.LessOrEqual(t, len(s.steps), maxRecordings)
	}
	// Shapes evicted earlier are recorded again when needed.
	got, err := s.Decode(context.Background(), 5)
	require.NoError(t, err)
	assert.Len(t, got, cfg.VocabSize)
}

// TestLoadRefusesUnusedTensors: a tensor that the forward pass would not
// read (an output bias, a checkpoint's Q bias) fails the load with its
// name, since ignoring it would change the tokens.
func TestLoadRefusesUnusedTensors(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	w, err := loader.SyntheticWriter(tinyConfig, loader.F32, 5, nil)
	require.NoError(t, err)
	require.NoError(t, w.AddTensor("blk.0.attn_output.bias", loader.F32, []uint64{uint64(tinyConfig.Dim)}, make([]float32, tinyConfig.Dim)))
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, w.WriteFile(path))
	lm, err := loader.Open(path)
	require.NoError(t, err)
	defer lm.Close()
	_, err = Load(d, lm, Options{})
	require.ErrorContains(t, err, "blk.0.attn_output.bias")

	lm.Tensors = slices.DeleteFunc(slices.Clone(lm.Tensors), func(t *loader.Tensor) bool { return t.Name == "blk.0.attn_output.bias" })
	lm.Unmapped = []string{"model.layers.0.self_attn.q_proj.bias"}
	_, err = Load(d, lm, Options{})
	require.ErrorContains(t, err, "model.layers.0.self_attn.q_proj.bias")

	lm.Unmapped = nil
	m, err := Load(d, lm, Options{})
	require.NoError(t, err)
	m.Close()
}

// TestDecodeStepIsDeviceResident records a decode step on a device that
// routes every transfer through staging (as where device-local memory is
// not host-visible) in both layouts: no kernel may bind a host-memory
// buffer, and only the step's values (pos0, one token id, one RoPE row)
// and the 4-byte greedy id cross the bus. The greedy ids must equal the
// argmax of the logits read back.
func TestDecodeStepIsDeviceResident(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{ForceStaging: true})
	cfg := tinyConfig
	lm := openSynthetic(t, cfg, loader.Q8_0)
	for _, layout := range []ops.LayoutChoice{ops.ForceGPU, ops.ForceCPU} {
		if layout == ops.ForceCPU && !d.Features.SubgroupArithmetic {
			continue
		}
		m, err := Load(d, lm, Options{Layout: layout})
		require.NoError(t, err)
		defer m.Close()
		t.Run(m.Library().Layout().String(), func(t *testing.T) {
			s, err := m.NewSession()
			require.NoError(t, err)
			defer s.Close()
			st, err := s.DecodeStats()
			require.NoError(t, err)
			assert.Empty(t, st.HostBound, "kernels of the decode step bind host memory")
			stepIn := uint64(4 * (1 + 1 + cfg.Dim/cfg.NumHeads)) // pos0, the token, cos and sin of head_dim/2 angles
			assert.Equal(t, stepIn+4, st.HostBytes, "host bytes of a decode step")
			assert.Positive(t, st.Dispatches)

			ref, err := m.NewSession()
			require.NoError(t, err)
			defer ref.Close()
			next := 3
			for range 20 { // past the window: the ring wraps
				logits, err := ref.Decode(context.Background(), next)
				require.NoError(t, err)
				want := argmax(logits)
				got, err := s.DecodeGreedy(context.Background(), next)
				require.NoError(t, err)
				require.Equal(t, want, got, "greedy id at position %d", s.Pos()-1)
				next = got
			}
		})
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
