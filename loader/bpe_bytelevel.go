package loader

import (
	"fmt"
	"strings"
)

// This file holds byte-level BPE, the tokenizer of GPT-2 and of most models
// since: Llama 3 ("llama-bpe"), Qwen 2 and 3 ("qwen2"), Mistral Nemo, Small 3
// and Ministral ("tekken"). GGUF calls it tokenizer.ggml.model "gpt2";
// tokenizer.json spells it with a ByteLevel pre-tokenizer.
//
// Encoding cuts the text into words with the pre-tokenizer that
// tokenizer.ggml.pre names (pretok.go), and runs BPE on each word's UTF-8
// bytes: every byte is a token, spelled in the vocabulary by GPT-2's
// byte-to-unicode map (0x20 is "Ġ", 0x0A is "Ċ"), and pairs merge by the rank
// of their line in the merge list, lower first and leftmost on ties. Some
// vocabularies (llama-bpe and tekken in llama.cpp, ignore_merges in
// tokenizer.json) take a word that is itself a token as that token.
// Any byte sequence has an encoding, so Decode(Encode(s)) == s for every
// valid UTF-8 s: nothing is normalized, and there is no unknown token.
//
// Where vkrun differs from the references, and which it follows:
//   - Qwen's tokenizer.json applies the NFC normalizer first. llama.cpp does
//     not (GGUF has no normalizer), and neither does vkrun, for GGUF or
//     tokenizer.json: text that is not in NFC ("e" + U+0301) tokenizes as
//     written, where Hugging Face would compose it first (recorded in
//     testdata/tokenizer/bpe-cases.json.gz).
//   - llama.cpp overrides some token types by their text: end-of-generation
//     tokens ("<|eot_id|>", "<|im_end|>", "<|endoftext|>", ...) become
//     control tokens (design.md §11 also notes "</s>" for Qwen), and
//     gpt-oss's "<|channel|>" and others user-defined. vkrun takes the types
//     the file gives; converted files already mark these as control.
//   - gpt-4o: llama.cpp does not set ignore_merges, and neither does vkrun;
//     with merges converted from the tiktoken ranks every o200k token is
//     what the merges make of its own bytes, so tiktoken's rule (a word that
//     is a token is that token) changes nothing there.
//   - A GGUF file without tokenizer.ggml.bos_token_id has no BOS here;
//     llama.cpp falls back to id 11 for BPE vocabularies.
//   - llama.cpp's detokenize removes the space before "?!.," and around a
//     lone apostrophe for the pre-tokenizers it marks clean_spaces
//     (llama-bpe, gpt-2 and default among them); vkrun's Decode is exact, as
//     its streaming Decoder must be, and as llama.cpp's token_to_piece is.
//   - Added tokens' lstrip and rstrip flags are not applied (none of the
//     vocabularies above sets them).

// byteRune is GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for
// themselves, and the others (controls, space, 0x7F–0xA0, 0xAD) for U+0100
// onwards, in byte order.
var byteRune, byteSpelling = func() (r [256]rune, s [256]string) {
	n := 0
	for b := 0; b < 256; b++ {
		switch {
		case '!' <= b && b <= '~', 0xA1 <= b && b <= 0xAC, 0xAE <= b && b <= 0xFF:
			r[b] = rune(b)
		default:
			r[b] = rune(256 + n)
			n++
		}
		s[b] = string(r[b])
	}
	return r, s
}()

// runeByte inverts byteRune: the byte a character of a byte-level token
// stands for, or -1.
var runeByte = func() (m [324]int16) {
	for i := range m {
		m[i] = -1
	}
	for b, r := range byteRune {
		m[r] = int16(b)
	}
	return m
}()

// unicodeBytes spells bytes as a byte-level token text ("Ġthe" for " the").
func unicodeBytes(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteString(byteSpelling[c])
	}
	return sb.String()
}

// decodeByteLevel turns a byte-level token text back into its bytes. A text
// with a character outside the map comes back as it is, as Hugging Face's
// ByteLevel decoder does.
func decodeByteLevel(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0 || int(r) >= len(runeByte) || runeByte[r] < 0 {
			return s
		}
		out = append(out, byte(runeByte[r]))
	}
	return string(out)
}

// byteLevel is what a byte-level tokenizer adds to Tokenizer.
type byteLevel struct {
	pre     *preTokenizer
	byteTok [256]int32 // the token of each byte
	// prefixSpace: a stretch of text that does not start with a space gets
	// one (tokenizer.json ByteLevel add_prefix_space).
	prefixSpace bool
}

// BPEVocab is a byte-level BPE vocabulary as GGUF stores it
// (tokenizer.ggml.model "gpt2").
type BPEVocab struct {
	// Tokens are the token texts: normal tokens in GPT-2's byte-to-unicode
	// spelling ("Ġthe"), control and user-defined tokens as they are written
	// in text ("<|eot_id|>", "<think>").
	Tokens []string
	// Types holds a TokenType per token (tokenizer.ggml.token_type); nil
	// means all normal.
	Types []int32
	// Merges are "left right" pairs of token texts in rank order
	// (tokenizer.ggml.merges).
	Merges []string
	// Pre names the pre-tokenizer (tokenizer.ggml.pre; see PreTokenizers).
	// "" means "default", as in llama.cpp.
	Pre      string
	BOS, EOS int // -1 when absent
	// AddBOS and AddEOS, when set, override the pre-tokenizer's defaults
	// (tokenizer.ggml.add_bos_token, add_eos_token): llama-bpe and tekken
	// add BOS, the others add nothing.
	AddBOS, AddEOS *bool
}

// NewByteLevelBPE builds a byte-level BPE tokenizer. The vocabulary must
// have a token for each of the 256 bytes, and every merge must join two
// tokens into a third.
func NewByteLevelBPE(v BPEVocab) (*Tokenizer, error) {
	spec, pre, err := lookupPre(v.Pre)
	if err != nil {
		return nil, fmt.Errorf("loader: tokenizer: %w", err)
	}
	types, err := bpeTypes(v.Tokens, v.Types, v.BOS, v.EOS)
	if err != nil {
		return nil, err
	}
	addBOS, addEOS := spec.addBOS, false
	if v.AddBOS != nil {
		addBOS = *v.AddBOS
	}
	if v.AddEOS != nil {
		addEOS = *v.AddEOS
	}
	t, err := newByteLevel(v.Tokens, types, v.BOS, v.EOS, addBOS, addEOS, pre)
	if err != nil {
		return nil, fmt.Errorf("loader: tokenizer: %w", err)
	}
	t.ignoreMerges = spec.ignoreMerges
	if err := t.addMergeLines(v.Merges); err != nil {
		return nil, fmt.Errorf("loader: tokenizer: %w", err)
	}
	return t, nil
}

// bpeTypes checks a vocabulary's size, ids and types.
func bpeTypes(tokens []string, raw []int32, bos, eos int) ([]TokenType, error) {
	n := len(tokens)
	if err := checkVocab(n, bos, eos, -1); err != nil {
		return nil, err
	}
	if raw != nil && len(raw) != n {
		return nil, fmt.Errorf("loader: tokenizer: %d token types for %d tokens", len(raw), n)
	}
	types := make([]TokenType, n)
	for i, s := range tokens {
		if len(s) > maxPieceBytes {
			return nil, fmt.Errorf("loader: tokenizer: token %d is %d bytes long", i, len(s))
		}
		types[i] = TokenNormal
		if raw != nil {
			ty := TokenType(raw[i])
			if ty < TokenUndefined || ty > TokenByte {
				return nil, fmt.Errorf("loader: tokenizer: token %d (%q) has unknown type %d", i, s, ty)
			}
			if ty != TokenUndefined {
				types[i] = ty
			}
		}
	}
	return types, nil
}

// newByteLevel fills what GGUF and tokenizer.json byte-level tokenizers
// share; the merges come after.
func newByteLevel(pieces []string, types []TokenType, bos, eos int, addBOS, addEOS bool, pre *preTokenizer) (*Tokenizer, error) {
	t := newTokenizer(ModelByteLevel, pieces, types, bos, eos, -1, addBOS)
	t.addEOS = addEOS && eos >= 0
	t.stripBOSSpace = false
	t.bl = &byteLevel{pre: pre}
	for id, s := range pieces {
		switch types[id] {
		case TokenNormal:
			t.text[id] = decodeByteLevel(s)
		case TokenUserDefined:
			t.text[id] = s
		default:
			// Control tokens decode to nothing (as with SentencePiece), and
			// llama.cpp gives nothing for the other types of a BPE
			// vocabulary either.
			t.text[id] = ""
		}
	}
	for b := range t.bl.byteTok {
		id, ok := t.pieceID[byteSpelling[b]]
		if !ok {
			return nil, fmt.Errorf("byte-level vocabulary has no token for byte %#02x (%q)", b, byteSpelling[b])
		}
		t.bl.byteTok[b] = id
	}
	t.split = newPieceMatcher(pieces, t.idsOfType(TokenUserDefined))
	t.splitSpecial = newPieceMatcher(pieces, t.idsOfType(TokenControl))
	return t, nil
}

// addMergeLines reads GGUF merges: "left right", split at the first space
// after the first byte (as llama.cpp does), rank = line number.
func (t *Tokenizer) addMergeLines(lines []string) error {
	if len(lines) > 4*maxVocab {
		return fmt.Errorf("%d merges", len(lines))
	}
	t.merges = make(map[uint64]mergeRule, len(lines))
	for rank, l := range lines {
		k := -1
		if len(l) > 1 {
			k = strings.IndexByte(l[1:], ' ')
		}
		if k < 0 {
			return fmt.Errorf("merge %d (%q) is not two tokens separated by a space", rank, l)
		}
		a, b := l[:k+1], l[k+2:]
		if err := t.addMerge(rank, a, b); err != nil {
			return err
		}
	}
	return nil
}

// addMerge records that tokens a and b merge with the given rank, unless an
// earlier line already ranked the pair.
func (t *Tokenizer) addMerge(rank int, a, b string) error {
	ia, okA := t.pieceID[a]
	ib, okB := t.pieceID[b]
	ir, okR := t.pieceID[a+b]
	if !okA || !okB || !okR {
		return fmt.Errorf("merge %d (%q %q) uses or makes a token outside the vocabulary", rank, a, b)
	}
	k := pairKey(ia, ib)
	if _, dup := t.merges[k]; !dup {
		t.merges[k] = mergeRule{prio: -float64(rank), result: ir}
	}
	return nil
}

// bpeScratch is reused across the words of one Encode call.
type bpeScratch struct {
	words [][2]int
	syms  []symbol
	heap  candidateHeap
	spell []byte // a word in the byte-to-unicode spelling
	// cache holds the ids of words already encoded in this call (long texts
	// repeat their words); nil until the text is long enough to gain.
	cache map[string][]int32
}

// cacheFrom is the length of text from which Encode remembers words.
const cacheFrom = 4 << 10

// encodeByteLevel pre-tokenizes a stretch of plain text and appends the
// tokens of each word.
func (t *Tokenizer) encodeByteLevel(s string, sc *bpeScratch, out []int32) []int32 {
	if t.bl.prefixSpace && s != "" && s[0] != ' ' {
		s = " " + s
	}
	if len(s) >= cacheFrom && sc.cache == nil {
		sc.cache = make(map[string][]int32, len(s)/16)
	}
	sc.words = t.bl.pre.split(s, sc.words[:0])
	for _, w := range sc.words {
		word := s[w[0]:w[1]]
		if sc.cache != nil {
			if ids, ok := sc.cache[word]; ok {
				out = append(out, ids...)
				continue
			}
		}
		n := len(out)
		out = t.bpeBytes(word, sc, out)
		if sc.cache != nil {
			sc.cache[word] = out[n:len(out):len(out)]
		}
	}
	return out
}

// bpeBytes runs BPE on one word's bytes.
func (t *Tokenizer) bpeBytes(word string, sc *bpeScratch, out []int32) []int32 {
	if len(word) == 1 {
		return append(out, t.bl.byteTok[word[0]])
	}
	if t.ignoreMerges {
		sc.spell = sc.spell[:0]
		for i := 0; i < len(word); i++ {
			sc.spell = append(sc.spell, byteSpelling[word[i]]...)
		}
		if id, ok := t.normalID[string(sc.spell)]; ok {
			return append(out, id)
		}
	}
	syms := sc.syms[:0]
	for i := 0; i < len(word); i++ {
		n := int32(len(syms))
		syms = append(syms, symbol{id: t.bl.byteTok[word[i]], prev: n - 1, next: n + 1})
	}
	sc.syms = syms
	return t.mergeSymbols(syms, &sc.heap, out)
}
