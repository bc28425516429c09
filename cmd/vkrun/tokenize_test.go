package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// vocabOnlyGPT2 writes llama.cpp's vocab-only GPT-2 GGUF (metadata, no
// tensors) from the loader's test data to a temporary file.
func vocabOnlyGPT2(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../loader/testdata/tokenizer/ggml-vocab-gpt-2.gguf.gz")
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	data, err := io.ReadAll(zr)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "ggml-vocab-gpt-2.gguf")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func runTokenize(stdin string, args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = tokenize(args, strings.NewReader(stdin), &o, &e)
	return o.String(), e.String(), code
}

func TestTokenizeVocabOnlyGGUF(t *testing.T) {
	model := vocabOnlyGPT2(t)
	out, errOut, code := runTokenize("", "-m", model, "-p", "Hello world")
	require.Equal(t, 0, code, errOut)
	require.Empty(t, errOut)
	require.Equal(t, " 15496 -> \"Hello\"\n   995 -> \" world\"\n", out)

	// JSON; a piece that is part of a character comes as its bytes.
	out, errOut, code = runTokenize("", "--json", "-m", model, "-p", "é🦙")
	require.Equal(t, 0, code, errOut)
	var got struct {
		IDs    []int `json:"ids"`
		Pieces []any `json:"pieces"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Pieces, len(got.IDs))
	var joined []byte
	for _, p := range got.Pieces {
		switch p := p.(type) {
		case string:
			joined = append(joined, p...)
		case []any:
			for _, b := range p {
				joined = append(joined, byte(b.(float64)))
			}
		default:
			t.Fatalf("piece %v", p)
		}
	}
	require.Equal(t, "é🦙", string(joined))
	require.Contains(t, out, `"pieces":["é",[`, "é is one token, the emoji several partial ones")
}

// TestTokenizeInput: stdin and -f are byte for byte; --special and --no-bos
// do what they say.
func TestTokenizeInput(t *testing.T) {
	model := vocabOnlyGPT2(t)
	ids := func(stdin string, args ...string) []int {
		t.Helper()
		out, errOut, code := runTokenize(stdin, append([]string{"--json", "-m", model}, args...)...)
		require.Equal(t, 0, code, errOut)
		var got struct{ IDs []int }
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		return got.IDs
	}
	text := "  two spaces, a tab\tand a newline\n"
	fromP := ids("", "-p", text)
	require.Equal(t, fromP, ids(text), "stdin")
	file := filepath.Join(t.TempDir(), "in.txt")
	require.NoError(t, os.WriteFile(file, []byte(text), 0o644))
	require.Equal(t, fromP, ids("", "-f", file), "-f")
	require.Equal(t, []int{198}, ids("\n"), "a lone newline stays")
	require.Empty(t, ids(""), "empty input, and GPT-2 adds no BOS")

	eot := 50256 // <|endoftext|>, a control token
	require.NotContains(t, ids("", "-p", "a<|endoftext|>b"), eot)
	require.Equal(t, []int{64, eot, 65}, ids("", "--special", "-p", "a<|endoftext|>b"))
}

func TestTokenizeBOS(t *testing.T) {
	// A SentencePiece vocabulary that adds BOS: the tiny one of the loader's tests.
	model := "../../loader/testdata/tokenizer/hf-tiny-metaspace.json"
	out, errOut, code := runTokenize("", "-m", model, "-p", "ab")
	require.Equal(t, 0, code, errOut)
	require.True(t, strings.HasPrefix(out, "     1 -> \"<s>\"\n"), out)
	out, _, code = runTokenize("", "-m", model, "-p", "ab", "--no-bos")
	require.Equal(t, 0, code)
	require.NotContains(t, out, "<s>")
}

func TestTokenizeErrors(t *testing.T) {
	model := vocabOnlyGPT2(t)
	junk := filepath.Join(t.TempDir(), "junk.gguf")
	require.NoError(t, os.WriteFile(junk, []byte("GGUF\x03\x00\x00\x00"), 0o644))
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-p", "x"}, 2, "-m FILE is required"},
		{[]string{"-m", model, "-p", "x", "-f", "y"}, 2, "only one of -p and -f"},
		{[]string{"-m", model, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-m", model, "-f", "/no/such/file"}, 1, "no such file"},
		{[]string{"-m", "/no/such/model.gguf", "-p", "x"}, 1, "no such file"},
		{[]string{"-m", junk, "-p", "x"}, 1, "junk.gguf"},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
	}
	for _, tc := range tests {
		out, errOut, code := runTokenize("", tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errOut)
		require.Empty(t, out)
		require.Contains(t, errOut, tc.want, tc.args)
		require.NotContains(t, errOut, "goroutine")
	}
	_, _, code := runTokenize("", "-h")
	require.Equal(t, 0, code)
}
