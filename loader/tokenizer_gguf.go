package loader

import "fmt"

// tokenizerFromGGUF builds the tokenizer described by a GGUF file's
// tokenizer.ggml.* metadata. Only the "llama" (SentencePiece BPE) model is
// supported. Missing ids and flags take llama.cpp's defaults for that model:
// BOS 1, EOS 2, UNK 0, add_bos_token true.
func tokenizerFromGGUF(f *GGUFFile) (*Tokenizer, error) {
	model, ok := f.String("tokenizer.ggml.model")
	if !ok {
		model = ModelSentencePiece
	}
	if model != ModelSentencePiece {
		return nil, fmt.Errorf("tokenizer.ggml.model %q is not supported (want %q)", model, ModelSentencePiece)
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
	if f.Has("tokenizer.ggml.token_type") {
		if v.Types, ok = f.Int32s("tokenizer.ggml.token_type"); !ok {
			return nil, fmt.Errorf("tokenizer.ggml.token_type is not an array of int32")
		}
	}
	for _, k := range []struct {
		key string
		dst *int
	}{
		{"tokenizer.ggml.bos_token_id", &v.BOS},
		{"tokenizer.ggml.eos_token_id", &v.EOS},
		{"tokenizer.ggml.unknown_token_id", &v.UNK},
	} {
		if !f.Has(k.key) {
			continue
		}
		id, ok := f.Int(k.key)
		if !ok || id < -1 || id > maxVocab {
			return nil, fmt.Errorf("%s is not a token id", k.key)
		}
		*k.dst = int(id)
	}
	if f.Has("tokenizer.ggml.add_bos_token") {
		if v.AddBOS, ok = f.Bool("tokenizer.ggml.add_bos_token"); !ok {
			return nil, fmt.Errorf("tokenizer.ggml.add_bos_token is not a bool")
		}
	}
	return NewSentencePiece(v)
}
