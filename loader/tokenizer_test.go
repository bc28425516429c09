package loader

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyPiece is one hand-made vocabulary entry.
type tinyPiece struct {
	text  string
	score float32
	typ   TokenType // 0: normal
}

// tinySPM builds a SentencePiece tokenizer with <unk> <s> </s>, then the 256
// byte tokens when bytes is set, then pieces.
func tinySPM(t testing.TB, bytes bool, pieces ...tinyPiece) *Tokenizer {
	t.Helper()
	v := Vocab{Tokens: []string{"<unk>", "<s>", "</s>"}, Scores: []float32{0, 0, 0},
		Types: []int32{int32(TokenUnknown), int32(TokenControl), int32(TokenControl)}, BOS: 1, EOS: 2, UNK: 0, AddBOS: true}
	if bytes {
		for b := 0; b < 256; b++ {
			v.Tokens = append(v.Tokens, fmt.Sprintf("<0x%02X>", b))
			v.Scores = append(v.Scores, 0)
			v.Types = append(v.Types, int32(TokenByte))
		}
	}
	for _, p := range pieces {
		ty := p.typ
		if ty == 0 {
			ty = TokenNormal
		}
		v.Tokens = append(v.Tokens, p.text)
		v.Scores = append(v.Scores, p.score)
		v.Types = append(v.Types, int32(ty))
	}
	tok, err := NewSentencePiece(v)
	require.NoError(t, err)
	return tok
}

// pieces spells ids as vocabulary pieces, for readable failures.
func pieces(tok *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.Piece(id)
	}
	return out
}

// mergeVocab has scores chosen so that each case below has one right answer
// that a wrong merge order would miss.
var mergeVocab = []tinyPiece{
	{text: "▁"}, {text: "a"}, {text: "b"}, {text: "c"}, {text: "s"},
	{text: "ab", score: -1}, {text: "bc", score: -2}, {text: "abc", score: -3},
	{text: "aa", score: -4}, {text: "▁a", score: -5}, {text: "▁▁", score: -6},
}

func TestSentencePieceMerges(t *testing.T) {
	tok := tinySPM(t, true, mergeVocab...)
	tests := []struct {
		name, text string
		want       []string
	}{
		{"empty text has no dummy prefix", "", []string{}},
		{"best score first: ab before bc", "abc", []string{"▁", "abc"}},
		{"a merge result merges again", "bc", []string{"▁", "bc"}},
		{"score beats position", "cab", []string{"▁", "c", "ab"}},
		{"ties go leftmost", "aaa", []string{"▁", "aa", "a"}},
		{"ties go leftmost, twice", "aaaa", []string{"▁", "aa", "aa"}},
		{"leading space keeps the dummy prefix", " a", []string{"▁", "▁a"}},
		{"spaces are pieces", "a  a", []string{"▁a", "▁", "▁a"}},
		{"byte fallback", "é", []string{"▁", "<0xC3>", "<0xA9>"}},
		{"byte fallback, 4 bytes", "a🦙", []string{"▁a", "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"}},
		{"invalid UTF-8 is bytes", "a\xff", []string{"▁a", "<0xFF>"}},
		{"newline and tab are bytes here", "\n\t", []string{"▁", "<0x0A>", "<0x09>"}},
		{"control text is plain text", "<s>", []string{"▁", "<0x3C>", "s", "<0x3E>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids := tok.EncodeWith(tc.text, false)
			require.Equal(t, tc.want, pieces(tok, ids))
			require.Equal(t, append([]int{1}, ids...), tok.Encode(tc.text), "Encode adds BOS")
		})
	}
}

func TestSentencePieceUnknown(t *testing.T) {
	tok := tinySPM(t, false, mergeVocab...) // no byte tokens
	tests := []struct {
		text string
		want []string
	}{
		{"é", []string{"▁", "<unk>"}},
		{"éü", []string{"▁", "<unk>"}}, // a run of unknowns is one <unk>
		{"éaü", []string{"▁", "<unk>", "a", "<unk>"}},
		{"aéa", []string{"▁a", "<unk>", "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			ids := tok.EncodeWith(tc.text, false)
			require.Equal(t, tc.want, pieces(tok, ids))
			require.Contains(t, tok.Decode(ids), "\u2047")
		})
	}
}

func TestSentencePieceUserDefinedAndControl(t *testing.T) {
	tok := tinySPM(t, true,
		tinyPiece{text: "▁"}, tinyPiece{text: "a"}, tinyPiece{text: "b"}, tinyPiece{text: "c"},
		tinyPiece{text: "ab", score: -1}, tinyPiece{text: "▁a", score: -2},
		tinyPiece{text: "bc", typ: TokenUserDefined},
		tinyPiece{text: "[INST]", typ: TokenControl},
	)
	tests := []struct {
		name    string
		text    string
		special bool
		want    []string
	}{
		{"user-defined is matched first and never merged", "abc", false, []string{"▁a", "bc"}},
		{"user-defined inside a word", "cbca", false, []string{"▁", "c", "bc", "a"}},
		{"control text is not matched by default", "[INST]", false,
			[]string{"▁", "<0x5B>", "<0x49>", "<0x4E>", "<0x53>", "<0x54>", "<0x5D>"}},
		{"EncodeSpecial matches control text", "[INST]a", true, []string{"[INST]", "▁a"}},
		{"each text stretch gets its own prefix", "a[INST]a[INST]", true, []string{"▁a", "[INST]", "▁a", "[INST]"}},
		{"BOS text is a control token too", "</s>a", true, []string{"</s>", "▁a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ids []int
			if tc.special {
				ids = tok.EncodeSpecial(tc.text, false)
			} else {
				ids = tok.EncodeWith(tc.text, false)
			}
			require.Equal(t, tc.want, pieces(tok, ids))
		})
	}
}

func TestTokenizerDecode(t *testing.T) {
	tok := tinySPM(t, true, mergeVocab...)
	id := func(p string) int {
		i, ok := tok.Lookup(p)
		require.True(t, ok, p)
		return i
	}
	bos, eos := tok.BOS(), tok.EOS()
	tests := []struct {
		name string
		ids  []int
		want string
	}{
		{"nothing", nil, ""},
		{"space after BOS is dropped", []int{bos, id("▁a")}, "a"},
		{"without BOS it stays", []int{id("▁a")}, " a"},
		{"only the first piece after BOS", []int{bos, id("▁"), id("▁a")}, " a"},
		{"BOS later in the sequence", []int{id("a"), bos, id("▁a")}, "aa"},
		{"a byte space after BOS stays", []int{bos, id("<0x20>"), id("a")}, " a"},
		{"control tokens decode to nothing", []int{bos, id("▁a"), eos, bos}, "a"},
		{"bytes join into a character", []int{id("<0xC3>"), id("<0xA9>")}, "é"},
		{"a broken character is U+FFFD per byte", []int{id("<0xF0>"), id("<0x9F>"), id("a")}, "\uFFFD\uFFFDa"},
		{"a stray continuation byte", []int{id("<0xA9>")}, "\uFFFD"},
		{"ids outside the vocabulary are skipped", []int{-1, id("a"), 1 << 30}, "a"},
		{"unknown", []int{tok.UNK()}, " \u2047 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tok.Decode(tc.ids))
			require.Equal(t, tc.want, streamDecode(tok, tc.ids))
		})
	}
}

// streamDecode runs ids through a Decoder and joins what it returns.
func streamDecode(tok *Tokenizer, ids []int) string {
	d := tok.NewDecoder()
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(d.Next(id))
	}
	sb.WriteString(d.Flush())
	return sb.String()
}

// TestDecoderStream checks what each Next returns, with Llama-2's vocabulary,
// where emoji and rare CJK characters arrive as several byte tokens.
func TestDecoderStream(t *testing.T) {
	tok := goldenTokenizer(t, "llama2/spm-tokenizer.bin")
	byteID := func(b byte) int { return 3 + int(b) } // Llama-2: <0x00> is id 3
	tests := []struct {
		name  string
		ids   []int
		steps []string // what each Next returns
		flush string
	}{
		{"🦙 after BOS", []int{1, 29871, byteID(0xF0), byteID(0x9F), byteID(0xA6), byteID(0x99)},
			[]string{"", "", "", "", "", "🦙"}, ""},
		{"Ꙋ then 🦙", []int{byteID(0xEA), byteID(0x99), byteID(0x8A), byteID(0xF0), byteID(0x9F), byteID(0xA6), byteID(0x99)},
			[]string{"", "", "Ꙋ", "", "", "", "🦙"}, ""},
		{"镇 is one piece", []int{1, 29871, 30411}, []string{"", "", "镇"}, ""},
		{"word then emoji", []int{9038, byteID(0xF0), byteID(0x9F), byteID(0x98), byteID(0x80), 2501},
			[]string{" Once", "", "", "", "😀", " upon"}, ""},
		{"cut short: Flush gives U+FFFD per byte", []int{9038, byteID(0xF0), byteID(0x9F)},
			[]string{" Once", "", ""}, "\uFFFD\uFFFD"},
		{"an impossible byte is U+FFFD at once", []int{byteID(0xFF), 9038}, []string{"\uFFFD", " Once"}, ""},
		{"a broken sequence is flushed by the next piece", []int{byteID(0xE2), byteID(0x82), 9038},
			[]string{"", "", "\uFFFD\uFFFD Once"}, ""},
		{"control tokens in between", []int{byteID(0xC3), 2, byteID(0xA9)}, []string{"", "", "é"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tok.NewDecoder()
			var got []string
			for _, id := range tc.ids {
				got = append(got, d.Next(id))
			}
			require.Equal(t, tc.steps, got)
			require.Equal(t, tc.flush, d.Flush())
			require.Equal(t, "", d.Flush(), "a second Flush has nothing left")
			require.Equal(t, tok.Decode(tc.ids), strings.Join(tc.steps, "")+tc.flush)
		})
	}
}

// TestDecoderMatchesDecode: streaming and whole decoding agree on every
// golden case of every golden tokenizer.
func TestDecoderMatchesDecode(t *testing.T) {
	for _, name := range []string{"llama2/spm-tokenizer.bin", "mistral/hf-json", "tok512/vocab-json", "spm-bpe/vocab-json"} {
		t.Run(name, func(t *testing.T) {
			tok := goldenTokenizer(t, name)
			cases := goldenCases(t, strings.Split(name, "/")[0])
			for _, c := range cases {
				require.Equal(t, tok.Decode(c.IDs), streamDecode(tok, c.IDs), "%q", c.Text)
			}
		})
	}
}

func TestTokenizerAccessors(t *testing.T) {
	tok := tinySPM(t, true, mergeVocab...)
	require.Equal(t, ModelSentencePiece, tok.Model())
	require.Equal(t, 3+256+len(mergeVocab), tok.VocabSize())
	require.Equal(t, 1, tok.BOS())
	require.Equal(t, 2, tok.EOS())
	require.Equal(t, 0, tok.UNK())
	require.True(t, tok.AddBOS())
	tests := []struct {
		id      int
		piece   string
		typ     TokenType
		control bool
	}{
		{0, "<unk>", TokenUnknown, false},
		{1, "<s>", TokenControl, true},
		{2, "</s>", TokenControl, true},
		{3 + 0x0A, "<0x0A>", TokenByte, false},
		{259, "▁", TokenNormal, false},
		{-1, "", TokenUndefined, false},
		{1 << 20, "", TokenUndefined, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.id), func(t *testing.T) {
			require.Equal(t, tc.piece, tok.Piece(tc.id))
			require.Equal(t, tc.typ, tok.Type(tc.id))
			require.Equal(t, tc.control, tok.IsControl(tc.id))
			if tc.piece != "" {
				id, ok := tok.Lookup(tc.piece)
				require.True(t, ok)
				require.Equal(t, tc.id, id)
			}
		})
	}
	_, ok := tok.Lookup("not a piece")
	require.False(t, ok)
}

func TestNewSentencePieceDerivesTypes(t *testing.T) {
	v := Vocab{Tokens: []string{"<unk>", "<s>", "</s>", "<0x41>", "▁", "A"}, BOS: 1, EOS: 2, UNK: 0}
	tok, err := NewSentencePiece(v)
	require.NoError(t, err)
	want := []TokenType{TokenUnknown, TokenControl, TokenControl, TokenByte, TokenNormal, TokenNormal}
	for id, ty := range want {
		require.Equal(t, ty, tok.Type(id), "id %d", id)
	}
	require.False(t, tok.AddBOS())
	require.Equal(t, []int{4, 5}, tok.Encode("A"))
	require.Equal(t, []int{1, 4, 5}, tok.EncodeWith("A", true))
}

func TestNewSentencePieceErrors(t *testing.T) {
	base := func() Vocab {
		return Vocab{Tokens: []string{"<unk>", "<s>", "</s>", "a"}, BOS: 1, EOS: 2, UNK: 0}
	}
	tests := []struct {
		name   string
		modify func(*Vocab)
		want   string
	}{
		{"empty", func(v *Vocab) { v.Tokens = nil }, "empty vocabulary"},
		{"scores length", func(v *Vocab) { v.Scores = []float32{1} }, "1 scores for 4 tokens"},
		{"types length", func(v *Vocab) { v.Types = []int32{1, 1} }, "2 token types for 4 tokens"},
		{"bad type", func(v *Vocab) { v.Types = []int32{2, 3, 3, 9} }, "unknown type 9"},
		{"BOS out of range", func(v *Vocab) { v.BOS = 4 }, "BOS id 4"},
		{"EOS negative", func(v *Vocab) { v.EOS = -2 }, "EOS id -2"},
		{"no UNK, no bytes", func(v *Vocab) { v.UNK = -1 }, "neither all 256 byte tokens nor an unknown token"},
		{"malformed byte token", func(v *Vocab) { v.Types = []int32{2, 3, 3, 6} }, `byte token 3 is "a"`},
		{"huge piece", func(v *Vocab) { v.Tokens[3] = strings.Repeat("x", maxPieceBytes+1) }, "65537 bytes long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := base()
			tc.modify(&v)
			_, err := NewSentencePiece(v)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestTokenizerConcurrent: a Tokenizer is shared by goroutines (go test -race).
func TestTokenizerConcurrent(t *testing.T) {
	tok := goldenTokenizer(t, "tok512/vocab-json")
	cases := goldenCases(t, "tok512")
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for _, c := range cases {
				if got := tok.Encode(c.Text); fmt.Sprint(got) != fmt.Sprint(c.IDs) {
					done <- fmt.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		require.NoError(t, <-done)
	}
}

// Without the dummy prefix (GGUF tokenizer.ggml.add_space_prefix false, as
// Gemma's files say), text starts with no "▁" and decodes back whole.
func TestSentencePieceNoSpacePrefix(t *testing.T) {
	v := Vocab{Tokens: []string{"<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab"}, Scores: []float32{0, 0, 0, 0, 0, 0, -1, -2},
		BOS: 1, EOS: 2, UNK: 0, AddBOS: true}
	with, err := NewSentencePiece(v)
	require.NoError(t, err)
	v.NoSpacePrefix = true
	without, err := NewSentencePiece(v)
	require.NoError(t, err)
	for _, tc := range []struct {
		text          string
		with, without []string
	}{
		{"ab a", []string{"▁a", "b", "▁a"}, []string{"ab", "▁a"}},
		{" a", []string{"▁", "▁a"}, []string{"▁a"}},
	} {
		assert.Equal(t, tc.with, pieces(with, with.EncodeWith(tc.text, false)), "with the prefix: %q", tc.text)
		ids := without.Encode(tc.text)
		assert.Equal(t, tc.without, pieces(without, ids[1:]), "without the prefix: %q", tc.text)
		assert.Equal(t, tc.text, without.Decode(ids), "the first piece keeps its space")
	}

	// The GGUF key.
	w := NewGGUFWriter()
	require.NoError(t, w.SetValue("tokenizer.ggml.model", "llama"))
	require.NoError(t, w.SetValue("tokenizer.ggml.tokens", v.Tokens))
	require.NoError(t, w.SetValue("tokenizer.ggml.scores", v.Scores))
	require.NoError(t, w.SetValue("tokenizer.ggml.add_space_prefix", false))
	path := filepath.Join(t.TempDir(), "vocab.gguf")
	require.NoError(t, w.WriteFile(path))
	tok, err := LoadTokenizer(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"ab", "▁a"}, pieces(tok, tok.EncodeWith("ab a", false)))
}
