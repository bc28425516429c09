package loader

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the pre-tokenizers of byte-level BPE: they cut text into
// the words that BPE then runs on, one word at a time. The models define
// them as regular expressions (in tokenizer.json, in tiktoken, and in
// llama.cpp's src/llama-vocab.cpp, which names them by tokenizer.ggml.pre).
// Those regexes need look-ahead, which Go's regexp lacks, so each is written
// here by hand over Unicode categories from Go's unicode tables, the way
// llama.cpp's src/unicode.cpp does for some of them. Each splitter below
// quotes the regex it implements, and the tests compare every one with
// @huggingface/tokenizers running the regex itself (testdata/tokenizer,
// "pretok/<name>").
//
// The classes, as the regexes mean them:
//
//	\p{L} letter, \p{N} number, \p{M} mark, \p{Lu} etc. their subcategories
//	\s    Unicode White_Space (U+0009–000D, U+0020, U+0085, U+00A0, U+1680,
//	      U+2000–200A, U+2028, U+2029, U+202F, U+205F, U+3000), as in the
//	      Oniguruma engine of Hugging Face tokenizers; not JavaScript's \s,
//	      which also has U+FEFF and lacks U+0085
//
// Where the splitters differ from the regexes (they are meant to match them
// exactly, and the golden tests find no other difference):
//   - A byte that is not valid UTF-8 (the regexes only ever see valid text)
//     is a character of no class, like a symbol, so it stays inside a word
//     and byte-level BPE keeps it.
//   - The case-insensitive contractions (?i:'s|'t|'re|'ve|'m|'ll|'d) match
//     ASCII letters only. llama.cpp, llama3-tokenizer-js, js-tiktoken and
//     @huggingface/tokenizers agree ("it'ſ" is in the golden texts); whether
//     Oniguruma's full case folding would take "'ſ" (U+017F folds to s) as a
//     contraction is not checked here.
//   - The categories come from Go's unicode tables (Unicode 15), which may
//     class a character assigned in a later version differently.
//
// Where vkrun differs from llama.cpp, which runs the tekken and gpt-4o
// regexes through std::regex after collapsing every non-ASCII character to
// one byte per category (vkrun follows the regexes, as Hugging Face
// tokenizers, tiktoken and mistral-common run them):
//   - llama.cpp's adapted tekken and gpt-4o regexes replace the letter
//     subcategories by "a letter that is not a-z" and "a letter that is not
//     A-Z", so every non-ASCII letter counts as both upper and lower case,
//     and they drop \p{M}, so a combining mark is not part of a word. vkrun
//     uses the real subcategories and keeps \p{M}, so "ÉCOLE", "Δημοκρατία"
//     and "e" + U+0301 split as they do for tiktoken and mistral-common.
//   - For the other pre-tokenizers no difference from llama.cpp is known.
//     The golden data hold llama.cpp's own vectors (models/ggml-vocab-*.out),
//     but those were written by Hugging Face tokenizers, so they check the
//     regexes rather than llama.cpp's splitters.

// Character class bits.
const (
	cLetter  uint16 = 1 << iota // \p{L}
	cNumber                     // \p{N}
	cSpace                      // \s
	cUpper                      // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	cLower                      // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
	cPunct                      // [\p{P}\$\+<=>\^~\|] (llama.cpp's default and falcon)
	cNewline                    // [\r\n]
	cDigit                      // [0-9]
	cSlash                      // /
)

var asciiClass [128]uint16

func init() {
	for c := 0; c < 128; c++ {
		asciiClass[c] = classOf(rune(c))
	}
}

// classOf computes a character's class bits from the unicode tables.
func classOf(r rune) uint16 {
	var f uint16
	switch {
	case unicode.IsLetter(r):
		f |= cLetter
		switch {
		case unicode.Is(unicode.Ll, r):
			f |= cLower
		case unicode.Is(unicode.Lu, r), unicode.Is(unicode.Lt, r):
			f |= cUpper
		default: // Lm, Lo
			f |= cUpper | cLower
		}
	case unicode.IsMark(r):
		f |= cUpper | cLower
	case unicode.IsNumber(r):
		f |= cNumber
	case unicode.Is(unicode.White_Space, r):
		f |= cSpace
	}
	if unicode.IsPunct(r) || strings.ContainsRune("$+<=>^~|", r) {
		f |= cPunct
	}
	switch {
	case r == '\r' || r == '\n':
		f |= cNewline
	case '0' <= r && r <= '9':
		f |= cDigit
	case r == '/':
		f |= cSlash
	}
	return f
}

// at classifies the character at byte i of s[:end]: its class bits and
// length in bytes, or (0, 0) at or past end. An invalid byte is (0, 1).
func at(s string, i, end int) (uint16, int) {
	if i >= end {
		return 0, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:end])
	if r == utf8.RuneError && n == 1 {
		return 0, 1
	}
	return classOf(r), n
}

// isOther says whether class bits f (of a character that exists) are
// [^\s\p{L}\p{N}].
func isOther(f uint16) bool { return f&(cLetter|cNumber|cSpace) == 0 }

// runOf returns the end of the run of characters from i whose class has any
// of the bits in mask.
func runOf(s string, i, end int, mask uint16) int {
	for i < end {
		f, n := at(s, i, end)
		if f&mask == 0 {
			break
		}
		i += n
	}
	return i
}

// runOther returns the end of the run of [^\s\p{L}\p{N}] from i.
func runOther(s string, i, end int) int {
	for i < end {
		f, n := at(s, i, end)
		if !isOther(f) {
			break
		}
		i += n
	}
	return i
}

// punctuation matches ` ?[^\s\p{L}\p{N}]+` from i, then a run of the
// classes in trail; ok is false when there is no such character.
func punctuation(s string, i, end int, trail uint16) (int, bool) {
	j := i
	if s[i] == ' ' {
		if g, _ := at(s, i+1, end); isOther(g) && i+1 < end {
			j = i + 1
		}
	}
	if g, _ := at(s, j, end); isOther(g) {
		return runOf(s, runOther(s, j, end), end, trail), true
	}
	return 0, false
}

// numbers returns the end of up to max \p{N} characters from i.
func numbers(s string, i, end, max int) int {
	for k := 0; k < max && i < end; k++ {
		f, n := at(s, i, end)
		if f&cNumber == 0 {
			break
		}
		i += n
	}
	return i
}

// contraction returns the length of the letters of 's 't 're 've 'm 'll 'd
// at s[i:end] (i is just after the apostrophe), or 0. foldCase accepts the
// ASCII capitals too.
func contraction(s string, i, end int, foldCase bool) int {
	lower := func(k int) byte {
		if i+k >= end {
			return 0
		}
		c := s[i+k]
		if foldCase && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c
	}
	switch c := lower(0); c {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if lower(1) == 'e' {
			return 2
		}
	case 'l':
		if lower(1) == 'l' {
			return 2
		}
	}
	return 0
}

// spaces handles a whitespace character at i, the last alternatives of the
// regexes: \s*[\r\n]+ when newlines is set, then \s+(?!\S), then \s+.
func spaces(s string, i, end int, newlines bool) int {
	k, lastNL, prev := i, -1, i
	for k < end {
		f, n := at(s, k, end)
		if f&cSpace == 0 {
			break
		}
		if f&cNewline != 0 {
			lastNL = k + n
		}
		prev = k
		k += n
	}
	switch {
	case newlines && lastNL > 0:
		return lastNL // \s*[\r\n]+: up to the last newline of the run
	case k == end:
		return k // \s+(?!\S) at the end of the text
	case prev > i:
		return prev // \s+(?!\S): all but the last one, which goes with the next word
	}
	return k // \s+
}

// splitGPT2 is GPT-2's regex (also ByteLevel's use_regex and llama.cpp's
// gpt-2, starcoder and falcon):
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(s string, i, end int) int {
	if s[i] == '\'' {
		if k := contraction(s, i+1, end, false); k > 0 {
			return i + 1 + k
		}
	}
	j := i
	if s[i] == ' ' && i+1 < end {
		j = i + 1
	}
	f, _ := at(s, j, end)
	switch {
	case f&cLetter != 0:
		return runOf(s, j, end, cLetter)
	case f&cNumber != 0:
		return runOf(s, j, end, cNumber)
	case isOther(f) && j < end:
		return runOther(s, j, end)
	}
	if f0, _ := at(s, i, end); f0&cSpace != 0 {
		return spaces(s, i, end, false)
	}
	_, n := at(s, i, end)
	return i + n
}

// splitLlama3 is Llama 3's regex with groups of up to digits numbers (3), and
// Qwen2's with digits 1:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(s string, i, end, digits int) int {
	if s[i] == '\'' {
		if k := contraction(s, i+1, end, true); k > 0 {
			return i + 1 + k
		}
	}
	f, n := at(s, i, end)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if f&(cNewline|cLetter|cNumber) == 0 {
		if g, _ := at(s, i+n, end); g&cLetter != 0 {
			return runOf(s, i+n, end, cLetter)
		}
	}
	if f&cLetter != 0 {
		return runOf(s, i, end, cLetter)
	}
	if f&cNumber != 0 {
		return numbers(s, i, end, digits)
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	if k, ok := punctuation(s, i, end, cNewline); ok {
		return k
	}
	if f&cSpace != 0 {
		return spaces(s, i, end, true)
	}
	return i + n
}

// splitTekken is Mistral's tekken regex; with digits 3 and contractions set
// it is gpt-4o's (o200k) regex, which adds (?i:'s|'t|'re|'ve|'m|'ll|'d)?
// after both letter alternatives and takes \p{N}{1,3}:
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|
//	\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitTekken(s string, i, end, digits int, contractions bool) int {
	suffix := func(e int) int {
		if contractions && e < end && s[e] == '\'' {
			if k := contraction(s, e+1, end, true); k > 0 {
				return e + 1 + k
			}
		}
		return e
	}
	f, n := at(s, i, end)
	prefix := f&(cNewline|cLetter|cNumber) == 0 // [^\r\n\p{L}\p{N}]
	// The first alternative, with the prefix and then without it.
	if prefix {
		if e := upperLower(s, i+n, end); e > 0 {
			return suffix(e)
		}
	}
	if e := upperLower(s, i, end); e > 0 {
		return suffix(e)
	}
	// The second: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*.
	if prefix {
		if g, _ := at(s, i+n, end); g&cUpper != 0 {
			return suffix(runOf(s, runOf(s, i+n, end, cUpper), end, cLower))
		}
	}
	if f&cUpper != 0 {
		return suffix(runOf(s, runOf(s, i, end, cUpper), end, cLower))
	}
	if f&cNumber != 0 {
		return numbers(s, i, end, digits)
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
	if k, ok := punctuation(s, i, end, cNewline|cSlash); ok {
		return k
	}
	if f&cSpace != 0 {
		return spaces(s, i, end, true)
	}
	return i + n
}

// upperLower matches [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+
// at p, returning its end or -1. The two classes share Lm, Lo and M, so the
// greedy first part backs off to the last character that the second part
// can start on: the end of the first run when a lower-case letter follows
// it, or else the last shared character inside it.
func upperLower(s string, p, end int) int {
	q, lastShared := p, -1
	for q < end {
		f, n := at(s, q, end)
		if f&cUpper == 0 {
			break
		}
		if f&cLower != 0 {
			lastShared = q
		}
		q += n
	}
	if f, _ := at(s, q, end); f&cLower != 0 {
		return runOf(s, q, end, cLower)
	}
	if lastShared >= 0 {
		_, n := at(s, lastShared, end)
		return lastShared + n
	}
	return -1
}

// A preStage cuts each piece of text made by the stage before it. A regex
// stage (match != nil) covers its piece with matches; an isolating stage
// makes each match of a character class a piece, and each stretch between
// matches another, as Hugging Face's Split with behavior "Isolated" and
// llama.cpp's chain of regexes do.
type preStage struct {
	match func(s string, i, end int) int // the end of the match at i (> i)
	class uint16                         // isolating: the class matched
	kind  isolateKind
}

type isolateKind int

const (
	isolateRuns    isolateKind = iota // X+
	isolateEach                       // X
	isolateTriples                    // XXX (llama.cpp's [0-9][0-9][0-9])
)

// preTokenizer is a chain of stages.
type preTokenizer struct {
	name   string
	stages []preStage
}

var (
	stageGPT2   = preStage{match: splitGPT2}
	stageLlama3 = preStage{match: func(s string, i, end int) int { return splitLlama3(s, i, end, 3) }}
	stageQwen2  = preStage{match: func(s string, i, end int) int { return splitLlama3(s, i, end, 1) }}
	stageTekken = preStage{match: func(s string, i, end int) int { return splitTekken(s, i, end, 1, false) }}
	stageGPT4o  = preStage{match: func(s string, i, end int) int { return splitTekken(s, i, end, 3, true) }}
	// llama.cpp's extra regexes.
	stagePunct   = preStage{class: cPunct, kind: isolateRuns}    // [\p{P}\$\+<=>\^~\|]+
	stageNumbers = preStage{class: cNumber, kind: isolateRuns}   // \p{N}+
	stageNumber  = preStage{class: cNumber, kind: isolateEach}   // \p{N}
	stageDigits3 = preStage{class: cDigit, kind: isolateTriples} // [0-9][0-9][0-9]
)

// split appends the words of s, as [start, end) byte ranges, to words.
func (p *preTokenizer) split(s string, words [][2]int) [][2]int {
	if len(p.stages) == 1 && p.stages[0].match != nil {
		return p.stages[0].cut(s, 0, len(s), words)
	}
	pieces := [][2]int{{0, len(s)}}
	var next [][2]int
	for _, st := range p.stages {
		next = next[:0]
		for _, pc := range pieces {
			next = st.cut(s, pc[0], pc[1], next)
		}
		pieces, next = next, pieces
	}
	return append(words, pieces...)
}

// cut appends the pieces of s[start:end] that this stage makes.
func (st preStage) cut(s string, start, end int, out [][2]int) [][2]int {
	if st.match != nil {
		for i := start; i < end; {
			e := st.match(s, i, end)
			if e <= i { // cannot happen; never loop forever on a bug
				e = i + 1
			}
			out = append(out, [2]int{i, e})
			i = e
		}
		return out
	}
	gap := start
	emit := func(a, b int) {
		if gap < a {
			out = append(out, [2]int{gap, a})
		}
		out = append(out, [2]int{a, b})
		gap = b
	}
	for i := start; i < end; {
		f, n := at(s, i, end)
		if f&st.class == 0 {
			i += n
			continue
		}
		switch st.kind {
		case isolateRuns:
			e := runOf(s, i, end, st.class)
			emit(i, e)
			i = e
		case isolateEach:
			emit(i, i+n)
			i += n
		case isolateTriples:
			// The class is ASCII digits: one byte each.
			if i+3 <= end && isDigit(s[i+1]) && isDigit(s[i+2]) {
				emit(i, i+3)
				i += 3
			} else {
				i++
			}
		}
	}
	if gap < end {
		out = append(out, [2]int{gap, end})
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// preSpec is what a tokenizer.ggml.pre name means.
type preSpec struct {
	stages []preStage
	// ignoreMerges: a word that is itself a token is that token, whatever
	// the merges would make of it.
	ignoreMerges bool
	addBOS       bool // the default of tokenizer.ggml.add_bos_token
}

// preSpecs holds the tokenizer.ggml.pre names vkrun knows, with llama.cpp's
// meaning for each (src/llama-vocab.cpp): its regexes and flags. Names that
// llama.cpp gives the same regexes share an entry's stages.
var preSpecs = func() map[string]preSpec {
	m := map[string]preSpec{}
	add := func(spec preSpec, names ...string) {
		for _, n := range names {
			m[n] = spec
		}
	}
	llama3 := []preStage{stageLlama3}
	gpt2 := []preStage{stageGPT2}
	add(preSpec{stages: []preStage{stagePunct, stageGPT2, stageNumbers, stageDigits3}}, "default")
	add(preSpec{stages: llama3, ignoreMerges: true, addBOS: true},
		"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2")
	add(preSpec{stages: llama3}, "dbrx", "smaug-bpe", "chatglm-bpe", "glm4")
	add(preSpec{stages: []preStage{stageQwen2}}, "qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2")
	add(preSpec{stages: gpt2}, "gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de",
		"gigachat", "a.x-4.0", "mellum", "exaone4")
	add(preSpec{stages: []preStage{stageNumber, stageGPT2}}, "starcoder", "refact", "command-r", "smollm", "codeshell",
		"exaone", "minerva-7b")
	add(preSpec{stages: []preStage{stagePunct, stageGPT2, stageDigits3}}, "falcon")
	add(preSpec{stages: []preStage{stageTekken}, ignoreMerges: true, addBOS: true}, "tekken")
	add(preSpec{stages: []preStage{stageGPT4o}}, "gpt-4o", "llama4")
	return m
}()

// PreTokenizers lists the tokenizer.ggml.pre names vkrun supports.
func PreTokenizers() []string {
	names := make([]string, 0, len(preSpecs))
	for n := range preSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lookupPre returns the spec of a tokenizer.ggml.pre name; "" means
// "default", as in llama.cpp.
func lookupPre(name string) (preSpec, *preTokenizer, error) {
	if name == "" {
		name = "default"
	}
	spec, ok := preSpecs[name]
	if !ok {
		return preSpec{}, nil, fmt.Errorf("pre-tokenizer %q is not supported (known: %s)", name, strings.Join(PreTokenizers(), ", "))
	}
	return spec, &preTokenizer{name: name, stages: spec.stages}, nil
}

// hfSplitRegexes maps the Split regexes of tokenizer.json files to stages.
var hfSplitRegexes = map[string]preStage{
	// GPT-2 (also the ByteLevel pre-tokenizer's use_regex), and without the
	// final \s+ as llama.cpp writes it; the two split text alike.
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`: stageGPT2,
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`:     stageGPT2,
	// Llama 3, and llama.cpp's spelling of it.
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:                              stageLlama3,
	`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: stageLlama3,
	// Qwen2.
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: stageQwen2,
	// Tekken.
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`: stageTekken,
	// gpt-4o (o200k).
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`: stageGPT4o,
	// llama.cpp's extra regexes, in case a file spells them out.
	`[\p{P}\$\+<=>\^~\|]+`: stagePunct,
	`\p{N}+`:               stageNumbers,
	`\p{N}`:                stageNumber,
	`[0-9][0-9][0-9]`:      stageDigits3,
}
