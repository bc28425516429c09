//go:build ignore

// gen-sinks-text writes the long text that the attention-sink perplexity
// test scores (tests/testdata/sinks/stories.json): stories260K's own
// stories, each sampled from BOS at temperature 1 with its own seed and
// joined with BOS between them, as llama2.c's training data joins them,
// until the text holds the wanted number of tokens.
//
//	go run ./scripts/gen-sinks-text/main.go OUT.json [TOKENS]
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/modeldir"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/gen-sinks-text/main.go OUT.json [TOKENS]")
		os.Exit(2)
	}
	want := 4096
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "gen-sinks-text: %q is not a token count\n", os.Args[2])
			os.Exit(2)
		}
		want = n
	}
	if err := write(os.Args[1], want); err != nil {
		fmt.Fprintln(os.Stderr, "gen-sinks-text:", err)
		os.Exit(1)
	}
}

func write(out string, want int) error {
	path := modeldir.Stories260K()
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	ctx := context.Background()
	m, err := vkrun.Load(ctx, path)
	if err != nil {
		return err
	}
	defer m.Close()
	tok := m.Tokenizer()
	ids := []int{}
	var seeds []uint64
	for seed := uint64(1); len(ids) < want; seed++ {
		s, err := m.NewSession()
		if err != nil {
			return err
		}
		story := []int{tok.BOS()}
		for t, err := range s.Generate(ctx, "", vkrun.WithTemperature(1), vkrun.WithTopK(0), vkrun.WithTopP(1), vkrun.WithMinP(0),
			vkrun.WithSeed(seed), vkrun.WithMaxTokens(400)) {
			if err != nil {
				s.Close()
				return err
			}
			story = append(story, t.ID)
		}
		s.Close()
		ids = append(ids, story...)
		seeds = append(seeds, seed)
	}
	ids = ids[:want]
	doc := struct {
		Model  string   `json:"model"`
		SHA256 string   `json:"model_sha256"`
		Rule   string   `json:"rule"`
		Seeds  []uint64 `json:"seeds"`
		IDs    []int    `json:"ids"`
		Text   string   `json:"text"`
	}{filepath.Base(path), hex.EncodeToString(sum[:]),
		"stories sampled from BOS (temperature 1, no top-k/top-p/min-p, at most 400 tokens, seeds 1…), joined with BOS, cut to the length",
		seeds, ids, tok.Decode(ids)}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}
