package loader

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSafetensorsMatchesGGUF writes one random model twice: as a Hugging
// Face checkpoint (rotate-half Q and K rows), and as the GGUF file llama.cpp's
// converter would make of that checkpoint (Q and K rows permuted, norms in
// F32, dims innermost first). Opened with Open, both must give the same
// config and, tensor for tensor, the same type, shape and bytes.
func TestSafetensorsMatchesGGUF(t *testing.T) {
	for _, tc := range []struct {
		arch, dtype string
		window      int
		tied        bool
	}{
		{"mistral", "F32", 8, false},
		{"mistral", "BF16", 0, false},
		{"llama", "F16", 0, true},
	} {
		t.Run(fmt.Sprintf("%s_%s_tied=%v", tc.arch, tc.dtype, tc.tied), func(t *testing.T) {
			cfg := stTinyConfig(tc.arch)
			cfg.Window = tc.window
			// Wider heads than the tiny default, so the permutation has
			// several pairs per head to get wrong.
			cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.RopeDim = 2, 1, 8, 8
			hf := stRandomWeights(21, cfg, tc.dtype, tc.tied).hfTensors(cfg)

			dir := t.TempDir()
			stWriteFiles(t, dir, map[string][]byte{
				hfConfigFile: stHFConfigJSON(cfg, map[string]any{"tie_word_embeddings": tc.tied}),
				stSingleFile: stBytes(t, hf, nil),
			})
			ggufPath := filepath.Join(t.TempDir(), "model.gguf")
			require.NoError(t, stConvertToGGUF(cfg, hf).WriteFile(ggufPath))

			fromST, err := Open(dir)
			require.NoError(t, err)
			defer fromST.Close()
			fromGGUF, err := Open(ggufPath)
			require.NoError(t, err)
			defer fromGGUF.Close()

			require.Equal(t, fromGGUF.Config, fromST.Config)
			names := func(m *Model) []string {
				var out []string
				for _, tt := range m.Tensors {
					out = append(out, tt.Name)
				}
				sort.Strings(out)
				return out
			}
			require.Equal(t, names(fromGGUF), names(fromST))
			for _, g := range fromGGUF.Tensors {
				s := fromST.Tensor(g.Name)
				require.Equal(t, g.Type, s.Type, g.Name)
				require.Equal(t, g.Shape, s.Shape, g.Name)
				gb, err := g.Bytes()
				require.NoError(t, err)
				sb, err := s.Bytes()
				require.NoError(t, err)
				require.True(t, bytes.Equal(gb, sb), "%s: bytes differ between GGUF and safetensors", g.Name)
			}
		})
	}
}

// stConvertToGGUF does what llama.cpp's converter does to a Hugging Face
// llama/mistral checkpoint, written from its description: rename tensors,
// reverse dims, store 1-D tensors as F32, and permute Q and K rows with
// reshape(heads, 2, hd/2, in).swapaxes(1, 2), which is
// new[h][i][j] = old[h][j][i] for i < hd/2, j < 2.
func stConvertToGGUF(cfg Config, hf []SafetensorsTensor) *GGUFWriter {
	w := NewGGUFWriter()
	a := cfg.Arch + "."
	for _, kv := range []struct {
		k string
		v any
	}{
		{"general.architecture", cfg.Arch},
		{a + "context_length", uint32(cfg.ContextLength)},
		{a + "embedding_length", uint32(cfg.Dim)},
		{a + "block_count", uint32(cfg.NumLayers)},
		{a + "feed_forward_length", uint32(cfg.FFNDim)},
		{a + "attention.head_count", uint32(cfg.NumHeads)},
		{a + "attention.head_count_kv", uint32(cfg.NumKVHeads)},
		{a + "rope.dimension_count", uint32(cfg.HeadDim)},
		{a + "rope.freq_base", float32(cfg.RopeTheta)},
		{a + "attention.layer_norm_rms_epsilon", float32(cfg.NormEps)},
	} {
		if err := w.SetValue(kv.k, kv.v); err != nil {
			panic(err)
		}
	}
	if cfg.Window > 0 {
		if err := w.SetValue(a+"attention.sliding_window", uint32(cfg.Window)); err != nil {
			panic(err)
		}
	}
	toGGUF := map[string]string{}
	for _, e := range stRandomWeights(0, cfg, "F32", false).names {
		toGGUF[stHFName(e)] = e
	}
	for _, tt := range hf {
		name, ok := toGGUF[tt.Name]
		if !ok {
			continue
		}
		data, dtype := tt.Data, tt.DType
		size := int(safetensorsDTypes[dtype].size)
		switch {
		case strings.HasSuffix(name, ".attn_q.weight"):
			data = stConverterPermute(data, cfg.NumHeads, cfg.HeadDim, cfg.Dim*size)
		case strings.HasSuffix(name, ".attn_k.weight"):
			data = stConverterPermute(data, cfg.NumKVHeads, cfg.HeadDim, cfg.Dim*size)
		case len(tt.Shape) == 1 && dtype != "F32":
			data, dtype = stWidenToF32(dtype, data), "F32"
		}
		shape := make([]uint64, len(tt.Shape))
		for i, d := range tt.Shape {
			shape[len(shape)-1-i] = d
		}
		dt := map[string]DType{"F32": F32, "F16": F16, "BF16": BF16}[dtype]
		if err := w.AddTensorBytes(name, dt, shape, data); err != nil {
			panic(err)
		}
	}
	return w
}

// stConverterPermute is the converter's Q/K permutation on whole rows of
// rowBytes bytes.
func stConverterPermute(old []byte, heads, hd, rowBytes int) []byte {
	out := make([]byte, len(old))
	for h := 0; h < heads; h++ {
		for i := 0; i < hd/2; i++ {
			for j := 0; j < 2; j++ {
				src := h*hd + j*(hd/2) + i
				dst := h*hd + i*2 + j
				copy(out[dst*rowBytes:(dst+1)*rowBytes], old[src*rowBytes:(src+1)*rowBytes])
			}
		}
	}
	return out
}
