package loader

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hfDoc loads one of the hand-made tokenizer.json files as a generic map,
// applies edit, and returns the JSON again.
func hfDoc(t testing.TB, name string, edit func(doc map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(tokDir, name))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	if edit != nil {
		edit(doc)
	}
	out, err := json.Marshal(doc)
	require.NoError(t, err)
	return out
}

func hfModelOf(doc map[string]any) map[string]any { return doc["model"].(map[string]any) }

func mustHF(t testing.TB, data []byte) *Tokenizer {
	t.Helper()
	tok, err := parseHFTokenizer(data, nil)
	require.NoError(t, err)
	return tok
}

func TestHFTokenizerNormalizerStyle(t *testing.T) {
	tok := mustHF(t, hfDoc(t, "hf-tiny-normalizer.json", nil))
	require.Equal(t, ModelHFBPE, tok.Model())
	require.Equal(t, 14, tok.VocabSize())
	require.True(t, tok.AddBOS())
	require.Equal(t, 1, tok.BOS())
	require.Equal(t, 2, tok.EOS())
	require.Equal(t, 0, tok.UNK())
	require.Equal(t, TokenControl, tok.Type(12))
	require.Equal(t, TokenUserDefined, tok.Type(13))
	tests := []struct {
		name    string
		text    string
		special bool
		want    []int
	}{
		{"lowest rank first", "abc", false, []int{1, 3, 9}},
		{"a space is a ▁", "a b", false, []int{1, 10, 3, 5}},
		{"rank beats position", "b a", false, []int{1, 3, 5, 10}},
		{"empty text is just BOS", "", false, []int{1}},
		{"no byte fallback: UNK", "é", false, []int{1, 3, 0}},
		{"fuse_unk joins unknowns", "éü", false, []int{1, 3, 0}},
		{"non-special added tokens always split, each part gets ▁", "a<x>a", false, []int{1, 10, 13, 10}},
		{"special added tokens are text by default", "[INST]a", false, []int{1, 3, 0, 4}},
		{"EncodeSpecial matches them", "[INST]a", true, []int{1, 12, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			if tc.special {
				got = tok.EncodeSpecial(tc.text, true)
			} else {
				got = tok.Encode(tc.text)
			}
			require.Equal(t, tc.want, got, "%v", pieces(tok, got))
		})
	}
}

func TestHFTokenizerMetaspace(t *testing.T) {
	set := func(kv map[string]any) func(map[string]any) {
		return func(doc map[string]any) {
			pre := doc["pre_tokenizer"].(map[string]any)
			for k, v := range kv {
				if v == nil {
					delete(pre, k)
				} else {
					pre[k] = v
				}
			}
		}
	}
	tests := []struct {
		name string
		edit func(map[string]any)
		text string
		want []int
	}{
		{"first: prepended at the start", nil, "ab ab", []int{1, 10, 11, 7}},
		{"not prepended when the text starts with a space", nil, " ab", []int{1, 3, 7}},
		{"first: only the first stretch", nil, "a<x>ab", []int{1, 10, 13, 7}},
		{"byte fallback where the bytes exist", nil, "é", []int{1, 3, 16, 17}},
		{"UNK where they do not, unfused", nil, "üü", []int{1, 3, 0, 0}},
		{"always: every stretch", set(map[string]any{"prepend_scheme": "always"}), "a<x>ab", []int{1, 10, 13, 3, 7}},
		{"never", set(map[string]any{"prepend_scheme": "never"}), "ab ab", []int{1, 4, 11, 7}},
		{"legacy add_prefix_space false is never", set(map[string]any{"prepend_scheme": nil, "add_prefix_space": false}), "ab ab", []int{1, 4, 11, 7}},
		{"split: words start at ▁", set(map[string]any{"split": true}), "ab ab", []int{1, 3, 7, 3, 7}},
		{"split is the default", set(map[string]any{"split": nil}), "ab ab", []int{1, 3, 7, 3, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := mustHF(t, hfDoc(t, "hf-tiny-metaspace.json", tc.edit))
			got := tok.Encode(tc.text)
			require.Equal(t, tc.want, got, "%v", pieces(tok, got))
		})
	}
}

func TestHFTokenizerIgnoreMerges(t *testing.T) {
	tok := mustHF(t, hfDoc(t, "hf-tiny-metaspace.json", func(doc map[string]any) {
		m := hfModelOf(doc)
		m["ignore_merges"] = true
		m["vocab"].(map[string]any)["▁abab"] = 18.0
	}))
	require.Equal(t, []int{18}, tok.EncodeWith("abab", false))
	require.Equal(t, []int{10, 11, 7}, tok.EncodeWith("ab ab", false), "other words still merge")
}

func TestLoadHFTokenizerFiles(t *testing.T) {
	raw := hfDoc(t, "hf-tiny-normalizer.json", nil)
	tests := []struct {
		name     string
		gz       bool
		config   string
		addBOS   bool
		bos, eos int
	}{
		{"plain", false, "", true, 1, 2},
		{"gzip", true, "", true, 1, 2},
		{"tokenizer_config.json", false, `{"add_bos_token": false, "bos_token": {"content": "<s>"}, "eos_token": "[INST]"}`, false, 1, 12},
		{"config without the keys", false, `{"model_max_length": 32768}`, true, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := raw
			if tc.gz {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				_, err := zw.Write(raw)
				require.NoError(t, err)
				require.NoError(t, zw.Close())
				data = b.Bytes()
			}
			path := filepath.Join(dir, "tokenizer.json")
			require.NoError(t, os.WriteFile(path, data, 0o644))
			if tc.config != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(tc.config), 0o644))
			}
			tok, err := tokenizerFromHFJSON(path)
			require.NoError(t, err)
			require.Equal(t, tc.addBOS, tok.AddBOS())
			require.Equal(t, tc.bos, tok.BOS())
			require.Equal(t, tc.eos, tok.EOS())
		})
	}
	_, err := LoadHFTokenizer(filepath.Join(t.TempDir(), "missing.json"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestHFTokenizerErrors(t *testing.T) {
	doc := func(edit func(map[string]any)) []byte { return hfDoc(t, "hf-tiny-normalizer.json", edit) }
	model := func(edit func(m map[string]any)) []byte {
		return doc(func(d map[string]any) { edit(hfModelOf(d)) })
	}
	nested := map[string]any{"type": "Prepend", "prepend": "▁"}
	for i := 0; i < 12; i++ {
		nested = map[string]any{"type": "Sequence", "normalizers": []any{nested}}
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not JSON", []byte("{"), "unexpected end of JSON"},
		{"gzip junk", []byte{0x1f, 0x8b, 1, 2, 3}, "gzip"},
		{"no model", []byte(`{}`), "no model"},
		{"WordPiece", model(func(m map[string]any) { m["type"] = "WordPiece" }), `model type "WordPiece"`},
		{"subword prefix", model(func(m map[string]any) { m["continuing_subword_prefix"] = "##" }), "continuing_subword_prefix"},
		{"empty vocab", model(func(m map[string]any) { m["vocab"] = map[string]any{}; m["merges"] = []any{} }), "empty vocab"},
		{"negative id", model(func(m map[string]any) { m["vocab"].(map[string]any)["z"] = -1.0 }), `"z" has id -1`},
		{"id used twice", model(func(m map[string]any) { m["vocab"].(map[string]any)["z"] = 4.0 }), "vocab id 4 is used twice"},
		{"sparse ids", model(func(m map[string]any) { m["vocab"].(map[string]any)["z"] = 1e9 }), "ids run up to 1000000000"},
		{"id does not fit", model(func(m map[string]any) { m["vocab"].(map[string]any)["z"] = 1e30 }), "cannot unmarshal"},
		{"merge outside vocab", model(func(m map[string]any) { m["merges"] = []any{"a z"} }), `merge 0 ("a" "z")`},
		{"merge result outside vocab", model(func(m map[string]any) { m["merges"] = []any{"c a"} }), `merge 0 ("c" "a")`},
		{"merge with three parts", model(func(m map[string]any) { m["merges"] = []any{"a b c"} }), "not two tokens"},
		{"merge pair of three", model(func(m map[string]any) { m["merges"] = []any{[]any{"a", "b", "c"}} }), "has 3 parts"},
		{"merges not a list", model(func(m map[string]any) { m["merges"] = 7.0 }), "merges"},
		{"no UNK, no bytes", model(func(m map[string]any) { delete(m, "unk_token") }), "neither all 256 byte tokens nor an unknown token"},
		{"added token without id", doc(func(d map[string]any) {
			d["added_tokens"] = []any{map[string]any{"content": "<y>"}}
		}), `added token "<y>" has no valid id`},
		{"added token with empty content", doc(func(d map[string]any) {
			d["added_tokens"] = []any{map[string]any{"id": 20.0, "content": ""}}
		}), "added token 20 has no content"},
		{"added token clashes with vocab", doc(func(d map[string]any) {
			d["added_tokens"] = []any{map[string]any{"id": 4.0, "content": "<y>"}}
		}), `which the vocab gives to "a"`},
		{"NFKC", doc(func(d map[string]any) { d["normalizer"] = map[string]any{"type": "NFKC"} }), `normalizer "NFKC" is not supported`},
		{"regex Replace", doc(func(d map[string]any) {
			d["normalizer"] = map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " +"}, "content": "▁"}
		}), "only a String pattern"},
		{"nested too deeply", doc(func(d map[string]any) { d["normalizer"] = nested }), "nested too deeply"},
		{"ByteLevel without byte tokens", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "ByteLevel"}
			d["model"].(map[string]any)["byte_fallback"] = false
		}), `byte-level vocabulary has no token for byte 0x00 ("Ā")`},
		{"ByteLevel with byte_fallback", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "ByteLevel"}
			d["model"].(map[string]any)["byte_fallback"] = true
		}), "byte_fallback with a ByteLevel"},
		{"ByteLevel and Metaspace", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Metaspace"}, map[string]any{"type": "ByteLevel"}}}
		}), "ByteLevel together with Metaspace"},
		{"two ByteLevels", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "ByteLevel"}, map[string]any{"type": "ByteLevel"}}}
		}), "more than one ByteLevel"},
		{"unknown Split regex", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\w+`}, "behavior": "Isolated"}
		}), "is not one vkrun knows"},
		{"Split behavior", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\p{N}`}, "behavior": "Removed"}
		}), `only behavior "Isolated"`},
		{"Split inverted", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\p{N}`}, "behavior": "Isolated", "invert": true}
		}), `only behavior "Isolated"`},
		{"Split string pattern", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"String": " "}, "behavior": "Isolated"}
		}), "only a Regex pattern"},
		{"Split without ByteLevel", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\p{N}`}, "behavior": "Isolated"}
		}), "supported only before ByteLevel"},
		{"Split after ByteLevel", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{map[string]any{"type": "ByteLevel"},
				map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\p{N}`}, "behavior": "Isolated"}}}
		}), "Split after ByteLevel"},
		{"NFC without ByteLevel", doc(func(d map[string]any) { d["normalizer"] = map[string]any{"type": "NFC"} }), `"NFC" is supported only in byte-level`},
		{"bad prepend_scheme", doc(func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"}
		}), `prepend_scheme "sometimes"`},
		{"BOS id outside", doc(func(d map[string]any) {
			pp := d["post_processor"].(map[string]any)
			pp["special_tokens"] = map[string]any{"<s>": map[string]any{"ids": []any{99.0}}}
		}), "BOS id 99"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := parseHFTokenizer(tc.data, nil)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, tok)
			require.True(t, strings.HasPrefix(err.Error(), "loader: tokenizer.json: "), err.Error())
		})
	}
}

// An added token with lstrip or rstrip absorbs the whitespace on that side
// of it, as Hugging Face tokenizers matches such tokens.
func TestHFTokenizerAddedTokenStrip(t *testing.T) {
	withFlags := func(lstrip, rstrip bool) *Tokenizer {
		return mustHF(t, hfDoc(t, "hf-tiny-metaspace.json", func(doc map[string]any) {
			for _, a := range doc["added_tokens"].([]any) {
				if a := a.(map[string]any); a["content"] == "<x>" {
					a["lstrip"], a["rstrip"] = lstrip, rstrip
				}
			}
		}))
	}
	plain := withFlags(false, false)
	both := withFlags(true, true)
	assert.Equal(t, []int{1, 10, 13, 7}, both.Encode("a  <x>\t ab"), "both sides' whitespace goes")
	assert.NotEqual(t, plain.Encode("a<x>ab"), plain.Encode("a  <x>\t ab"), "without the flags the spaces are text")
	assert.Equal(t, plain.Encode("a<x> ab"), withFlags(true, false).Encode("a <x> ab"), "lstrip: only the left")
	assert.Equal(t, plain.Encode("a <x>ab"), withFlags(false, true).Encode("a <x> ab"), "rstrip: only the right")
	assert.Equal(t, []int{1, 10, 13}, both.Encode("a <x>  "), "trailing whitespace after a token goes too")
}
