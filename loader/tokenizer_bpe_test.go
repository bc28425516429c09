package loader

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// tinyBPE builds a byte-level tokenizer from the 256 byte tokens (ids 0-255,
// in byte order), then extra tokens (normal unless types says otherwise),
// and merges in rank order.
func tinyBPE(t testing.TB, v BPEVocab, extra []string, types map[string]TokenType) *Tokenizer {
	t.Helper()
	v.Tokens = append([]string{}, byteSpelling[:]...)
	v.Tokens = append(v.Tokens, extra...)
	v.Types = make([]int32, len(v.Tokens))
	for i, s := range v.Tokens {
		v.Types[i] = int32(TokenNormal)
		if ty, ok := types[s]; ok {
			v.Types[i] = int32(ty)
		}
	}
	tok, err := NewByteLevelBPE(v)
	require.NoError(t, err)
	return tok
}

// texts spells ids as the text each stands for, for readable failures.
func texts(tok *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.TokenText(id)
	}
	return out
}

func TestBPEByteToUnicode(t *testing.T) {
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := byteRune[b]
		require.False(t, seen[r], "byte %#x maps to %U twice", b, r)
		seen[r] = true
		require.Equal(t, b, int(runeByte[r]))
		if '!' <= b && b <= '~' || 0xA1 <= b && b <= 0xFF && b != 0xAD {
			require.Equal(t, rune(b), r, "printable byte %#x stands for itself", b)
		} else {
			require.GreaterOrEqual(t, r, rune(0x100), "byte %#x", b)
		}
	}
	// The spellings Llama 3 and GPT-2 files show: Ġ for a space, Ċ for a newline.
	require.Equal(t, "Ġ", byteSpelling[' '])
	require.Equal(t, "Ċ", byteSpelling['\n'])
	require.Equal(t, "ĉ", byteSpelling['\t'])
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	require.Equal(t, string(all), decodeByteLevel(unicodeBytes(all)))
	require.Equal(t, "x\u4e00", decodeByteLevel("x\u4e00"), "a character outside the map leaves the text as it is")

	// GPT-2's own vocabulary starts with the 256 byte tokens.
	tokens, _ := gpt2GGUF(t).Strings("tokenizer.ggml.tokens")
	first := map[string]bool{}
	for _, s := range tokens[:256] {
		first[s] = true
	}
	for b := 0; b < 256; b++ {
		require.True(t, first[byteSpelling[b]], "byte %#x (%q) is not among GPT-2's first 256 tokens", b, byteSpelling[b])
	}
}

func TestBPEMergesByRank(t *testing.T) {
	extra := []string{"ab", "bc", "abc", "aa", "Ġa", "ĠĠ"}
	tests := []struct {
		name   string
		merges []string
		text   string
		want   []string
	}{
		{"lower rank first", []string{"a b", "b c", "ab c"}, "abc", []string{"abc"}},
		{"rank beats position", []string{"b c", "a b", "ab c"}, "abc", []string{"a", "bc"}},
		{"a merge result merges again", []string{"a b", "ab c"}, "abcabc", []string{"abc", "abc"}},
		{"ties go leftmost", []string{"a a"}, "aaa", []string{"aa", "a"}},
		{"ties go leftmost, twice", []string{"a a"}, "aaaa", []string{"aa", "aa"}},
		{"no merge leaves bytes", nil, "abc", []string{"a", "b", "c"}},
		{"spaces are bytes too", []string{"Ġ a", "Ġ Ġ"}, " a  a", []string{" a", " ", " a"}},
		{"non-ASCII is its bytes", nil, "é", []string{"\xc3", "\xa9"}},
		{"invalid UTF-8 is its bytes", nil, "a\xff", []string{"a", "\xff"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tinyBPE(t, BPEVocab{Merges: tc.merges, Pre: "gpt-2", BOS: -1, EOS: -1}, extra, nil)
			ids := tok.Encode(tc.text)
			require.Equal(t, tc.want, texts(tok, ids))
			require.Equal(t, sanitizeUTF8([]byte(tc.text)), tok.Decode(ids))
		})
	}
	// A duplicate merge line keeps its first rank.
	tok := tinyBPE(t, BPEVocab{Merges: []string{"b c", "a b", "b c"}, Pre: "gpt-2", BOS: -1, EOS: -1}, extra, nil)
	require.Equal(t, []string{"a", "bc"}, texts(tok, tok.Encode("abc")))
}

// TestBPEIgnoreMerges: llama-bpe and tekken take a word that is itself a
// token as that token, even when the merges would not make it.
func TestBPEIgnoreMerges(t *testing.T) {
	extra := []string{"ab", "abc"}
	merges := []string{"a b"} // nothing makes "abc"
	for pre, want := range map[string][]string{
		"llama-bpe": {"abc"},
		"tekken":    {"abc"},
		"qwen2":     {"ab", "c"},
		"gpt-2":     {"ab", "c"},
	} {
		tok := tinyBPE(t, BPEVocab{Merges: merges, Pre: pre, BOS: -1, EOS: -1}, extra, nil)
		require.Equal(t, want, texts(tok, tok.Encode("abc")), pre)
	}

	// In Llama 3, 588 tokens cannot be reached by its merges; " việc" is one.
	tok := goldenTokenizer(t, "llama3/gguf")
	id, ok := tok.Lookup(unicodeBytes([]byte(" việc")))
	require.True(t, ok)
	require.Equal(t, []int{id}, tok.Encode(" việc", WithBOS(false)))
	var sc bpeScratch
	saved := tok.ignoreMerges
	tok.ignoreMerges = false
	merged := tok.bpeBytes(" việc", &sc, nil)
	tok.ignoreMerges = saved
	require.NotEqual(t, []int32{int32(id)}, merged)
}

func TestBPESpecialTokens(t *testing.T) {
	extra := []string{"<|eot|>", "<think>", "[PAD]", "th", "in", "ink"}
	types := map[string]TokenType{"<|eot|>": TokenControl, "<think>": TokenUserDefined, "[PAD]": TokenUnused}
	tok := tinyBPE(t, BPEVocab{Merges: []string{"t h", "i n", "in k"}, Pre: "llama-bpe", BOS: -1, EOS: -1}, extra, types)
	eot, _ := tok.Lookup("<|eot|>")
	think, _ := tok.Lookup("<think>")
	pad, _ := tok.Lookup("[PAD]")

	// Control tokens are text unless asked for; user-defined ones always match.
	plain := tok.Encode("a<|eot|>b")
	require.NotContains(t, plain, eot)
	require.Equal(t, "a<|eot|>b", tok.Decode(plain))
	special := tok.Encode("a<|eot|>b", ParseSpecial(true))
	require.Equal(t, []string{"a", "<|eot|>", "b"}, texts(tok, special))
	require.Equal(t, "ab", tok.Decode(special), "control tokens decode to nothing")
	for _, parse := range []bool{false, true} {
		ids := tok.Encode("x<think>think", ParseSpecial(parse))
		require.Equal(t, []string{"x", "<think>", "th", "ink"}, texts(tok, ids), "special=%v", parse)
		require.Equal(t, "x<think>think", tok.Decode(ids))
	}
	// Types as the file says; an unused token is never produced and decodes to nothing.
	require.Equal(t, TokenControl, tok.Type(eot))
	require.Equal(t, TokenUserDefined, tok.Type(think))
	require.Equal(t, TokenUnused, tok.Type(pad))
	require.NotContains(t, tok.Encode("[PAD]", ParseSpecial(true)), pad)
	require.Equal(t, "", tok.Decode([]int{pad}))
	require.Equal(t, "<|eot|>", tok.TokenText(eot))
	require.Equal(t, "[PAD]", tok.TokenText(pad))

	// The same on Qwen3's vocabulary: <think> is user-defined, <|im_start|> control.
	q := goldenTokenizer(t, "qwen3/gguf")
	imStart, _ := q.Lookup("<|im_start|>")
	qThink, _ := q.Lookup("<think>")
	require.Equal(t, TokenControl, q.Type(imStart))
	require.Equal(t, TokenUserDefined, q.Type(qThink))
	require.Contains(t, q.Encode("<think>hi"), qThink)
	require.NotContains(t, q.Encode("<|im_start|>user"), imStart)
	require.Equal(t, imStart, q.Encode("<|im_start|>user", ParseSpecial(true))[0])
	require.Equal(t, TokenUnused, q.Type(151935), "GGUF pads Qwen's vocabulary with [PAD] tokens")
}

func TestBPEBOSEOS(t *testing.T) {
	yes, no := true, false
	extra := []string{"<s>", "</s>"}
	types := map[string]TokenType{"<s>": TokenControl, "</s>": TokenControl}
	bos, eos := 256, 257
	tests := []struct {
		name   string
		v      BPEVocab
		opts   []EncodeOption
		want   []int // Encode("a")
		addBOS bool
	}{
		{"llama-bpe adds BOS", BPEVocab{Pre: "llama-bpe", BOS: bos, EOS: eos}, nil, []int{bos, 'a'}, true},
		{"tekken adds BOS", BPEVocab{Pre: "tekken", BOS: bos, EOS: eos}, nil, []int{bos, 'a'}, true},
		{"qwen2 adds nothing", BPEVocab{Pre: "qwen2", BOS: bos, EOS: eos}, nil, []int{'a'}, false},
		{"missing pre is default, adds nothing", BPEVocab{BOS: bos, EOS: eos}, nil, []int{'a'}, false},
		{"add_bos_token false overrides", BPEVocab{Pre: "llama-bpe", BOS: bos, EOS: eos, AddBOS: &no}, nil, []int{'a'}, false},
		{"add_bos_token true overrides", BPEVocab{Pre: "qwen2", BOS: bos, EOS: eos, AddBOS: &yes}, nil, []int{bos, 'a'}, true},
		{"add_eos_token", BPEVocab{Pre: "qwen2", BOS: bos, EOS: eos, AddEOS: &yes}, nil, []int{'a', eos}, false},
		{"no BOS id, nothing to add", BPEVocab{Pre: "llama-bpe", BOS: -1, EOS: eos}, nil, []int{'a'}, false},
		{"WithBOS(false)", BPEVocab{Pre: "llama-bpe", BOS: bos, EOS: eos}, []EncodeOption{WithBOS(false)}, []int{'a'}, true},
		{"WithBOS(true), WithEOS(true)", BPEVocab{Pre: "qwen2", BOS: bos, EOS: eos}, []EncodeOption{WithBOS(true), WithEOS(true)}, []int{bos, 'a', eos}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tinyBPE(t, tc.v, extra, types)
			require.Equal(t, tc.want, tok.Encode("a", tc.opts...))
			require.Equal(t, tc.addBOS, tok.AddBOS())
			require.Equal(t, "a", tok.Decode(tc.want), "BOS and EOS decode to nothing, and nothing is stripped")
		})
	}
	// Decode keeps the leading space after BOS (SentencePiece strips it).
	tok := tinyBPE(t, BPEVocab{Pre: "llama-bpe", BOS: bos, EOS: eos}, extra, types)
	require.Equal(t, " a", tok.Decode(tok.Encode(" a")))
}

// TestBPEFromGGUF reads byte-level metadata the way converters write it.
func TestBPEFromGGUF(t *testing.T) {
	base := func(edit map[string]any) []byte {
		tokens := append([]string{}, byteSpelling[:]...)
		tokens = append(tokens, "ab", "<|begin|>", "<|end|>")
		types := make([]int32, len(tokens))
		for i := range types {
			types[i] = int32(TokenNormal)
		}
		types[257], types[258] = int32(TokenControl), int32(TokenControl)
		kv := map[string]any{
			"tokenizer.ggml.model":        "gpt2",
			"tokenizer.ggml.pre":          "llama-bpe",
			"tokenizer.ggml.tokens":       tokens,
			"tokenizer.ggml.token_type":   types,
			"tokenizer.ggml.merges":       []string{"a b"},
			"tokenizer.ggml.bos_token_id": uint32(257),
			"tokenizer.ggml.eos_token_id": uint32(258),
		}
		for k, v := range edit {
			if v == nil {
				delete(kv, k)
			} else {
				kv[k] = v
			}
		}
		return vocabGGUF(t, kv)
	}
	tok := bpeFromGGUFBytes(t, base(nil))
	require.Equal(t, ModelByteLevel, tok.Model())
	require.Equal(t, "llama-bpe", tok.PreTokenizer())
	require.Equal(t, []int{257, 256, 'c'}, tok.Encode("abc"))
	tok = bpeFromGGUFBytes(t, base(map[string]any{"tokenizer.ggml.pre": nil, "tokenizer.ggml.add_eos_token": true}))
	require.Equal(t, "default", tok.PreTokenizer())
	require.Equal(t, []int{256, 'c', 258}, tok.Encode("abc"))

	tests := []struct {
		name string
		edit map[string]any
		want string
	}{
		{"unknown pre", map[string]any{"tokenizer.ggml.pre": "frobnicate"}, `pre-tokenizer "frobnicate" is not supported (known: `},
		{"pre not a string", map[string]any{"tokenizer.ggml.pre": uint32(3)}, "tokenizer.ggml.pre is not a string"},
		{"no merges", map[string]any{"tokenizer.ggml.merges": nil}, "tokenizer.ggml.merges is missing"},
		{"merges not strings", map[string]any{"tokenizer.ggml.merges": []int32{1}}, "tokenizer.ggml.merges is missing or not an array of strings"},
		{"merge without a space", map[string]any{"tokenizer.ggml.merges": []string{"ab"}}, `merge 0 ("ab") is not two tokens`},
		{"merge of an unknown token", map[string]any{"tokenizer.ggml.merges": []string{"a b", "ab c"}}, `merge 1 ("ab" "c") uses or makes a token outside`},
		{"no byte token", map[string]any{"tokenizer.ggml.tokens": []string{"a", "b", "ab"}, "tokenizer.ggml.token_type": nil,
			"tokenizer.ggml.bos_token_id": nil, "tokenizer.ggml.eos_token_id": nil}, `no token for byte 0x00 ("Ā")`},
		{"bad type", map[string]any{"tokenizer.ggml.token_type": make([]int32, 259)}, ""},
		{"short types", map[string]any{"tokenizer.ggml.token_type": []int32{1}}, "1 token types for 259 tokens"},
		{"type out of range", map[string]any{"tokenizer.ggml.token_type": append(make([]int32, 258), 9)}, "has unknown type 9"},
		{"bos outside", map[string]any{"tokenizer.ggml.bos_token_id": uint32(259)}, "BOS id 259"},
		{"bos as text", map[string]any{"tokenizer.ggml.bos_token_id": "1"}, "bos_token_id is not a token id"},
		{"add_bos as int", map[string]any{"tokenizer.ggml.add_bos_token": uint8(1)}, "add_bos_token is not a bool"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseGGUF("vocab.gguf", base(tc.edit))
			require.NoError(t, err)
			tok, err := tokenizerFromGGUF(f)
			if tc.want == "" { // all-zero types are "undefined", read as normal
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, tok)
		})
	}
}

// TestPreTokenizerDigits pins design.md §11: groups of three for llama-bpe,
// gpt-4o and default, single digits for qwen2 and tekken, whole runs for gpt-2.
func TestPreTokenizerDigits(t *testing.T) {
	for pre, want := range map[string][]string{
		"llama-bpe": {"123", "456", "7"},
		"gpt-4o":    {"123", "456", "7"},
		"default":   {"123", "456", "7"},
		"qwen2":     {"1", "2", "3", "4", "5", "6", "7"},
		"tekken":    {"1", "2", "3", "4", "5", "6", "7"},
		"gpt-2":     {"1234567"},
		"starcoder": {"1", "2", "3", "4", "5", "6", "7"},
	} {
		require.Equal(t, want, splitWords(t, pre, "1234567"), pre)
	}
	require.Equal(t, []string{"don", "'t", " DON", "'T"}, splitWords(t, "llama-bpe", "don't DON'T"))
	require.Equal(t, []string{"don", "'t", " DON", "'", "T"}, splitWords(t, "gpt-2", "don't DON'T"))
	require.Equal(t, []string{"don't", " DON'T"}, splitWords(t, "gpt-4o", "don't DON'T"))
	require.Equal(t, []string{"don", "'", "t"}, splitWords(t, "default", "don't"), "llama.cpp's default splits punctuation out first")
	require.Equal(t, []string{"\tfoo", "\n\n", "  ", " bar"}, splitWords(t, "llama-bpe", "\tfoo\n\n   bar"))
	require.Equal(t, []string{"Hello", "World", " ÉCOLE"}, splitWords(t, "tekken", "HelloWorld ÉCOLE"))
}

func splitWords(t *testing.T, pre, s string) []string {
	t.Helper()
	_, p, err := lookupPre(pre)
	require.NoError(t, err)
	var out []string
	for _, w := range p.split(s, nil) {
		out = append(out, s[w[0]:w[1]])
	}
	return out
}

// TestPreTokenizerNames: every known name resolves, an alias splits as the
// name it stands for, the empty name is "default", and an unknown name is an
// error that names it.
func TestPreTokenizerNames(t *testing.T) {
	const sample = "Hello, World! don't 1234567 \t\n\n  ÉCOLE e\u0301 日本語ABC"
	aliases := map[string]string{
		"llama3": "llama-bpe", "pixtral": "llama-bpe", "dbrx": "llama-bpe", "smaug-bpe": "llama-bpe",
		"deepseek-r1-qwen": "qwen2", "stablelm2": "qwen2", "mpt": "gpt-2", "olmo": "gpt-2",
		"llama4": "gpt-4o", "refact": "starcoder", "": "default",
	}
	for alias, canon := range aliases {
		require.Equal(t, splitWords(t, canon, sample), splitWords(t, alias, sample), "%q as %q", alias, canon)
	}
	for _, name := range PreTokenizers() {
		words := splitWords(t, name, sample)
		require.Equal(t, sample, strings.Join(words, ""), name)
	}
	_, _, err := lookupPre("deepseek-llm")
	require.ErrorContains(t, err, `pre-tokenizer "deepseek-llm" is not supported`)
	require.Len(t, preSpecs, len(PreTokenizers()))
}

// TestBPEDecoderStream: a streaming decoder returns only whole UTF-8, holding
// the bytes of a character split over tokens until the last one arrives.
func TestBPEDecoderStream(t *testing.T) {
	tok := goldenTokenizer(t, "llama3/gguf")
	ids := tok.Encode("a🦙b", WithBOS(false))
	require.Equal(t, []string{"a", "\xf0\x9f", "\xa6", "\x99", "b"}, texts(tok, ids), "Llama 3 spells the llama emoji in three tokens")
	d := tok.NewDecoder()
	var got []string
	for _, id := range ids {
		got = append(got, d.Next(id))
	}
	require.Equal(t, []string{"a", "", "", "🦙", "b"}, got)
	require.Equal(t, "", d.Flush())

	// An incomplete character at the end is flushed as U+FFFD per byte.
	d = tok.NewDecoder()
	require.Equal(t, "", d.Next(ids[1]))
	require.Equal(t, "\ufffd\ufffd", d.Flush())

	// Each step is valid UTF-8, and the steps add up to Decode.
	for _, c := range bpeCases(t, "llama3").Cases {
		ids := tok.Encode(c.Text, ParseSpecial(c.Special))
		d := tok.NewDecoder()
		var sb strings.Builder
		for _, id := range ids {
			s := d.Next(id)
			require.True(t, utf8.ValidString(s), "%q: step %q", c.Text, s)
			sb.WriteString(s)
		}
		sb.WriteString(d.Flush())
		require.Equal(t, tok.Decode(ids), sb.String())
	}
}

// TestLoadTokenizer reads tokenizers without a model: llama.cpp's vocab-only
// GGUF (no tensors), a tokenizer.json, and a checkpoint directory.
func TestLoadTokenizer(t *testing.T) {
	dir := t.TempDir()
	gguf := filepath.Join(dir, "ggml-vocab-gpt-2.gguf")
	require.NoError(t, os.WriteFile(gguf, readGz(t, "ggml-vocab-gpt-2.gguf.gz"), 0o644))
	tok, err := LoadTokenizer(gguf)
	require.NoError(t, err)
	require.Equal(t, 50257, tok.VocabSize())
	require.Equal(t, "gpt-2", tok.PreTokenizer())
	require.Equal(t, []int{15496, 995}, tok.Encode("Hello world"))
	_, err = Open(gguf)
	require.Error(t, err, "the file is no model, only a tokenizer")

	hf := filepath.Join(dir, "ckpt")
	require.NoError(t, os.Mkdir(hf, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(hf, "tokenizer.json"), readGz(t, "mistral.tokenizer.json.gz"), 0o644))
	for _, p := range []string{hf, filepath.Join(hf, "tokenizer.json")} {
		tok, err := LoadTokenizer(p)
		require.NoError(t, err, p)
		require.Equal(t, []int{1, 5713, 3714, 264, 727}, tok.Encode("Once upon a time"))
	}

	noTok := filepath.Join(dir, "empty.gguf")
	require.NoError(t, os.WriteFile(noTok, vocabGGUF(t, map[string]any{"general.architecture": "llama"}), 0o644))
	junk := filepath.Join(dir, "junk.bin")
	require.NoError(t, os.WriteFile(junk, []byte("not a tokenizer"), 0o644))
	truncated := filepath.Join(dir, "truncated.gguf")
	require.NoError(t, os.WriteFile(truncated, readGz(t, "ggml-vocab-gpt-2.gguf.gz")[:5000], 0o644))
	for p, want := range map[string]string{
		noTok:                         "no tokenizer",
		junk:                          "neither a GGUF file nor a tokenizer.json",
		truncated:                     "truncated.gguf",
		filepath.Join(dir, "missing"): "no such file",
		dir:                           "tokenizer.json",
	} {
		tok, err := LoadTokenizer(p)
		require.ErrorContains(t, err, want, p)
		require.Nil(t, tok)
	}
}

// TestBPESpeed: byte-level BPE is linear in the text, also on the inputs
// that stress a hand-written regex (one huge word, long runs of spaces,
// digits or marks) and on special-token parsing over text full of "<|".
func TestBPESpeed(t *testing.T) {
	prose := benchProse(t, 256<<10)
	inputs := map[string]string{
		"prose":      prose,
		"one word":   strings.Repeat("a", 256<<10),
		"spaces":     strings.Repeat(" ", 128<<10) + "x" + strings.Repeat("\n \t", 40<<10),
		"digits":     strings.Repeat("1234567890", 25<<10),
		"marks":      "e" + strings.Repeat("\u0301", 64<<10),
		"CJK caps":   strings.Repeat("日本語ABC", 20<<10),
		"specialish": strings.Repeat("<|eot_id", 32<<10),
	}
	for _, name := range []string{"llama3/gguf", "tekken/gguf", "qwen3/gguf", "o200k/gguf"} {
		tok := goldenTokenizer(t, name)
		for what, text := range inputs {
			start := time.Now()
			ids := tok.Encode(text, ParseSpecial(true), WithBOS(false))
			took := time.Since(start)
			require.Less(t, took, 2*time.Second, "%s on %s (%d bytes)", name, what, len(text))
			require.Equal(t, text, tok.Decode(ids), "%s on %s", name, what)
		}
	}
}

func ExampleNewByteLevelBPE() {
	// The 256 byte tokens in GPT-2's spelling, then "ab" and "Ġab" (" ab").
	var tokens []string
	for b := 0; b < 256; b++ {
		tokens = append(tokens, unicodeBytes([]byte{byte(b)}))
	}
	tokens = append(tokens, "ab", "Ġab")
	tok, err := NewByteLevelBPE(BPEVocab{
		Tokens: tokens,
		Merges: []string{"a b", "Ġ ab"},
		Pre:    "llama-bpe",
		BOS:    -1, EOS: -1,
	})
	if err != nil {
		panic(err)
	}
	ids := tok.Encode("ab ab!")
	fmt.Println(ids, tok.Piece(ids[1]), fmt.Sprintf("%q", tok.Decode(ids)))
	// Output: [256 257 33] Ġab "ab ab!"
}

// TestBPEHFSplitRegexes: the regexes real files carry map to their splitters:
// tekken's pattern as Mistral's tekken.json has it, and the Llama 3 and
// Qwen3 ones of the tokenizer.json files in testdata.
func TestBPEHFSplitRegexes(t *testing.T) {
	v := bpeVocab(t, "tekken")
	require.NotNil(t, v.Header.Pattern)
	st, ok := hfSplitRegexes[*v.Header.Pattern]
	require.True(t, ok, "tekken.json's pattern %q", *v.Header.Pattern)
	const s = "HelloWorld ÉCOLE 1234 x/y\n\n"
	var got, want [][2]int
	got = st.cut(s, 0, len(s), got)
	want = stageTekken.cut(s, 0, len(s), want)
	require.Equal(t, want, got)
	for _, name := range []string{"llama3/hf-json", "qwen3/hf-json"} {
		require.Equal(t, "tokenizer.json", goldenTokenizer(t, name).PreTokenizer())
	}
	require.Equal(t, splitWords(t, "llama-bpe", s), hfWords(t, "llama3/hf-json", s))
	require.Equal(t, splitWords(t, "qwen2", s), hfWords(t, "qwen3/hf-json", s))
}

func hfWords(t *testing.T, name, s string) []string {
	var out []string
	for _, w := range goldenTokenizer(t, name).bl.pre.split(s, nil) {
		out = append(out, s[w[0]:w[1]])
	}
	return out
}

// TestBPEHFByteLevelOptions: a GPT-2 style tokenizer.json (ByteLevel with
// its own regex and add_prefix_space, an NFC normalizer that is accepted
// and skipped) on a tiny vocabulary.
func TestBPEHFByteLevelOptions(t *testing.T) {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[byteSpelling[b]] = b
	}
	vocab["ab"], vocab["Ġab"] = 256, 257
	doc := map[string]any{
		"normalizer":    map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"decoder":       map[string]any{"type": "ByteLevel"},
		"added_tokens":  []any{map[string]any{"id": 258.0, "content": "<|end|>", "special": true}},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": []any{"a b", "Ġ ab"}},
	}
	data, err := json.Marshal(doc)
	require.NoError(t, err)
	tok, err := parseHFTokenizer(data, nil)
	require.NoError(t, err)
	require.Equal(t, ModelByteLevel, tok.Model())
	require.Equal(t, -1, tok.BOS())
	require.Equal(t, []int{257}, tok.Encode("ab"), "add_prefix_space")
	require.Equal(t, []int{257}, tok.Encode(" ab"), "no second space")
	require.Equal(t, []int{257, 257}, tok.Encode("ab ab"), "the regex splits words")
	require.Equal(t, []int{257, 258, 257}, tok.Encode("ab<|end|>ab", ParseSpecial(true)), "each stretch gets its space")
	require.Equal(t, " ab ab", tok.Decode(tok.Encode("ab ab")))
	require.Equal(t, "e\u0301", tok.Decode(tok.Encode("e\u0301"))[1:], "NFC is not applied")
}
