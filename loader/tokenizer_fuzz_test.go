package loader

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for the tokenizer. Seeds come from testdata/tokenizer; the
// regression inputs go test keeps under testdata/fuzz/<name>/ run as part of
// plain `go test`. Run one with, e.g.
//
//	go test -run='^$' -fuzz=FuzzTokenizerRoundTrip -fuzztime=60s ./loader/

// seedTexts is every text of the golden data.
func seedTexts(f *testing.F) []string {
	f.Helper()
	var texts []string
	raw, err := os.ReadFile(filepath.Join(tokDir, "texts.json"))
	if err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(raw, &texts); err != nil {
		f.Fatal(err)
	}
	for _, vocab := range []string{"llama2", "tok512", "spm-bpe"} {
		for _, c := range goldenCases(f, vocab) {
			texts = append(texts, c.Text)
		}
	}
	return texts
}

// FuzzTokenizerRoundTrip checks, for any input and each of four tokenizers
// (SentencePiece with real Llama-2 scores, stories260K's tok512, the spm_train
// model, and Mistral through tokenizer.json):
//   - nothing panics, and every id is inside the vocabulary;
//   - Encode starts with BOS, and Encode("") is exactly [BOS];
//   - Decode(Encode(s)) == s for valid UTF-8 s without "▁" (U+2581, which
//     decodes to a space), when no UNK was needed. For invalid UTF-8 the same
//     holds with each stray byte read as U+FFFD: byte fallback keeps the bytes,
//     and Decode only refuses to return invalid UTF-8;
//   - streaming with a Decoder returns exactly what Decode returns;
//   - EncodeSpecial stays inside the vocabulary as well.
func FuzzTokenizerRoundTrip(f *testing.F) {
	for _, s := range seedTexts(f) {
		f.Add(s)
	}
	names := []string{"llama2/spm-tokenizer.bin", "tok512/vocab-json", "spm-bpe/vocab-json", "mistral/hf-json"}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return // long texts are TestTokenizerSpeed's; keep each run short
		}
		for _, name := range names {
			tok := goldenTokenizer(t, name)
			ids := tok.Encode(s)
			checkIDs(t, tok, s, ids)
			if len(ids) == 0 || ids[0] != tok.BOS() {
				t.Fatalf("%s: Encode(%q) = %v does not start with BOS", name, s, ids)
			}
			if s == "" && len(ids) != 1 {
				t.Fatalf("%s: Encode(\"\") = %v, want [BOS]", name, ids)
			}
			dec := tok.Decode(ids)
			if !utf8.ValidString(dec) {
				t.Fatalf("%s: Decode(%v) = %q is not valid UTF-8", name, ids, dec)
			}
			if !strings.Contains(s, spaceMark) && !containsID(ids, tok.UNK()) {
				if want := sanitizeUTF8([]byte(s)); dec != want {
					t.Fatalf("%s: Decode(Encode(%q)) = %q, want %q (ids %v)", name, s, dec, want, ids)
				}
			}
			if got := streamDecode(tok, ids); got != dec {
				t.Fatalf("%s: streamed %q, Decode gave %q (ids %v)", name, got, dec, ids)
			}
			checkIDs(t, tok, s, tok.EncodeSpecial(s, false))
		}
	})
}

func checkIDs(t *testing.T, tok *Tokenizer, s string, ids []int) {
	t.Helper()
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("%q gave id %d outside [0,%d)", s, id, tok.VocabSize())
		}
	}
}

func containsID(ids []int, id int) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// FuzzHFTokenizerJSON feeds hostile tokenizer.json documents to the parser:
// it must return an error or a working tokenizer, never panic, and never
// allocate far beyond the input's size (ids are bounded by the entry count).
func FuzzHFTokenizerJSON(f *testing.F) {
	for _, name := range []string{"hf-tiny-normalizer.json", "hf-tiny-metaspace.json"} {
		raw, err := os.ReadFile(filepath.Join(tokDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`))
	f.Add([]byte(`{"model":{"type":"BPE","unk_token":"a","vocab":{"a":0,"b":3},"merges":[["a","a"]]}}`))
	f.Add([]byte(`{"model":null}`))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseHFTokenizer(data, nil)
		if err != nil {
			if tok != nil {
				t.Fatal("a tokenizer and an error")
			}
			return
		}
		for _, s := range []string{"", "ab ab", " a<x>[INST]é🦙", "\xff\xfe", string(data[:min(len(data), 64)])} {
			ids := tok.Encode(s)
			checkIDs(t, tok, s, ids)
			checkIDs(t, tok, s, tok.EncodeSpecial(s, true))
			dec := tok.Decode(ids)
			if got := streamDecode(tok, ids); got != dec {
				t.Fatalf("streamed %q, Decode gave %q", got, dec)
			}
		}
	})
}

// FuzzTokenizerVocab builds SentencePiece tokenizers from arbitrary
// vocabularies (one piece per line; a leading digit 1-6 sets its type, and
// its line number sets its score) and encodes arbitrary text with them:
// construction may fail, but nothing may panic, and ids stay in range.
func FuzzTokenizerVocab(f *testing.F) {
	f.Add("<unk>\n3<s>\n3</s>\n▁\na\nb\nab\n▁a\n4bc\n6<0x41>", "ab ab bc é")
	f.Add("2<unk>\n3<s>\n3</s>\n\n\n▁▁\n▁\n", "  ")
	f.Add("<unk>\n<s>\n</s>\n6<0xZZ>", "x")
	f.Fuzz(func(t *testing.T, vocab, text string) {
		lines := strings.Split(vocab, "\n")
		if len(lines) > 4096 {
			return
		}
		v := Vocab{BOS: 1, EOS: 2, UNK: 0, AddBOS: true}
		for i, l := range lines {
			ty := int32(TokenNormal)
			if l != "" && l[0] >= '1' && l[0] <= '6' {
				ty, l = int32(l[0]-'0'), l[1:]
			}
			v.Tokens = append(v.Tokens, l)
			v.Types = append(v.Types, ty)
			v.Scores = append(v.Scores, -float32(i%7))
		}
		if len(v.Tokens) < 3 {
			v.BOS, v.EOS = -1, -1
		}
		tok, err := NewSentencePiece(v)
		if err != nil {
			return
		}
		for _, special := range []bool{false, true} {
			var ids []int
			if special {
				ids = tok.EncodeSpecial(text, true)
			} else {
				ids = tok.Encode(text)
			}
			checkIDs(t, tok, text, ids)
			if dec := tok.Decode(ids); dec != streamDecode(tok, ids) || !utf8.ValidString(dec) {
				t.Fatalf("decode mismatch or invalid UTF-8 for %v", ids)
			}
		}
	})
}

// bpeFuzzNames are the byte-level tokenizers the BPE fuzz targets run: one
// per pre-tokenizer family, through GGUF and tokenizer.json.
var bpeFuzzNames = []string{"llama3/gguf", "qwen3/hf-json", "tekken/gguf", "o200k/gguf", "gpt2/gguf", "gpt2/pre=default"}

// FuzzBPERoundTrip checks, for any input and each byte-level tokenizer:
//   - nothing panics, and every id is inside the vocabulary, with and
//     without special-token parsing;
//   - Decode(Encode(s)) == s for valid UTF-8 s (byte-level BPE is lossless;
//     control tokens in the text stay text), and for invalid UTF-8 the same
//     with each stray byte read as U+FFFD;
//   - a Decoder never returns broken UTF-8, and its pieces add up to Decode;
//   - reading the input as ids instead (three bytes each), Encode(Decode(ids))
//     gives valid ids that decode to the same text.
func FuzzBPERoundTrip(f *testing.F) {
	for _, s := range seedTexts(f) {
		f.Add(s)
	}
	raw, err := os.ReadFile(filepath.Join(tokDir, "bpe-texts.json"))
	if err != nil {
		f.Fatal(err)
	}
	var texts []string
	if err := json.Unmarshal(raw, &texts); err != nil {
		f.Fatal(err)
	}
	for _, s := range texts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		for _, name := range bpeFuzzNames {
			tok := goldenTokenizer(t, name)
			ids := tok.Encode(s, WithBOS(false))
			checkIDs(t, tok, s, ids)
			checkIDs(t, tok, s, tok.Encode(s, ParseSpecial(true)))
			if dec, want := tok.Decode(ids), sanitizeUTF8([]byte(s)); dec != want {
				t.Fatalf("%s: Decode(Encode(%q)) = %q, want %q (ids %v)", name, s, dec, want, ids)
			}
			d := tok.NewDecoder()
			var sb strings.Builder
			for _, id := range ids {
				piece := d.Next(id)
				if !utf8.ValidString(piece) {
					t.Fatalf("%s: the decoder returned %q", name, piece)
				}
				sb.WriteString(piece)
			}
			sb.WriteString(d.Flush())
			if sb.String() != tok.Decode(ids) {
				t.Fatalf("%s: streamed %q, Decode gave %q", name, sb.String(), tok.Decode(ids))
			}

			var asIDs []int
			for i := 0; i+3 <= len(s); i += 3 {
				asIDs = append(asIDs, (int(s[i])|int(s[i+1])<<8|int(s[i+2])<<16)%tok.VocabSize())
			}
			text := tok.Decode(asIDs)
			again := tok.Encode(text, WithBOS(false))
			checkIDs(t, tok, text, again)
			if got := tok.Decode(again); got != text {
				t.Fatalf("%s: Decode(Encode(Decode(%v))) = %q, want %q", name, asIDs, got, text)
			}
		}
	})
}

// FuzzBPEVocab builds byte-level tokenizers from arbitrary vocabularies (the
// 256 byte tokens, then one token per line of extra; a leading digit 1-6
// sets its type) and merge lists, and encodes arbitrary text with them:
// construction may fail, but nothing may panic, ids stay in range, and
// valid UTF-8 comes back from Decode.
func FuzzBPEVocab(f *testing.F) {
	f.Add("ab\nĠab\n3<|x|>\n4<y>", "a b\nĠ ab", "llama-bpe", "ab ab<|x|><y>")
	f.Add("aa\naaa", "a a\naa a\na aa", "qwen2", "aaaaaaa")
	f.Add("5unused\n6byte", "a", "tekken", "x")
	f.Add("", "", "nope", "")
	f.Fuzz(func(t *testing.T, extra, merges, pre, text string) {
		if len(extra) > 4096 || len(merges) > 4096 || len(text) > 4096 {
			return
		}
		v := BPEVocab{Tokens: append([]string{}, byteSpelling[:]...), Pre: pre, BOS: -1, EOS: -1}
		v.Types = make([]int32, 256)
		for i := range v.Types {
			v.Types[i] = int32(TokenNormal)
		}
		for _, l := range strings.Split(extra, "\n") {
			ty := int32(TokenNormal)
			if l != "" && l[0] >= '1' && l[0] <= '6' {
				ty, l = int32(l[0]-'0'), l[1:]
			}
			v.Tokens = append(v.Tokens, l)
			v.Types = append(v.Types, ty)
		}
		if merges != "" {
			v.Merges = strings.Split(merges, "\n")
		}
		tok, err := NewByteLevelBPE(v)
		if err != nil {
			return
		}
		for _, special := range []bool{false, true} {
			ids := tok.Encode(text, ParseSpecial(special))
			checkIDs(t, tok, text, ids)
			if dec := tok.Decode(ids); dec != streamDecode(tok, ids) || !utf8.ValidString(dec) {
				t.Fatalf("decode mismatch or invalid UTF-8 for %v", ids)
			}
		}
	})
}
