package loader

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// tokenizerFromGGUF builds the tokenizer described by a GGUF file's
// tokenizer.ggml.* metadata: the "llama" (SentencePiece BPE) model or the
// "gpt2" (byte-level BPE) one. Missing ids and flags take llama.cpp's
// defaults for "llama": BOS 1, EOS 2, UNK 0, add_bos_token true; see
// bpeFromGGUF for "gpt2".
func tokenizerFromGGUF(f *GGUFFile) (*Tokenizer, error) {
	model, ok := f.String("tokenizer.ggml.model")
	if !ok {
		if f.Has("tokenizer.ggml.model") {
			return nil, errors.New("tokenizer.ggml.model is not a string")
		}
		model = ModelSentencePiece
	}
	switch model {
	case ModelSentencePiece:
	case ModelByteLevel:
		return bpeFromGGUF(f)
	default:
		return nil, fmt.Errorf("tokenizer.ggml.model %q is not supported (want %q or %q)", model, ModelSentencePiece, ModelByteLevel)
	}
	v := Vocab{BOS: 1, EOS: 2, UNK: 0, AddBOS: true}
	if v.Tokens, ok = f.Strings("tokenizer.ggml.tokens"); !ok {
		return nil, fmt.Errorf("tokenizer.ggml.tokens is missing or not an array of strings")
	}
	if f.Has("tokenizer.ggml.scores") {
		if v.Scores, ok = f.Float32s("tokenizer.ggml.scores"); !ok {
			return nil, fmt.Errorf("tokenizer.ggml.scores is not an array of float32")
		}
	}
	var err error
	if v.Types, err = ggufTokenTypes(f); err != nil {
		return nil, err
	}
	if err := ggufIDs(f, map[string]*int{
		"tokenizer.ggml.bos_token_id":     &v.BOS,
		"tokenizer.ggml.eos_token_id":     &v.EOS,
		"tokenizer.ggml.unknown_token_id": &v.UNK,
	}); err != nil {
		return nil, err
	}
	if b, err := ggufBool(f, "tokenizer.ggml.add_bos_token"); err != nil {
		return nil, err
	} else if b != nil {
		v.AddBOS = *b
	}
	if b, err := ggufBool(f, "tokenizer.ggml.add_eos_token"); err != nil {
		return nil, err
	} else if b != nil {
		v.AddEOS = *b
	}
	if b, err := ggufBool(f, "tokenizer.ggml.add_space_prefix"); err != nil {
		return nil, err
	} else if b != nil {
		v.NoSpacePrefix = !*b
	}
	return NewSentencePiece(v)
}

// bpeFromGGUF reads a "gpt2" vocabulary: tokens, token_type, merges (all
// required but the types), pre (absent means "default"), the BOS and EOS ids
// (absent means none; llama.cpp would use id 11), and add_bos_token and
// add_eos_token, which override the pre-tokenizer's defaults.
func bpeFromGGUF(f *GGUFFile) (*Tokenizer, error) {
	v := BPEVocab{BOS: -1, EOS: -1}
	var ok bool
	if v.Tokens, ok = f.Strings("tokenizer.ggml.tokens"); !ok {
		return nil, errors.New("tokenizer.ggml.tokens is missing or not an array of strings")
	}
	if v.Merges, ok = f.Strings("tokenizer.ggml.merges"); !ok {
		return nil, errors.New("tokenizer.ggml.merges is missing or not an array of strings")
	}
	if f.Has("tokenizer.ggml.pre") {
		if v.Pre, ok = f.String("tokenizer.ggml.pre"); !ok {
			return nil, errors.New("tokenizer.ggml.pre is not a string")
		}
	}
	var err error
	if v.Types, err = ggufTokenTypes(f); err != nil {
		return nil, err
	}
	if err := ggufIDs(f, map[string]*int{
		"tokenizer.ggml.bos_token_id": &v.BOS,
		"tokenizer.ggml.eos_token_id": &v.EOS,
	}); err != nil {
		return nil, err
	}
	if v.AddBOS, err = ggufBool(f, "tokenizer.ggml.add_bos_token"); err != nil {
		return nil, err
	}
	if v.AddEOS, err = ggufBool(f, "tokenizer.ggml.add_eos_token"); err != nil {
		return nil, err
	}
	return NewByteLevelBPE(v)
}

func ggufTokenTypes(f *GGUFFile) ([]int32, error) {
	if !f.Has("tokenizer.ggml.token_type") {
		return nil, nil
	}
	types, ok := f.Int32s("tokenizer.ggml.token_type")
	if !ok {
		return nil, errors.New("tokenizer.ggml.token_type is not an array of int32")
	}
	return types, nil
}

// ggufIDs reads the token-id keys that are present.
func ggufIDs(f *GGUFFile, keys map[string]*int) error {
	for key, dst := range keys {
		if !f.Has(key) {
			continue
		}
		id, ok := f.Int(key)
		if !ok || id < -1 || id > maxVocab {
			return fmt.Errorf("%s is not a token id", key)
		}
		*dst = int(id)
	}
	return nil
}

// ggufBool reads an optional bool key: nil when absent.
func ggufBool(f *GGUFFile, key string) (*bool, error) {
	if !f.Has(key) {
		return nil, nil
	}
	b, ok := f.Bool(key)
	if !ok {
		return nil, fmt.Errorf("%s is not a bool", key)
	}
	return &b, nil
}

// LoadTokenizer reads only a model's tokenizer: from a GGUF file's metadata
// (tensors are not needed, so the vocab-only files of llama.cpp's tokenizer
// tests work), from a tokenizer.json, or from a directory holding one (a
// Hugging Face checkpoint).
func LoadTokenizer(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if st.IsDir() {
		return LoadHFTokenizer(filepath.Join(path, "tokenizer.json"))
	}
	head, err := fileHead(path, 512)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if !strings.HasPrefix(head, "GGUF") {
		if !strings.HasPrefix(strings.TrimLeft(strings.TrimPrefix(head, "\ufeff"), " \t\r\n"), "{") {
			return nil, fmt.Errorf("loader: %s is neither a GGUF file nor a tokenizer.json (nor a checkpoint directory)", path)
		}
		return LoadHFTokenizer(path)
	}
	f, err := OpenGGUF(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !f.Has("tokenizer.ggml.tokens") {
		return nil, fmt.Errorf("loader: %s: no tokenizer (tokenizer.ggml.tokens is missing)", path)
	}
	tok, err := tokenizerFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("loader: %s: %w: %w", path, ErrTokenizer, err)
	}
	return tok, nil
}

// fileHead is the file's first n bytes (fewer for a shorter file).
func fileHead(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(b[:k]), nil
}
