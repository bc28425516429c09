package testmodel

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The byte-level BPE vocabularies of loader/testdata/tokenizer
// (SOURCES-bpe.md there says where each comes from). A bpe-<name>.vocab.gz
// holds, after gzip:
//
//	bpevocab 1
//	{JSON header: BPEVocabHeader}
//	one line per token (normal tokens in GPT-2's byte-to-unicode spelling)
//	one line per merge, "d k": the merge makes token r = r_prev + d (r_prev
//	starts at 0), and its left part is the first k characters of token r
//
// A tiktoken vocabulary (header "ranks": true) has no merge lines: its
// merges come from the ranks, as the converters behind Hugging Face's and
// llama.cpp's files make them.

// GGUF's tokenizer.ggml.token_type values that the vocabularies use.
const (
	TypeNormal      int32 = 1
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
)

// BPEVocabHeader is a vocabulary file's JSON header.
type BPEVocabHeader struct {
	Source string `json:"source"` // where the vocabulary comes from (an npm package)
	Tokens int    `json:"tokens"` // token lines
	Merges int    `json:"merges"` // merge lines
	// Ranks: a tiktoken vocabulary, normal tokens in rank order and no
	// merge lines.
	Ranks  bool `json:"ranks"`
	Normal int  `json:"normal"` // the first Normal tokens are the BPE vocabulary proper
	// Tokens from ControlFrom on (when > 0), and below ControlLess, are
	// control tokens, and so are those in Control.
	ControlFrom int     `json:"control_from"`
	Control     []int   `json:"control"`
	ControlLess int     `json:"control_below"`
	UserDefined []int   `json:"user_defined"`
	Unused      []int   `json:"unused"`
	BOS         int     `json:"bos"`     // −1: none
	EOS         int     `json:"eos"`     // −1: none
	Pattern     *string `json:"pattern"` // the pre-tokenizer regex, when the source gives one
}

// BPEVocab is a decoded vocabulary: the arrays GGUF's tokenizer.ggml.tokens,
// token_type and merges hold.
type BPEVocab struct {
	Header BPEVocabHeader
	Tokens []string // (Header.Tokens,)
	Merges []string // "left right", in rank order
	Types  []int32  // (Header.Tokens,) TypeNormal, TypeControl, …
}

// BPEVocabPath is the path of loader/testdata/tokenizer/bpe-<name>.vocab.gz
// in this module, found from the working directory upwards (a test's
// working directory is its package's).
func BPEVocabPath(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "loader", "testdata", "tokenizer", "bpe-"+name+".vocab.gz"), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("testmodel: no go.mod above the working directory")
		}
		dir = up
	}
}

// LoadBPEVocab reads the committed vocabulary bpe-<name>.vocab.gz
// ("llama3", "qwen3", "tekken", "o200k").
func LoadBPEVocab(name string) (*BPEVocab, error) {
	path, err := BPEVocabPath(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v, err := ReadBPEVocab(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// ReadBPEVocab decodes a vocabulary file's text (after gzip).
func ReadBPEVocab(r io.Reader) (*BPEVocab, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	line := func() (string, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return "", fmt.Errorf("bpe vocab line %d: %w", n+1, err)
			}
			return "", fmt.Errorf("bpe vocab: truncated after line %d", n)
		}
		n++
		return sc.Text(), nil
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("bpe vocab line %d: %s", n, fmt.Sprintf(format, a...))
	}

	s, err := line()
	if err != nil {
		return nil, err
	}
	if s != "bpevocab 1" {
		return nil, fail("got %.40q, want the magic line \"bpevocab 1\"", s)
	}
	if s, err = line(); err != nil {
		return nil, err
	}
	v := &BPEVocab{}
	h := &v.Header
	if err := json.Unmarshal([]byte(s), h); err != nil {
		return nil, fail("header: %v", err)
	}
	const maxCount = 1 << 24
	switch {
	case h.Tokens <= 0 || h.Tokens > maxCount:
		return nil, fail("header: %d tokens", h.Tokens)
	case h.Merges < 0 || h.Merges > maxCount:
		return nil, fail("header: %d merges", h.Merges)
	case h.Ranks && h.Merges != 0:
		return nil, fail("header: a ranks vocabulary with %d merge lines", h.Merges)
	}

	v.Tokens = make([]string, h.Tokens)
	for i := range v.Tokens {
		if v.Tokens[i], err = line(); err != nil {
			return nil, err
		}
	}
	if err := v.setTypes(); err != nil {
		return nil, fmt.Errorf("bpe vocab header: %w", err)
	}

	v.Merges = make([]string, 0, h.Merges)
	id := 0
	for range h.Merges {
		if s, err = line(); err != nil {
			return nil, err
		}
		ds, ks, ok := strings.Cut(s, " ")
		d, err1 := strconv.Atoi(ds)
		k, err2 := strconv.Atoi(ks)
		if !ok || err1 != nil || err2 != nil {
			return nil, fail("merge %.40q is not \"d k\"", s)
		}
		if d < 0 || id+d >= len(v.Tokens) {
			return nil, fail("merge makes token %d of %d", id+d, len(v.Tokens))
		}
		id += d
		tok := []rune(v.Tokens[id])
		if k <= 0 || k >= len(tok) {
			return nil, fail("merge splits token %d (%d characters) after %d", id, len(tok), k)
		}
		v.Merges = append(v.Merges, string(tok[:k])+" "+string(tok[k:]))
	}
	if sc.Scan() {
		return nil, fmt.Errorf("bpe vocab line %d: trailing text after the %d merges", n+1, h.Merges)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bpe vocab line %d: %w", n+1, err)
	}
	if h.Ranks {
		v.Merges = mergesFromRanks(v.Tokens, v.Types)
	}
	return v, nil
}

// setTypes fills Types from the header.
func (v *BPEVocab) setTypes() error {
	h := &v.Header
	v.Types = make([]int32, len(v.Tokens))
	for i := range v.Types {
		v.Types[i] = TypeNormal
		if h.ControlFrom > 0 && i >= h.ControlFrom || i < h.ControlLess {
			v.Types[i] = TypeControl
		}
	}
	for _, list := range []struct {
		name string
		ids  []int
		typ  int32
	}{{"control", h.Control, TypeControl}, {"user_defined", h.UserDefined, TypeUserDefined}, {"unused", h.Unused, TypeUnused}} {
		for _, id := range list.ids {
			if id < 0 || id >= len(v.Types) {
				return fmt.Errorf("%s id %d outside the %d tokens", list.name, id, len(v.Types))
			}
			v.Types[id] = list.typ
		}
	}
	for _, id := range []int{h.BOS, h.EOS} {
		if id < -1 || id >= len(v.Types) {
			return fmt.Errorf("bos/eos id %d outside the %d tokens", id, len(v.Types))
		}
	}
	return nil
}

// mergesFromRanks turns a tiktoken vocabulary (normal tokens in rank order)
// into a merge list: every split of a token into two tokens is a merge,
// ordered by the rank of the token it makes, then by the ranks of its parts.
func mergesFromRanks(tokens []string, types []int32) []string {
	rank := make(map[string]int, len(tokens))
	for i, s := range tokens {
		if types[i] == TypeNormal {
			rank[s] = i
		}
	}
	type merge struct{ a, b, r int }
	var ms []merge
	for r, s := range tokens {
		if types[r] != TypeNormal {
			continue
		}
		var local []merge
		for k := range s {
			if k == 0 {
				continue
			}
			a, okA := rank[s[:k]]
			b, okB := rank[s[k:]]
			if okA && okB {
				local = append(local, merge{a, b, r})
			}
		}
		sort.Slice(local, func(i, j int) bool {
			if local[i].a != local[j].a {
				return local[i].a < local[j].a
			}
			return local[i].b < local[j].b
		})
		ms = append(ms, local...)
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = tokens[m.a] + " " + tokens[m.b]
	}
	return out
}

// spellingByte maps GPT-2's byte-to-unicode spelling back to bytes: the
// printable bytes '!'…'~', '¡'…'¬' and '®'…'ÿ' stand for themselves, and the
// other 68 bytes, in order, are spelled U+0100 onwards.
var spellingByte = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	next := rune(256)
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			m[rune(b)] = byte(b)
		} else {
			m[next] = byte(b)
			next++
		}
	}
	return m
}()

// Decode is the bytes that ids stand for, read from the vocabulary alone:
// a normal token is its spelling's bytes, a user-defined one its text as
// written, and control and unused tokens (BOS) are nothing. It does not
// check that the bytes are UTF-8.
func (v *BPEVocab) Decode(ids []int) ([]byte, error) {
	var out []byte
	for _, id := range ids {
		if id < 0 || id >= len(v.Tokens) {
			return nil, fmt.Errorf("token id %d outside the %d tokens", id, len(v.Tokens))
		}
		switch v.Types[id] {
		case TypeUserDefined:
			out = append(out, v.Tokens[id]...)
		case TypeNormal:
			for _, c := range v.Tokens[id] {
				b, ok := spellingByte[c]
				if !ok {
					return nil, fmt.Errorf("token %d %q: %q is not in the byte-level spelling", id, v.Tokens[id], c)
				}
				out = append(out, b)
			}
		}
	}
	return out, nil
}
