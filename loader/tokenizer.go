package loader

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TokenType is a vocabulary entry's kind, numbered as GGUF's
// tokenizer.ggml.token_type and SentencePiece's ModelProto number them.
type TokenType int32

const (
	TokenUndefined   TokenType = 0
	TokenNormal      TokenType = 1 // an ordinary piece: text, "▁" for a space
	TokenUnknown     TokenType = 2 // <unk>
	TokenControl     TokenType = 3 // <s>, </s>, [INST]: never produced from plain text
	TokenUserDefined TokenType = 4 // always matched whole in text, never merged
	TokenUnused      TokenType = 5
	TokenByte        TokenType = 6 // <0xNN>: one raw byte
)

// Tokenizer model names, as Model returns them.
const (
	ModelSentencePiece = "llama"  // SentencePiece BPE: merges by piece score
	ModelHFBPE         = "hf-bpe" // Hugging Face tokenizer.json BPE with "▁" for spaces: merges by rank
	ModelByteLevel     = "gpt2"   // byte-level BPE (GGUF "gpt2", tokenizer.json ByteLevel): merges by rank over bytes
)

// Limits on what a vocabulary may declare, so that a hostile file is an error
// rather than a huge allocation.
const (
	maxVocab       = 1 << 22 // tokens; real vocabularies have up to ~260k
	maxPieceBytes  = 1 << 16 // bytes in one token's text
	maxSpecialText = 1 << 10 // bytes in a control or user-defined token matched in text
)

// spaceMark is SentencePiece's meta symbol for a space, U+2581 "▁".
const spaceMark = "\u2581"

// unkSurface is what the unknown token decodes to (SentencePiece's default).
const unkSurface = " \u2047 "

// Vocab is a SentencePiece-style vocabulary as GGUF stores it.
type Vocab struct {
	Tokens []string  // piece text, "▁" for a space, "<0x0A>" for a byte
	Scores []float32 // merge scores; nil means all 0 (merges then go leftmost first)
	// Types holds a TokenType per token; nil means derive them: the BOS, EOS
	// and UNK ids are control/unknown, "<0xNN>" is a byte, the rest normal.
	Types         []int32
	BOS, EOS, UNK int // -1 when absent
	AddBOS        bool
	AddEOS        bool // Encode ends with EOS
	// NoSpacePrefix: text gets no leading "▁" (SentencePiece's
	// add_dummy_prefix off, GGUF tokenizer.ggml.add_space_prefix false:
	// Gemma), and Decode keeps the first piece's space.
	NoSpacePrefix bool
}

// Tokenizer turns text into token ids and back. It is immutable after
// construction and safe for concurrent use.
type Tokenizer struct {
	model  string
	pieces []string    // token text as stored
	types  []TokenType // per token
	text   []string    // per token, what it decodes to
	// pieceID maps every token's text to its id (the first one, if repeated).
	pieceID map[string]int32
	// normalID maps the text of normal tokens only: what characters and
	// merge results may become.
	normalID map[string]int32
	merges   map[uint64]mergeRule
	byteID   [256]int32 // -1 where the vocabulary lacks the byte
	// byteFallback: a character outside the vocabulary becomes its bytes'
	// tokens when they all exist, else UNK.
	byteFallback bool

	bos, eos, unk int
	addBOS        bool
	addEOS        bool
	fuseUnk       bool
	ignoreMerges  bool // a word that is itself a token skips merging
	// stripBOSSpace: the piece right after BOS loses one leading space when
	// decoded (SentencePiece's dummy prefix); not for byte-level BPE.
	stripBOSSpace bool
	// noSpacePrefix: SentencePiece text gets no leading "▁" (Vocab.NoSpacePrefix).
	noSpacePrefix bool

	// frozen matches user-defined pieces inside normalized text
	// (SentencePiece); nil when there are none.
	frozen *pieceMatcher
	// split matches tokens that cut the raw text into segments before
	// normalization: HF non-special added tokens (always), and, for
	// EncodeSpecial, control tokens too.
	split, splitSpecial *pieceMatcher
	// strip says which matched tokens absorb the whitespace beside them
	// (HF added tokens' lstrip and rstrip); nil when none do.
	strip map[int32]stripFlags

	norm hfNormalizer // HF only
	bl   *byteLevel   // byte-level BPE only
}

// NewSentencePiece builds a SentencePiece BPE tokenizer (GGUF's "llama"
// model) from a vocabulary: text gets a leading "▁", spaces become "▁",
// pairs of pieces merge by the highest score of the piece they make
// (leftmost first on ties), and characters outside the vocabulary fall back
// to <0xNN> byte tokens, or to UNK when there are none.
func NewSentencePiece(v Vocab) (*Tokenizer, error) {
	n := len(v.Tokens)
	if err := checkVocab(n, v.BOS, v.EOS, v.UNK); err != nil {
		return nil, err
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("loader: tokenizer: %d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("loader: tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	types := make([]TokenType, n)
	for i, s := range v.Tokens {
		if len(s) > maxPieceBytes {
			return nil, fmt.Errorf("loader: tokenizer: token %d is %d bytes long", i, len(s))
		}
		switch {
		case v.Types != nil:
			ty := TokenType(v.Types[i])
			if ty < TokenUndefined || ty > TokenByte {
				return nil, fmt.Errorf("loader: tokenizer: token %d (%q) has unknown type %d", i, s, ty)
			}
			if ty == TokenUndefined {
				ty = TokenNormal
			}
			types[i] = ty
		case i == v.UNK:
			types[i] = TokenUnknown
		case i == v.BOS || i == v.EOS:
			types[i] = TokenControl
		case isBytePiece(s):
			types[i] = TokenByte
		default:
			types[i] = TokenNormal
		}
	}
	t := newTokenizer(ModelSentencePiece, v.Tokens, types, v.BOS, v.EOS, v.UNK, v.AddBOS)
	t.noSpacePrefix, t.stripBOSSpace = v.NoSpacePrefix, !v.NoSpacePrefix
	t.addEOS = v.AddEOS && v.EOS >= 0
	t.fuseUnk = true
	if err := t.indexBytes(true); err != nil {
		return nil, err
	}

	// A pair (a, b) may merge when a+b is a normal piece; its priority is
	// that piece's score. Enumerate every split of every piece into two.
	t.merges = make(map[uint64]mergeRule)
	for id, s := range v.Tokens {
		if types[id] != TokenNormal || utf8.RuneCountInString(s) < 2 || t.normalID[s] != int32(id) {
			continue
		}
		score := 0.0
		if v.Scores != nil {
			score = float64(v.Scores[id])
			if math.IsNaN(score) {
				score = math.Inf(-1)
			}
		}
		for k := range s {
			if k == 0 {
				continue
			}
			a, okA := t.normalID[s[:k]]
			b, okB := t.normalID[s[k:]]
			if okA && okB {
				t.merges[pairKey(a, b)] = mergeRule{prio: score, result: int32(id)}
			}
		}
	}

	var frozen []int32
	for id, ty := range types {
		if ty == TokenUserDefined && v.Tokens[id] != "" && len(v.Tokens[id]) <= maxSpecialText {
			frozen = append(frozen, int32(id))
		}
	}
	t.frozen = newPieceMatcher(v.Tokens, frozen)
	t.splitSpecial = newPieceMatcher(v.Tokens, t.idsOfType(TokenControl))
	return t, nil
}

func checkVocab(n, bos, eos, unk int) error {
	if n == 0 {
		return errors.New("loader: tokenizer: empty vocabulary")
	}
	if n > maxVocab {
		return fmt.Errorf("loader: tokenizer: %d tokens (limit %d)", n, maxVocab)
	}
	for _, c := range []struct {
		name string
		id   int
	}{{"BOS", bos}, {"EOS", eos}, {"UNK", unk}} {
		if c.id < -1 || c.id >= n {
			return fmt.Errorf("loader: tokenizer: %s id %d is outside the vocabulary of %d tokens", c.name, c.id, n)
		}
	}
	return nil
}

// newTokenizer fills the fields common to both front ends.
func newTokenizer(model string, pieces []string, types []TokenType, bos, eos, unk int, addBOS bool) *Tokenizer {
	t := &Tokenizer{
		model:    model,
		pieces:   pieces,
		types:    types,
		text:     make([]string, len(pieces)),
		pieceID:  make(map[string]int32, len(pieces)),
		normalID: make(map[string]int32, len(pieces)),
		bos:      bos,
		eos:      eos,
		unk:      unk,
		addBOS:   addBOS && bos >= 0,

		stripBOSSpace: true,
	}
	for i, s := range pieces {
		if _, ok := t.pieceID[s]; !ok {
			t.pieceID[s] = int32(i)
		}
		if types[i] == TokenNormal {
			if _, ok := t.normalID[s]; !ok {
				t.normalID[s] = int32(i)
			}
		}
		switch types[i] {
		case TokenNormal, TokenUserDefined, TokenUnused:
			t.text[i] = strings.ReplaceAll(s, spaceMark, " ")
		case TokenUnknown:
			t.text[i] = unkSurface
		case TokenByte:
			if b, ok := parseBytePiece(s); ok {
				t.text[i] = string([]byte{b})
			}
		}
	}
	return t
}

// indexBytes finds the <0xNN> tokens. Unless all 256 are there, some
// character may need UNK, so there must be one.
func (t *Tokenizer) indexBytes(fallback bool) error {
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	count := 0
	if fallback {
		for id, s := range t.pieces {
			if t.types[id] != TokenByte {
				continue
			}
			b, ok := parseBytePiece(s)
			if !ok {
				return fmt.Errorf("loader: tokenizer: byte token %d is %q, want <0xNN>", id, s)
			}
			if t.byteID[b] < 0 {
				t.byteID[b] = int32(id)
				count++
			}
		}
	}
	t.byteFallback = count > 0
	if count < 256 && t.unk < 0 {
		return errors.New("loader: tokenizer: vocabulary has neither all 256 byte tokens nor an unknown token")
	}
	return nil
}

func (t *Tokenizer) idsOfType(ty TokenType) []int32 {
	var ids []int32
	for id, x := range t.types {
		if x == ty && t.pieces[id] != "" && len(t.pieces[id]) <= maxSpecialText {
			ids = append(ids, int32(id))
		}
	}
	return ids
}

// isBytePiece reports whether s is spelled <0xNN>.
func isBytePiece(s string) bool {
	_, ok := parseBytePiece(s)
	return ok
}

func parseBytePiece(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(s[3])
	lo, ok2 := hexDigit(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// EncodeOption changes what Encode does.
type EncodeOption func(*encodeOptions)

type encodeOptions struct {
	bos, eos, special bool
}

// WithBOS overrides whether Encode starts with BOS (when the vocabulary has
// one); by default it does as the vocabulary says (AddBOS).
func WithBOS(add bool) EncodeOption { return func(o *encodeOptions) { o.bos = add } }

// WithEOS overrides whether Encode ends with EOS (when the vocabulary has
// one); by default it does as the vocabulary says (AddEOS).
func WithEOS(add bool) EncodeOption { return func(o *encodeOptions) { o.eos = add } }

// ParseSpecial(true) makes control tokens written in the text ("[INST]",
// "<|eot_id|>", "</s>") those tokens, as chat templates need. By default
// they are plain text, tokenized as the characters they are made of, so
// that user text cannot smuggle them in. User-defined tokens (Qwen3's
// "<think>") are matched in both modes.
func ParseSpecial(parse bool) EncodeOption { return func(o *encodeOptions) { o.special = parse } }

// Encode tokenizes text, starting with BOS and ending with EOS when the
// vocabulary asks for them, with control tokens in the text taken as plain
// text; opts change that.
func (t *Tokenizer) Encode(text string, opts ...EncodeOption) []int {
	o := encodeOptions{bos: t.addBOS, eos: t.addEOS}
	for _, opt := range opts {
		opt(&o)
	}
	return t.encode(text, o)
}

// EncodeWith tokenizes text, starting with BOS when addBOS is true (and the
// vocabulary has one), and never ending with EOS.
func (t *Tokenizer) EncodeWith(text string, addBOS bool) []int {
	return t.encode(text, encodeOptions{bos: addBOS})
}

// EncodeSpecial is EncodeWith, but control tokens written in the text
// ("[INST]", "</s>") become those tokens. Each stretch of plain text between
// them is normalized on its own, so it gets its own leading "▁", as
// llama.cpp's parse_special and Hugging Face's added tokens do.
func (t *Tokenizer) EncodeSpecial(text string, addBOS bool) []int {
	return t.encode(text, encodeOptions{bos: addBOS, special: true})
}

func (t *Tokenizer) encode(text string, o encodeOptions) []int {
	out := make([]int32, 0, len(text)/3+2)
	if o.bos && t.bos >= 0 {
		out = append(out, int32(t.bos))
	}
	matchers := [2]*pieceMatcher{t.split, nil}
	if o.special {
		matchers[1] = t.splitSpecial
	}
	var sc bpeScratch
	start := 0 // where the current stretch of plain text began
	if matchers[0] != nil || matchers[1] != nil {
		for i := 0; i < len(text); i++ {
			id, n := int32(-1), 0
			for _, m := range matchers {
				if mid, mn := m.match(text[i:]); mn > n {
					id, n = mid, mn
				}
			}
			if n == 0 {
				continue
			}
			plain, end := text[start:i], i+n
			if f, ok := t.strip[id]; ok {
				if f.left {
					plain = strings.TrimRightFunc(plain, unicode.IsSpace)
				}
				if f.right {
					end = len(text) - len(strings.TrimLeftFunc(text[end:], unicode.IsSpace))
				}
			}
			out = t.encodeText(plain, start == 0, &sc, out)
			out = append(out, id)
			i = end - 1
			start = end
		}
	}
	out = t.encodeText(text[start:], start == 0, &sc, out)
	if o.eos && t.eos >= 0 {
		out = append(out, int32(t.eos))
	}
	ids := make([]int, len(out))
	for i, id := range out {
		ids[i] = int(id)
	}
	return ids
}

// encodeText normalizes and tokenizes a stretch of plain text; first says
// whether it begins at the start of the input.
func (t *Tokenizer) encodeText(s string, first bool, sc *bpeScratch, out []int32) []int32 {
	if s == "" {
		return out
	}
	switch {
	case t.bl != nil:
		return t.encodeByteLevel(t.norm.applySteps(s), sc, out)
	case t.model == ModelSentencePiece:
		prefix := spaceMark
		if t.noSpacePrefix {
			prefix = ""
		}
		return t.bpeWord(prefix+strings.ReplaceAll(s, " ", spaceMark), out)
	}
	for _, w := range t.norm.apply(s, first) {
		out = t.bpeWord(w, out)
	}
	return out
}

// Decode turns ids back into text: "▁" becomes a space, byte tokens become
// their bytes (a byte sequence that is not valid UTF-8 becomes U+FFFD per
// byte), control tokens become nothing, and ids outside the vocabulary are
// skipped. As in SentencePiece and llama2.c, the piece right after BOS loses
// one leading space: that space is the "▁" Encode put in front of the text.
// So Decode(Encode(s)) == s for valid UTF-8 s that has no "▁" (U+2581) and
// is tokenized without UNK.
//
// For byte-level BPE each token becomes the bytes it stands for, nothing is
// stripped, and Decode(Encode(s)) == s for every valid UTF-8 s.
func (t *Tokenizer) Decode(ids []int) string {
	var b []byte
	prev := -1
	for _, id := range ids {
		b = append(b, t.piece(prev, id)...)
		prev = id
	}
	return sanitizeUTF8(b)
}

// piece is what id decodes to after prev.
func (t *Tokenizer) piece(prev, id int) string {
	if id < 0 || id >= len(t.text) {
		return ""
	}
	s := t.text[id]
	if t.stripBOSSpace && prev == t.bos && t.bos >= 0 && t.types[id] != TokenByte && strings.HasPrefix(s, " ") {
		s = s[1:]
	}
	return s
}

// sanitizeUTF8 replaces each byte that is not part of a valid UTF-8 sequence
// with U+FFFD.
func sanitizeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

// TokenText is the text id stands for, as bytes in a string that need not
// be valid UTF-8 (a byte-level token may hold part of a character): what
// Decode makes of it alone, except that control and other tokens that
// decode to nothing give their vocabulary text ("<|eot_id|>"). It is ""
// outside the vocabulary.
func (t *Tokenizer) TokenText(id int) string {
	if id < 0 || id >= len(t.text) {
		return ""
	}
	if s := t.text[id]; s != "" || t.types[id] == TokenNormal || t.types[id] == TokenUserDefined {
		return s
	}
	return t.pieces[id]
}

// Piece is the vocabulary text of id as stored ("▁the", "<0x0A>", "<s>",
// "Ġthe" in byte-level BPE), or "" outside the vocabulary.
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// Lookup returns the id of a piece spelled exactly as in the vocabulary.
func (t *Tokenizer) Lookup(piece string) (int, bool) {
	id, ok := t.pieceID[piece]
	return int(id), ok
}

// Type is id's TokenType (TokenUndefined outside the vocabulary).
func (t *Tokenizer) Type(id int) TokenType {
	if id < 0 || id >= len(t.types) {
		return TokenUndefined
	}
	return t.types[id]
}

// IsControl reports whether id is a control token (BOS, EOS, [INST], ...).
func (t *Tokenizer) IsControl(id int) bool { return t.Type(id) == TokenControl }

// BOS is the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int { return t.eos }

// UNK is the unknown-token id, or -1.
func (t *Tokenizer) UNK() int { return t.unk }

// AddBOS reports whether Encode starts with BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode ends with EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// PreTokenizer names a byte-level tokenizer's pre-tokenizer ("llama-bpe",
// "qwen2", ..., or "tokenizer.json" for one read from a tokenizer.json); it
// is "" for the other models.
func (t *Tokenizer) PreTokenizer() string {
	if t.bl == nil {
		return ""
	}
	return t.bl.pre.name
}

// VocabSize is the number of ids.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// Model is ModelSentencePiece ("llama"), ModelHFBPE ("hf-bpe") or
// ModelByteLevel ("gpt2").
func (t *Tokenizer) Model() string { return t.model }

// Decoder turns a stream of ids into text, one id at a time, and returns
// only complete UTF-8: the bytes of a character split over several byte
// tokens are held until the character is complete. Feed it every id of the
// sequence, BOS included, so that it can drop the space after BOS as Decode
// does. The concatenation of everything Next and Flush return equals Decode
// of the same ids.
type Decoder struct {
	t       *Tokenizer
	prev    int
	pending []byte // an incomplete UTF-8 sequence, at most 3 bytes
}

// NewDecoder starts a stream.
func (t *Tokenizer) NewDecoder() *Decoder { return &Decoder{t: t, prev: -1} }

// Next adds id and returns the text that is now complete.
func (d *Decoder) Next(id int) string {
	s := d.t.piece(d.prev, id)
	d.prev = id
	if len(d.pending) == 0 && utf8.ValidString(s) {
		return s // the common case: a whole piece
	}
	d.pending = append(d.pending, s...)
	b := d.pending
	var out strings.Builder
	for len(b) > 0 && utf8.FullRune(b) {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out.WriteRune(utf8.RuneError)
		} else {
			out.Write(b[:n])
		}
		b = b[n:]
	}
	d.pending = append(d.pending[:0], b...)
	return out.String()
}

// Flush returns what is still held, each byte as U+FFFD (it can no longer
// become a character), and empties the decoder.
func (d *Decoder) Flush() string {
	s := strings.Repeat(string(utf8.RuneError), len(d.pending))
	d.pending = d.pending[:0]
	return s
}

// pieceMatcher finds the longest of a set of pieces at the start of a string.
// stripFlags are an added token's lstrip and rstrip.
type stripFlags struct{ left, right bool }

type pieceMatcher struct {
	byFirst [256][]int32 // candidates by first byte, longest first
	pieces  []string
}

func newPieceMatcher(pieces []string, ids []int32) *pieceMatcher {
	if len(ids) == 0 {
		return nil
	}
	m := &pieceMatcher{pieces: pieces}
	for _, id := range ids {
		if pieces[id] == "" {
			continue
		}
		c := pieces[id][0]
		m.byFirst[c] = append(m.byFirst[c], id)
	}
	for _, ids := range &m.byFirst {
		sort.SliceStable(ids, func(i, j int) bool { return len(pieces[ids[i]]) > len(pieces[ids[j]]) })
	}
	return m
}

// match returns the id and length of the longest piece s starts with, or
// (-1, 0).
func (m *pieceMatcher) match(s string) (int32, int) {
	if m == nil || s == "" {
		return -1, 0
	}
	for _, id := range m.byFirst[s[0]] {
		if strings.HasPrefix(s, m.pieces[id]) {
			return id, len(m.pieces[id])
		}
	}
	return -1, 0
}
