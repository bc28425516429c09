package loader

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// ggufWithTokenizer writes a GGUF image holding only tokenizer metadata:
// a six-piece vocabulary, changed by edit (a nil value deletes the key).
func ggufWithTokenizer(t *testing.T, edit map[string]any) *GGUFFile {
	t.Helper()
	kv := map[string]any{
		"tokenizer.ggml.model":      "llama",
		"tokenizer.ggml.tokens":     []string{"<unk>", "<s>", "</s>", "▁", "a", "▁a"},
		"tokenizer.ggml.scores":     []float32{0, 0, 0, 0, 0, -1},
		"tokenizer.ggml.token_type": []int32{2, 3, 3, 1, 1, 1},
	}
	for k, v := range edit {
		if v == nil {
			delete(kv, k)
		} else {
			kv[k] = v
		}
	}
	w := NewGGUFWriter()
	for _, k := range []string{
		"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
		"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
		"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
	} {
		if v, ok := kv[k]; ok {
			require.NoError(t, w.SetValue(k, v))
		}
	}
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	f, err := ParseGGUF("tok.gguf", buf.Bytes())
	require.NoError(t, err)
	return f
}

func TestTokenizerFromGGUF(t *testing.T) {
	tests := []struct {
		name string
		edit map[string]any
		want []int // Encode("a a")
		bos  int
	}{
		{"llama.cpp defaults", nil, []int{1, 5, 5}, 1},
		{"model key absent means llama", map[string]any{"tokenizer.ggml.model": nil}, []int{1, 5, 5}, 1},
		{"add_bos_token false", map[string]any{"tokenizer.ggml.add_bos_token": false}, []int{5, 5}, 1},
		{"explicit ids", map[string]any{"tokenizer.ggml.bos_token_id": uint32(2), "tokenizer.ggml.eos_token_id": uint32(1)}, []int{2, 5, 5}, 2},
		{"no scores, no types", map[string]any{"tokenizer.ggml.scores": nil, "tokenizer.ggml.token_type": nil}, []int{1, 5, 5}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tokenizerFromGGUF(ggufWithTokenizer(t, tc.edit))
			require.NoError(t, err)
			require.Equal(t, ModelSentencePiece, tok.Model())
			require.Equal(t, tc.bos, tok.BOS())
			require.Equal(t, tc.want, tok.Encode("a a"))
			require.Equal(t, "a a", tok.Decode(append([]int{tok.BOS()}, 5, 5)))
		})
	}
}

func TestTokenizerFromGGUFErrors(t *testing.T) {
	tests := []struct {
		name string
		edit map[string]any
		want string
	}{
		{"other model", map[string]any{"tokenizer.ggml.model": "bert"}, `tokenizer.ggml.model "bert" is not supported (want "llama" or "gpt2")`},
		{"model not a string", map[string]any{"tokenizer.ggml.model": uint32(1)}, "tokenizer.ggml.model is not a string"},
		{"add_eos as int", map[string]any{"tokenizer.ggml.add_eos_token": uint8(1)}, "add_eos_token is not a bool"},
		{"no tokens", map[string]any{"tokenizer.ggml.tokens": nil}, "tokenizer.ggml.tokens is missing"},
		{"tokens of another type", map[string]any{"tokenizer.ggml.tokens": []int32{1, 2}}, "tokenizer.ggml.tokens is missing or not an array of strings"},
		{"scores as float64", map[string]any{"tokenizer.ggml.scores": []float64{0, 0, 0, 0, 0, 0}}, "scores is not an array of float32"},
		{"types as uint8", map[string]any{"tokenizer.ggml.token_type": []uint8{2, 3, 3, 1, 1, 1}}, "token_type is not an array of int32"},
		{"scores too short", map[string]any{"tokenizer.ggml.scores": []float32{0}}, "1 scores for 6 tokens"},
		{"bos id as text", map[string]any{"tokenizer.ggml.bos_token_id": "1"}, "bos_token_id is not a token id"},
		{"bos id outside", map[string]any{"tokenizer.ggml.bos_token_id": uint32(6)}, "BOS id 6"},
		{"add_bos as int", map[string]any{"tokenizer.ggml.add_bos_token": uint8(1)}, "add_bos_token is not a bool"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tokenizerFromGGUF(ggufWithTokenizer(t, tc.edit))
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, tok)
		})
	}
}
