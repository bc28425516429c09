package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/loader"
)

// llama3Config is the smallest llama that carries Llama 3's 128256-token
// vocabulary: the embedding rows dominate the file, so the width is small.
var llama3Config = loader.Config{Arch: "llama", Dim: 32, NumLayers: 2, NumHeads: 2, NumKVHeads: 1, HeadDim: 16,
	FFNDim: 64, ContextLength: 512}

// writeLlama3Model writes a synthetic llama with random Q8_0 weights (rows
// of 32, the smallest Q8_0 has) and the tokenizer of a Llama 3 GGUF in
// place of the synthetic one: model gpt2, pre llama-bpe, the real tokens,
// token types and merges, BOS 128000 and EOS 128001 (a base model's; the
// instruct files say 128009), add_bos_token. Its token_embd doubles as the
// output matrix, as in Llama 3.2 1B and 3B, which halves the file (4.4 MB
// of embedding).
func writeLlama3Model(t *testing.T, v *testmodel.BPEVocab) string {
	t.Helper()
	w, err := loader.SyntheticWriter(llama3Config, loader.Q8_0, 1, v.Tokens)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = w.WriteTo(&buf)
	require.NoError(t, err)
	f, err := loader.ParseGGUF("synthetic.gguf", buf.Bytes())
	require.NoError(t, err)

	out := loader.NewGGUFWriter()
	for _, kv := range f.Metadata {
		if !strings.HasPrefix(kv.Key, "tokenizer.") { // the SentencePiece stand-in
			require.NoError(t, out.Set(kv.Key, kv.Value))
		}
	}
	for k, x := range map[string]any{
		"tokenizer.ggml.model":         "gpt2",
		"tokenizer.ggml.pre":           "llama-bpe",
		"tokenizer.ggml.tokens":        v.Tokens,
		"tokenizer.ggml.token_type":    v.Types,
		"tokenizer.ggml.merges":        v.Merges,
		"tokenizer.ggml.bos_token_id":  uint32(v.Header.BOS),
		"tokenizer.ggml.eos_token_id":  uint32(v.Header.EOS),
		"tokenizer.ggml.add_bos_token": true,
	} {
		require.NoError(t, out.SetValue(k, x))
	}
	for _, ts := range f.Tensors {
		if ts.Name == "output.weight" {
			continue
		}
		raw, err := ts.Bytes()
		require.NoError(t, err)
		require.NoError(t, out.AddTensorBytes(ts.Name, ts.Type, ts.Shape, raw))
	}
	path := filepath.Join(t.TempDir(), "llama3-synthetic-q8_0.gguf")
	require.NoError(t, out.WriteFile(path))
	return path
}

// llama3PromptHas is what the prompt must hold: each kind of text the
// llama-bpe pre-tokenizer splits in its own way.
var llama3PromptHas = []struct {
	what  string
	match func(string) bool
}{
	{"prose", regexp.MustCompile(`[A-Za-z]+ [a-z]+ [a-z]+`).MatchString},
	{"digits", func(s string) bool { return strings.ContainsAny(s, "0123456789") }},
	{"punctuation", func(s string) bool { return strings.ContainsAny(s, ".,!?;:") }},
	{"a contraction", regexp.MustCompile(`[A-Za-z]'(?i:s|t|re|ve|m|ll|d)\b`).MatchString},
	{"non-ASCII letters", func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII && unicode.IsLetter(r) && !unicode.Is(unicode.Han, r) })
	}},
	{"CJK", func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
	}},
	{"an emoji", func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return r >= 0x1F300 && r <= 0x1FAFF })
	}},
}

// llama3Case is the first case of bpe-cases.json.gz's llama3 set that holds
// everything llama3PromptHas asks for, with the ids (no BOS) that the
// implementations it names, none of them ours, agree on.
func llama3Case(t *testing.T) (text string, ids []int) {
	t.Helper()
	raw, err := os.ReadFile("../../loader/testdata/tokenizer/bpe-cases.json.gz")
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	data, err := io.ReadAll(zr)
	require.NoError(t, err)
	var sets map[string]struct {
		Pre   string `json:"pre"`
		Cases []struct {
			Text       string           `json:"text"`
			Special    bool             `json:"special"`
			AddSpecial bool             `json:"add_special"`
			IDs        []int            `json:"ids"`
			Refs       []string         `json:"refs"`
			Disagree   map[string][]int `json:"disagree"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &sets))
	set := sets["llama3"]
	require.Equal(t, "llama-bpe", set.Pre)
next:
	for _, c := range set.Cases {
		if c.Special || c.AddSpecial || len(c.Disagree) > 0 || len(c.Refs) == 0 {
			continue
		}
		for _, h := range llama3PromptHas {
			if !h.match(c.Text) {
				continue next
			}
		}
		t.Logf("prompt: %d bytes, %d ids from %s", len(c.Text), len(c.IDs), strings.Join(c.Refs, ", "))
		return c.Text, c.IDs
	}
	var kinds []string
	for _, h := range llama3PromptHas {
		kinds = append(kinds, h.what)
	}
	t.Fatalf("no llama3 case in bpe-cases.json.gz holds all of: %s", strings.Join(kinds, ", "))
	return "", nil
}

// A synthetic model with the real Llama 3 vocabulary, through `vkrun run
// -p`: the prompt becomes the ids other implementations give for it (after
// BOS), those ids decode to the prompt byte for byte, and the generated
// text is the decoding of the generated ids.
func TestLlama3RunRoundTrip(t *testing.T) {
	needVulkan(t)
	v, err := testmodel.LoadBPEVocab("llama3")
	require.NoError(t, err)
	require.Equal(t, 128256, len(v.Tokens))
	require.Equal(t, [2]int{128000, 128001}, [2]int{v.Header.BOS, v.Header.EOS}, "<|begin_of_text|>, <|end_of_text|>")
	prompt, caseIDs := llama3Case(t)
	path := writeLlama3Model(t, v)
	tok, err := loader.LoadTokenizer(path)
	require.NoError(t, err)
	wantIDs := append([]int{v.Header.BOS}, caseIDs...)

	out, errOut, code := runCLI("run", "-m", path, "-p", prompt, "-n", "8", "--temp", "0", "--json")
	require.Equal(t, 0, code, errOut)
	var r struct {
		Prompt    string `json:"prompt"`
		PromptIDs []int  `json:"prompt_ids"`
		IDs       []int  `json:"ids"`
		Text      string `json:"text"`
		Timings   struct {
			PromptTokens int `json:"prompt_tokens"`
			Generated    int `json:"generated_tokens"`
		} `json:"timings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)

	// The prompt: BOS, then the reference ids; the session fed them all.
	assert.Equal(t, prompt, r.Prompt)
	require.Equal(t, wantIDs, r.PromptIDs)
	assert.Equal(t, len(wantIDs), r.Timings.PromptTokens)
	assert.Equal(t, prompt, tok.Decode(r.PromptIDs), "the tokenizer's decoding")
	spelled, err := v.Decode(r.PromptIDs)
	require.NoError(t, err)
	assert.Equal(t, []byte(prompt), spelled, "the vocabulary's byte spelling")

	// The generation: at most -n ids of the vocabulary, and their text.
	assert.LessOrEqual(t, len(r.IDs), 8)
	assert.Equal(t, len(r.IDs), r.Timings.Generated)
	for _, id := range r.IDs {
		assert.True(t, id >= 0 && id < len(v.Tokens), "generated id %d", id)
	}
	assert.True(t, utf8.ValidString(r.Text), "text %q", r.Text)
	assert.Equal(t, tok.Decode(r.IDs), r.Text)
	if raw, err := v.Decode(r.IDs); assert.NoError(t, err) && utf8.Valid(raw) {
		assert.Equal(t, string(raw), r.Text, "the vocabulary's byte spelling")
	}
	t.Logf("generated %v = %q", r.IDs, r.Text)

	// Without --json: the prompt, then the same greedy text, on stdout.
	out, errOut, code = runCLI("run", "-m", path, "-p", prompt, "-n", "8", "--temp", "0")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, prompt+r.Text+"\n", out)
}
