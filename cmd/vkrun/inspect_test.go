package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/loader"
)

// -update rewrites golden files; registered only if another test file in
// this package has not already defined it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// checkGolden compares got with testdata/name, or rewrites it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updatingGolden() {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	require.Equal(t, string(want), string(got))
}

func runInspect(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = cmdInspect(args, &o, &e)
	return o.String(), e.String(), code
}

func TestInspectStories260K(t *testing.T) {
	path := testmodel.Stories260K(t)
	for _, c := range []struct {
		golden string
		args   []string
	}{
		{"inspect-stories260K.txt", []string{path}},
		{"inspect-stories260K.json", []string{"--json", path}},
	} {
		t.Run(c.golden, func(t *testing.T) {
			out, errOut, code := runInspect(c.args...)
			require.Equal(t, 0, code, errOut)
			require.Empty(t, errOut)
			// The path differs between machines; the golden file has the base name.
			out = strings.ReplaceAll(out, path, "stories260K.gguf")
			checkGolden(t, c.golden, []byte(out))
		})
	}
	out, _, _ := runInspect("--json", path)
	var r inspectReport
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.NotNil(t, r.Config)
	assert.Equal(t, 64, r.Config.Dim)
	assert.Equal(t, 5, r.Config.Layers)
	assert.Equal(t, 8, r.Config.Heads)
	assert.Equal(t, 4, r.Config.KVHeads)
	assert.Equal(t, 172, r.Config.FFNDim)
	assert.Equal(t, 512, r.Config.Vocab)
	assert.Len(t, r.Tensors, 48)
	require.NotNil(t, r.Tokenizer)
	assert.Equal(t, 512, r.Tokenizer.VocabSize)
	assert.Equal(t, "<s>", r.Tokenizer.BOSPiece)
}

func TestInspectErrors(t *testing.T) {
	dir := t.TempDir()
	_, errOut, code := runInspect()
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "usage: vkrun inspect")
	_, _, code = runInspect("--bogus", "x")
	assert.Equal(t, 2, code)
	_, _, code = runInspect("a", "b")
	assert.Equal(t, 2, code)
	_, _, code = runInspect("-h")
	assert.Equal(t, 0, code)

	out, errOut, code := runInspect(filepath.Join(dir, "missing.gguf"))
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Regexp(t, `^vkrun inspect: .*missing.gguf.*no such file or directory\n$`, errOut)

	junk := filepath.Join(dir, "junk.gguf")
	require.NoError(t, os.WriteFile(junk, []byte("not a model at all"), 0o644))
	_, errOut, code = runInspect(junk)
	assert.Equal(t, 1, code)
	assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	assert.Contains(t, errOut, "not a GGUF file")
}

// A readable GGUF that is not a runnable model is still listed, with the
// reason on stderr and status 1.
func TestInspectNotAModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.gguf")
	w := loader.NewGGUFWriter()
	require.NoError(t, w.SetValue("general.architecture", "gpt2"))
	require.NoError(t, w.SetValue("weird.nan", float32(0)/zero32))
	require.NoError(t, w.AddTensor("w", loader.Q8_0, []uint64{32, 2}, make([]float32, 64)))
	require.NoError(t, w.WriteFile(path))

	out, errOut, code := runInspect(path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `unsupported architecture "gpt2"`)
	assert.Contains(t, out, "architecture: gpt2")
	assert.Contains(t, out, "  w     Q8_0  32×2   68 B")

	out, _, code = runInspect("--json", path)
	assert.Equal(t, 1, code)
	var r inspectReport
	require.NoError(t, json.Unmarshal([]byte(out), &r), "NaN metadata must not break the JSON")
	assert.Contains(t, r.Error, "gpt2")
	assert.Nil(t, r.Config)
	assert.Len(t, r.Tensors, 1)
}

var zero32 float32

// A model whose tokenizer metadata is broken still prints, with a note.
func TestInspectBrokenTokenizer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.gguf")
	cfg := loader.Config{Dim: 32, NumLayers: 1, NumHeads: 2, FFNDim: 32, VocabSize: 16}
	// Two tokens: the EOS id 2 that WriteSynthetic declares is out of range.
	toks := []string{"<unk>", "<s>"}
	err := loader.WriteSynthetic(path, cfg, loader.F32, 1, toks)
	require.NoError(t, err)
	out, errOut, code := runInspect(path)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "tokenizer:\n  not usable: ")
	assert.Contains(t, out, "vocab        2")

	out, _, code = runInspect("--json", path)
	assert.Equal(t, 0, code)
	var r inspectReport
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Nil(t, r.Tokenizer)
	assert.NotEmpty(t, r.TokenizerError)
}

func TestFmtSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 1 << 20: "1.0 MiB", 3 << 30: "3.0 GiB", 1 << 62: "4096.0 PiB"} {
		assert.Equal(t, want, fmtSize(n))
	}
}

// inspect prints a model's per-layer layout and the KV cache it implies:
// Gemma 3's pattern of 5 local layers to 1 global, rings of W and a linear
// cache of the context, and --window overriding the local layers only.
func TestInspectLayerLayout(t *testing.T) {
	cfg := loader.Config{Arch: "gemma3", Dim: 64, NumLayers: 7, NumHeads: 2, NumKVHeads: 1, HeadDim: 32, FFNDim: 64,
		VocabSize: 64, Window: 5, RopeTheta: 1e6}
	path := filepath.Join(t.TempDir(), "gemma3.gguf")
	require.NoError(t, loader.WriteSynthetic(path, cfg, loader.F32, 7, nil))
	kvDim := uint64(cfg.NumKVHeads * cfg.HeadDim)
	for _, tc := range []struct {
		args   []string
		window int
		ctx    int
	}{
		{[]string{"-c", "64"}, 5, 64},
		{[]string{"-c", "128", "--window", "9", "--kv", "f32"}, 9, 128},
	} {
		out, errOut, code := runInspect(append(append([]string{"--json"}, tc.args...), path)...)
		require.Equal(t, 0, code, errOut)
		var r inspectReport
		require.NoError(t, json.Unmarshal([]byte(out), &r))
		require.NotNil(t, r.Config)
		c := r.Config
		require.Len(t, c.LayerLayout, cfg.NumLayers)
		elem := uint64(2)
		if slices.Contains(tc.args, "f32") {
			elem = 4
		}
		var want uint64
		for l, ly := range c.LayerLayout {
			if l%6 == 5 {
				assert.Equal(t, inspectLayer{Window: 0, Slots: tc.ctx, RopeTheta: 1e6, RopeScale: 1}, ly, "layer %d: global", l)
			} else {
				assert.Equal(t, inspectLayer{Window: tc.window, Slots: tc.window, RopeTheta: 10000, RopeScale: 1}, ly, "layer %d: local", l)
			}
			want += uint64(ly.Slots) * kvDim * 2 * elem
		}
		assert.Equal(t, uint64(6*tc.window+tc.ctx)*kvDim*2*elem, want)
		assert.Equal(t, want, c.KVBytes)
		assert.Equal(t, tc.ctx, c.KVContext)
		assert.True(t, c.QKNorm && c.PostNorms)
		assert.Equal(t, "half", c.Rope)
		assert.Equal(t, "gelu-tanh", c.Act)

		text, _, code := runInspect(append(tc.args, path)...)
		require.Equal(t, 0, code)
		assert.Regexp(t, fmt.Sprintf(`\n  layers 0-4, 6 +local W=%d, ring of %d, rope 10000\n`, tc.window, tc.window), text)
		assert.Regexp(t, fmt.Sprintf(`\n  layer 5 +global, linear cache of %d, rope 1e\+06\n`, tc.ctx), text)
		assert.Contains(t, text, fmt.Sprintf("kv cache: %d bytes", want))
	}
	_, errOut, code := runInspect("-c", "-1", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-c -1")
}
