package testmodel_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/loader"
)

// vocabText joins a vocabulary file's lines.
func vocabText(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func TestReadBPEVocab(t *testing.T) {
	const (
		n = testmodel.TypeNormal
		c = testmodel.TypeControl
		u = testmodel.TypeUserDefined
		x = testmodel.TypeUnused
	)
	for _, tc := range []struct {
		name   string
		text   string
		merges []string
		types  []int32
	}{
		{"merges", vocabText("bpevocab 1",
			`{"tokens":7,"merges":2,"normal":5,"control_from":5,"bos":5,"eos":6}`,
			"a", "b", "ab", "Ġ", "Ġab", "<|begin|>", "<|end|>",
			"2 1", // token 2 "ab" = "a" + "b"
			"2 1", // token 4 "Ġab" = "Ġ" + "ab" (characters, not bytes)
		), []string{"a b", "Ġ ab"}, []int32{n, n, n, n, n, c, c}},
		{"type lists", vocabText("bpevocab 1",
			`{"tokens":5,"merges":0,"control_below":1,"user_defined":[3],"unused":[4],"control":[2],"bos":-1,"eos":-1}`,
			"<pad>", "a", "<|x|>", "<think>", "[PAD]",
		), []string{}, []int32{c, n, c, u, x}},
		// Every split of a token into two tokens is a merge, by the rank of
		// the token it makes, then by its parts.
		{"ranks", vocabText("bpevocab 1",
			`{"tokens":6,"ranks":true,"normal":5,"control_from":5,"bos":-1,"eos":5}`,
			"a", "b", "ab", "bb", "abb", "<|end|>",
		), []string{"a b", "b b", "a bb", "ab b"}, []int32{n, n, n, n, n, c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := testmodel.ReadBPEVocab(strings.NewReader(tc.text))
			require.NoError(t, err)
			require.Equal(t, tc.merges, v.Merges)
			require.Equal(t, tc.types, v.Types)
			require.Len(t, v.Tokens, v.Header.Tokens)
		})
	}
}

func TestReadBPEVocabErrors(t *testing.T) {
	const head = "bpevocab 1\n" + `{"tokens":3,"merges":1,"bos":-1,"eos":-1}` + "\na\nb\nab\n"
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "truncated after line 0"},
		{"magic", "bpevocab 2\n{}\n", `line 1: got "bpevocab 2", want the magic line`},
		{"header", "bpevocab 1\n{tokens:3}\n", "line 2: header: invalid character"},
		{"no tokens", "bpevocab 1\n" + `{"tokens":0}` + "\n", "line 2: header: 0 tokens"},
		{"ranks and merges", "bpevocab 1\n" + `{"tokens":2,"merges":1,"ranks":true}` + "\n", "a ranks vocabulary with 1 merge lines"},
		{"few tokens", "bpevocab 1\n" + `{"tokens":3}` + "\na\n", "truncated after line 3"},
		{"control id", "bpevocab 1\n" + `{"tokens":1,"control":[1]}` + "\na\n", "control id 1 outside the 1 tokens"},
		{"eos id", "bpevocab 1\n" + `{"tokens":1,"eos":1}` + "\na\n", "bos/eos id 1 outside the 1 tokens"},
		{"no merges", head, "truncated after line 5"},
		{"merge syntax", head + "2\n", `line 6: merge "2" is not "d k"`},
		{"merge number", head + "2 x\n", `line 6: merge "2 x" is not "d k"`},
		{"merge target", head + "3 1\n", "line 6: merge makes token 3 of 3"},
		{"negative step", head + "-1 1\n", "line 6: merge makes token -1 of 3"},
		{"empty left", head + "2 0\n", "line 6: merge splits token 2 (2 characters) after 0"},
		{"empty right", head + "2 2\n", "line 6: merge splits token 2 (2 characters) after 2"},
		{"trailing", head + "2 1\n2 1\n", "line 7: trailing text after the 1 merges"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := testmodel.ReadBPEVocab(strings.NewReader(tc.text))
			require.Nil(t, v)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// Decode reads the byte spelling by itself; for every token of Llama 3's
// vocabulary it must give the bytes the loader's tokenizer gives.
func TestBPEVocabDecode(t *testing.T) {
	v, err := testmodel.LoadBPEVocab("llama3")
	require.NoError(t, err)
	tok, err := loader.NewByteLevelBPE(loader.BPEVocab{Tokens: v.Tokens, Types: v.Types, Merges: v.Merges,
		Pre: "llama-bpe", BOS: v.Header.BOS, EOS: v.Header.EOS})
	require.NoError(t, err)
	for id := range v.Tokens {
		got, err := v.Decode([]int{id})
		require.NoError(t, err, "token %d %q", id, v.Tokens[id])
		want := tok.TokenText(id)
		if v.Types[id] == testmodel.TypeControl {
			want = ""
		}
		require.Equal(t, want, string(got), "token %d %q", id, v.Tokens[id])
	}
	text := "Hello, wörld 1234 中文 🦙"
	got, err := v.Decode(tok.Encode(text))
	require.NoError(t, err)
	require.Equal(t, text, string(got))

	for _, tc := range []struct {
		name string
		ids  []int
		want string
	}{
		{"negative", []int{1, -1}, "token id -1 outside the 128256 tokens"},
		{"past the end", []int{128256}, "token id 128256 outside the 128256 tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Decode(tc.ids)
			require.ErrorContains(t, err, tc.want)
		})
	}
	bad := &testmodel.BPEVocab{Tokens: []string{"中"}, Types: []int32{testmodel.TypeNormal}}
	_, err = bad.Decode([]int{0})
	require.ErrorContains(t, err, `token 0 "中": '中' is not in the byte-level spelling`)
}
