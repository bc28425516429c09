package loader

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// This file reads Hugging Face tokenizer.json files of two kinds, both
// model.type "BPE" with a vocab and a ranked merge list:
//   - SentencePiece-style, as Llama 2 and Mistral 7B checkpoints ship:
//     byte_fallback, and "▁" for spaces, put there either by normalizers
//     (Prepend "▁" + Replace " "→"▁") or by a Metaspace pre-tokenizer;
//   - byte-level, as Llama 3, Qwen and Mistral Nemo ship: a ByteLevel
//     pre-tokenizer, after Split regexes that vkrun knows (pretok.go). An NFC
//     normalizer (Qwen's) is accepted and not applied, as llama.cpp does.
// Other pipelines (NFKC, unknown regexes, other Split behaviors) are refused
// with an error rather than tokenized wrongly.

// maxHFJSONBytes bounds a tokenizer.json (Llama-3's is about 9 MB).
const maxHFJSONBytes = 256 << 20

// LoadHFTokenizer reads a Hugging Face tokenizer.json (gzip-compressed is
// fine too). A tokenizer_config.json beside it, when present, supplies
// bos_token, eos_token and add_bos_token; otherwise BOS is the special token
// a TemplateProcessing post-processor puts first (and then Encode adds it),
// or "<s>", and EOS is "</s>" (when they are special tokens). A null
// bos_token or eos_token in the config means there is none (Qwen).
//
// Added tokens cut the text before normalization: non-special ones always,
// special ones only when special parsing is asked for (ParseSpecial,
// EncodeSpecial). A match absorbs the whitespace before it (lstrip) and
// after it (rstrip) when the token says so; the single_word and normalized
// flags are not applied, a BPE dropout is ignored (encoding stays deterministic), and
// the "decoder" section is not read: Decode works as for SentencePiece, or,
// with a ByteLevel pre-tokenizer, maps the byte-level spelling back to bytes.
func LoadHFTokenizer(path string) (*Tokenizer, error) {
	data, err := readLimited(path, maxHFJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("loader: tokenizer.json: %w", err)
	}
	var config []byte
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	if c, err := readLimited(cfgPath, 16<<20); err == nil {
		config = c
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("loader: %w", err)
	}
	t, err := parseHFTokenizer(data, config)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return t, nil
}

// tokenizerFromHFJSON is the safetensors loader's entry point.
func tokenizerFromHFJSON(path string) (*Tokenizer, error) { return LoadHFTokenizer(path) }

// readLimited reads a file of at most limit bytes, gunzipping it when it
// starts with the gzip magic.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return maybeGunzip(data, limit)
}

func maybeGunzip(data []byte, limit int64) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes", limit)
	}
	return out, nil
}

type hfFile struct {
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         *hfModel        `json:"model"`
}

type hfAddedToken struct {
	ID      *int   `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
	LStrip  bool   `json:"lstrip"` // the token absorbs the whitespace before it
	RStrip  bool   `json:"rstrip"` // and after it
}

type hfModel struct {
	Type                    string           `json:"type"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	Vocab                   map[string]int64 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
}

// hfNode is any normalizer, pre-tokenizer or post-processor object; only the
// fields of the kinds we support are read.
type hfNode struct {
	Type          string            `json:"type"`
	Normalizers   []json.RawMessage `json:"normalizers"`
	PreTokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	// Prepend
	Prepend *string `json:"prepend"`
	// Replace
	Pattern *struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content *string `json:"content"`
	// Metaspace (and ByteLevel's add_prefix_space)
	Replacement    *string `json:"replacement"`
	PrependScheme  *string `json:"prepend_scheme"`
	AddPrefixSpace *bool   `json:"add_prefix_space"`
	Split          *bool   `json:"split"`
	// ByteLevel
	UseRegex *bool `json:"use_regex"`
	// Split
	Behavior *string `json:"behavior"`
	Invert   *bool   `json:"invert"`
	// TemplateProcessing
	Single []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int64 `json:"ids"`
	} `json:"special_tokens"`
}

// hfNormalizer is the supported subset of an HF pipeline, applied to each
// stretch of plain text.
type hfNormalizer struct {
	steps []hfStep
	meta  *hfMetaspace

	// A byte-level pipeline: the pre-tokenizer's stages, whether ByteLevel
	// adds a prefix space, and whether an NFC normalizer was skipped.
	byteLevel   bool
	stages      []preStage
	prefixSpace bool
	nfc         bool
}

// hfStep is Prepend(a) when prepend is set, else Replace(a → b).
type hfStep struct {
	prepend bool
	a, b    string
}

type hfMetaspace struct {
	repl   string
	scheme string // "always", "first" or "never"
	split  bool
}

// applySteps applies the Prepend and Replace normalizers to s.
func (n *hfNormalizer) applySteps(s string) string {
	for _, st := range n.steps {
		if st.prepend {
			if s != "" {
				s = st.a + s
			}
		} else {
			s = strings.ReplaceAll(s, st.a, st.b)
		}
	}
	return s
}

// apply normalizes s and splits it into the words BPE runs on. first says
// whether s starts at the beginning of the input (Metaspace "first").
func (n *hfNormalizer) apply(s string, first bool) []string {
	s = n.applySteps(s)
	m := n.meta
	if m == nil {
		return []string{s}
	}
	// Metaspace, as tokenizers' metaspace.rs does it: replace spaces, then
	// prepend the replacement unless the text already starts with it.
	s = strings.ReplaceAll(s, " ", m.repl)
	if s != "" && !strings.HasPrefix(s, m.repl) && (m.scheme == "always" || m.scheme == "first" && first) {
		s = m.repl + s
	}
	if !m.split {
		return []string{s}
	}
	// Split before each replacement character, which stays with the word
	// after it ("MergedWithNext").
	var words []string
	for s != "" {
		i := strings.Index(s[1:], m.repl)
		if i < 0 {
			words = append(words, s)
			break
		}
		words = append(words, s[:i+1])
		s = s[i+1:]
	}
	return words
}

func (n *hfNormalizer) addNormalizer(raw json.RawMessage, depth int) error {
	node, err := decodeHFNode(raw, depth)
	if err != nil || node == nil {
		return err
	}
	switch node.Type {
	case "Sequence":
		for _, r := range node.Normalizers {
			if err := n.addNormalizer(r, depth+1); err != nil {
				return err
			}
		}
	case "Prepend":
		if node.Prepend == nil {
			return errors.New("normalizer Prepend without prepend")
		}
		n.steps = append(n.steps, hfStep{prepend: true, a: *node.Prepend})
	case "Replace":
		if node.Pattern == nil || node.Pattern.String == nil || node.Content == nil {
			return errors.New("normalizer Replace: only a String pattern and a content are supported")
		}
		if *node.Pattern.String == "" {
			return errors.New("normalizer Replace: empty pattern")
		}
		n.steps = append(n.steps, hfStep{a: *node.Pattern.String, b: *node.Content})
	case "NFC":
		n.nfc = true // checked, and skipped, in parseHF
	default:
		return fmt.Errorf("normalizer %q is not supported", node.Type)
	}
	return nil
}

func (n *hfNormalizer) addPreTokenizer(raw json.RawMessage, depth int) error {
	node, err := decodeHFNode(raw, depth)
	if err != nil || node == nil {
		return err
	}
	switch node.Type {
	case "Sequence":
		for _, r := range node.PreTokenizers {
			if err := n.addPreTokenizer(r, depth+1); err != nil {
				return err
			}
		}
	case "Metaspace":
		if n.meta != nil {
			return errors.New("pre_tokenizer: more than one Metaspace")
		}
		m := &hfMetaspace{repl: spaceMark, scheme: "always", split: true}
		if node.Replacement != nil {
			m.repl = *node.Replacement
		}
		if m.repl == "" {
			return errors.New("pre_tokenizer Metaspace: empty replacement")
		}
		if node.AddPrefixSpace != nil && !*node.AddPrefixSpace {
			m.scheme = "never"
		}
		if node.PrependScheme != nil {
			m.scheme = *node.PrependScheme
		}
		if m.scheme != "always" && m.scheme != "first" && m.scheme != "never" {
			return fmt.Errorf("pre_tokenizer Metaspace: prepend_scheme %q", m.scheme)
		}
		if node.Split != nil {
			m.split = *node.Split
		}
		n.meta = m
	case "ByteLevel":
		if n.byteLevel {
			return errors.New("pre_tokenizer: more than one ByteLevel")
		}
		n.byteLevel = true
		if node.AddPrefixSpace != nil && *node.AddPrefixSpace {
			if len(n.stages) > 0 {
				return errors.New("pre_tokenizer ByteLevel: add_prefix_space after a Split is not supported")
			}
			n.prefixSpace = true
		}
		if node.UseRegex == nil || *node.UseRegex {
			n.stages = append(n.stages, stageGPT2)
		}
	case "Split":
		if n.byteLevel {
			return errors.New("pre_tokenizer: Split after ByteLevel is not supported")
		}
		if node.Pattern == nil || node.Pattern.Regex == nil {
			return errors.New("pre_tokenizer Split: only a Regex pattern is supported")
		}
		if node.Behavior == nil || *node.Behavior != "Isolated" || node.Invert != nil && *node.Invert {
			return errors.New(`pre_tokenizer Split: only behavior "Isolated" without invert is supported`)
		}
		st, ok := hfSplitRegexes[*node.Pattern.Regex]
		if !ok {
			return fmt.Errorf("pre_tokenizer Split: regex %q is not one vkrun knows", *node.Pattern.Regex)
		}
		n.stages = append(n.stages, st)
	default:
		return fmt.Errorf("pre_tokenizer %q is not supported", node.Type)
	}
	return nil
}

// decodeHFNode decodes one pipeline object; null gives nil.
func decodeHFNode(raw json.RawMessage, depth int) (*hfNode, error) {
	if depth > 8 {
		return nil, errors.New("pipeline nested too deeply")
	}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var node hfNode
	if err := json.Unmarshal(raw, &node); err != nil {
		return nil, err
	}
	return &node, nil
}

// parseHFTokenizer builds a tokenizer from tokenizer.json bytes and,
// optionally, tokenizer_config.json bytes.
func parseHFTokenizer(data, config []byte) (*Tokenizer, error) {
	t, err := parseHF(data, config)
	if err != nil {
		return nil, fmt.Errorf("loader: tokenizer.json: %w", err)
	}
	return t, nil
}

func parseHF(data, config []byte) (*Tokenizer, error) {
	data, err := maybeGunzip(data, maxHFJSONBytes)
	if err != nil {
		return nil, err
	}
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	m := f.Model
	if m == nil {
		return nil, errors.New("no model")
	}
	if m.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported (want BPE)", m.Type)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" ||
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, errors.New("BPE with continuing_subword_prefix or end_of_word_suffix is not supported")
	}
	if len(m.Vocab) == 0 {
		return nil, errors.New("empty vocab")
	}
	if len(m.Vocab)+len(f.AddedTokens) > maxVocab {
		return nil, fmt.Errorf("%d tokens (limit %d)", len(m.Vocab)+len(f.AddedTokens), maxVocab)
	}

	// Ids: the vocab's and the added tokens', dense up to a little slack.
	maxID := int64(-1)
	for s, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("vocab entry %q has id %d", s, id)
		}
		maxID = max(maxID, id)
	}
	for _, a := range f.AddedTokens {
		if a.ID == nil || *a.ID < 0 {
			return nil, fmt.Errorf("added token %q has no valid id", a.Content)
		}
		if a.Content == "" {
			return nil, fmt.Errorf("added token %d has no content", *a.ID)
		}
		maxID = max(maxID, int64(*a.ID))
	}
	if maxID >= int64(len(m.Vocab)+len(f.AddedTokens)+1024) || maxID >= maxVocab {
		return nil, fmt.Errorf("ids run up to %d for %d tokens", maxID, len(m.Vocab)+len(f.AddedTokens))
	}
	n := int(maxID) + 1
	pieces := make([]string, n)
	types := make([]TokenType, n)
	seen := make([]bool, n)
	unk := -1
	for s, id := range m.Vocab {
		if seen[id] {
			return nil, fmt.Errorf("vocab id %d is used twice (%q, %q)", id, pieces[id], s)
		}
		if len(s) > maxPieceBytes {
			return nil, fmt.Errorf("vocab entry %d is %d bytes long", id, len(s))
		}
		seen[id] = true
		pieces[id] = s
		switch {
		case m.UnkToken != nil && s == *m.UnkToken:
			types[id] = TokenUnknown
			unk = int(id)
		case m.ByteFallback && isBytePiece(s):
			types[id] = TokenByte
		default:
			types[id] = TokenNormal
		}
	}
	for _, a := range f.AddedTokens {
		id := *a.ID
		if seen[id] && pieces[id] != a.Content {
			return nil, fmt.Errorf("added token %q has id %d, which the vocab gives to %q", a.Content, id, pieces[id])
		}
		seen[id] = true
		pieces[id] = a.Content
		if types[id] == TokenUnknown {
			continue
		}
		if a.Special {
			types[id] = TokenControl
		} else {
			types[id] = TokenUserDefined
		}
	}
	for id := range seen {
		if !seen[id] {
			types[id] = TokenUnused
		}
	}

	var norm hfNormalizer
	if err := norm.addNormalizer(f.Normalizer, 0); err != nil {
		return nil, err
	}
	if err := norm.addPreTokenizer(f.PreTokenizer, 0); err != nil {
		return nil, err
	}

	lookup := func(name string) int {
		if id, ok := m.Vocab[name]; ok {
			return int(id)
		}
		for _, a := range f.AddedTokens {
			if a.Content == name {
				return *a.ID
			}
		}
		return -1
	}
	bos, eos, addBOS := -1, -1, false
	if post, err := templateBOS(f.PostProcessor, 0); err != nil {
		return nil, err
	} else if post != nil {
		bos, addBOS = int(post.id), true
		if post.id < 0 {
			bos = lookup(post.name)
		}
	}
	// Without a template or a config, "<s>" and "</s>" are BOS and EOS when
	// they are special tokens (a byte-level vocabulary may have "<s>" as
	// ordinary text).
	special := func(name string) int {
		if id := lookup(name); id >= 0 && types[id] == TokenControl {
			return id
		}
		return -1
	}
	if bos < 0 {
		bos = special("<s>")
	}
	eos = special("</s>")
	if len(config) > 0 {
		var cfg struct {
			AddBOS *bool           `json:"add_bos_token"`
			BOS    json.RawMessage `json:"bos_token"`
			EOS    json.RawMessage `json:"eos_token"`
		}
		if err := json.Unmarshal(config, &cfg); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: %w", err)
		}
		// A name sets the token; null (Qwen's bos_token) says there is none.
		for _, k := range []struct {
			raw json.RawMessage
			dst *int
		}{{cfg.BOS, &bos}, {cfg.EOS, &eos}} {
			if string(bytes.TrimSpace(k.raw)) == "null" {
				*k.dst = -1
			} else if name := tokenName(k.raw); name != "" {
				*k.dst = lookup(name)
			}
		}
		if cfg.AddBOS != nil {
			addBOS = *cfg.AddBOS
		}
	}
	if err := checkVocab(n, bos, eos, unk); err != nil {
		return nil, err
	}
	switch {
	case norm.byteLevel:
		return hfByteLevel(m, norm, pieces, types, bos, eos, unk, addBOS)
	case len(norm.stages) > 0:
		return nil, errors.New("pre_tokenizer Split is supported only before ByteLevel")
	case norm.nfc:
		return nil, errors.New(`normalizer "NFC" is supported only in byte-level pipelines`)
	}

	t := newTokenizer(ModelHFBPE, pieces, types, bos, eos, unk, addBOS)
	t.fuseUnk = m.FuseUnk
	t.ignoreMerges = m.IgnoreMerges
	t.norm = norm
	if err := t.indexBytes(m.ByteFallback); err != nil {
		return nil, err
	}
	if err := t.addHFMerges(m.Merges, m.Vocab); err != nil {
		return nil, err
	}
	t.split = newPieceMatcher(pieces, t.idsOfType(TokenUserDefined))
	t.splitSpecial = newPieceMatcher(pieces, t.idsOfType(TokenControl))
	t.strip = addedStrips(f.AddedTokens)
	return t, nil
}

// addedStrips is the lstrip and rstrip flags of the added tokens that have
// one, by id; nil when none has.
func addedStrips(added []hfAddedToken) map[int32]stripFlags {
	var m map[int32]stripFlags
	for _, a := range added {
		if !a.LStrip && !a.RStrip {
			continue
		}
		if m == nil {
			m = map[int32]stripFlags{}
		}
		m[int32(*a.ID)] = stripFlags{left: a.LStrip, right: a.RStrip}
	}
	return m
}

// hfByteLevel finishes a byte-level tokenizer.json.
func hfByteLevel(m *hfModel, norm hfNormalizer, pieces []string, types []TokenType, bos, eos, unk int, addBOS bool) (*Tokenizer, error) {
	if norm.meta != nil {
		return nil, errors.New("pre_tokenizer: ByteLevel together with Metaspace is not supported")
	}
	if m.ByteFallback {
		return nil, errors.New("BPE byte_fallback with a ByteLevel pre-tokenizer is not supported")
	}
	pre := &preTokenizer{name: "tokenizer.json", stages: norm.stages}
	t, err := newByteLevel(pieces, types, bos, eos, addBOS, false, pre)
	if err != nil {
		return nil, err
	}
	t.unk = unk
	t.ignoreMerges = m.IgnoreMerges
	t.norm = norm
	t.bl.prefixSpace = norm.prefixSpace
	if err := t.addHFMerges(m.Merges, m.Vocab); err != nil {
		return nil, err
	}
	return t, nil
}

// tokenName reads a tokenizer_config.json token: "<s>" or {"content": "<s>"}.
func tokenName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Content
	}
	return ""
}

type hfTemplateBOS struct {
	name string
	id   int64 // -1: look name up
}

// templateBOS finds a TemplateProcessing post-processor whose single-sequence
// template starts with a special token: that token is BOS, and it is added.
func templateBOS(raw json.RawMessage, depth int) (*hfTemplateBOS, error) {
	node, err := decodeHFNode(raw, depth)
	if err != nil || node == nil {
		return nil, err
	}
	switch node.Type {
	case "Sequence":
		for _, r := range node.Processors {
			if b, err := templateBOS(r, depth+1); b != nil || err != nil {
				return b, err
			}
		}
	case "TemplateProcessing":
		if len(node.Single) == 0 || node.Single[0].SpecialToken == nil {
			return nil, nil
		}
		name := node.Single[0].SpecialToken.ID
		b := &hfTemplateBOS{name: name, id: -1}
		if st, ok := node.SpecialTokens[name]; ok && len(st.IDs) == 1 {
			b.id = st.IDs[0]
		}
		return b, nil
	}
	return nil, nil
}

// addHFMerges reads the ranked merge list: "a b" strings, or [a, b] pairs in
// newer files. Earlier lines merge first.
func (t *Tokenizer) addHFMerges(raw json.RawMessage, vocab map[string]int64) error {
	var pairs [][2]string
	var lines []string
	if err := json.Unmarshal(raw, &lines); err == nil {
		pairs = make([][2]string, len(lines))
		for i, l := range lines {
			a, b, ok := strings.Cut(l, " ")
			if !ok || strings.Contains(b, " ") {
				return fmt.Errorf("merge %d (%q) is not two tokens separated by a space", i, l)
			}
			pairs[i] = [2]string{a, b}
		}
	} else {
		var arr [][]string
		if err := json.Unmarshal(raw, &arr); err != nil && len(raw) > 0 {
			return fmt.Errorf("merges: %w", err)
		}
		pairs = make([][2]string, len(arr))
		for i, p := range arr {
			if len(p) != 2 {
				return fmt.Errorf("merge %d has %d parts, want 2", i, len(p))
			}
			pairs[i] = [2]string{p[0], p[1]}
		}
	}
	t.merges = make(map[uint64]mergeRule, len(pairs))
	for rank, p := range pairs {
		a, okA := vocab[p[0]]
		b, okB := vocab[p[1]]
		r, okR := vocab[p[0]+p[1]]
		if !okA || !okB || !okR {
			return fmt.Errorf("merge %d (%q %q) uses or makes a token outside the vocab", rank, p[0], p[1])
		}
		k := pairKey(int32(a), int32(b))
		if _, dup := t.merges[k]; !dup {
			t.merges[k] = mergeRule{prio: -float64(rank), result: int32(r)}
		}
	}
	return nil
}
