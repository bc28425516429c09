package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
)

func runCLI(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// A bad --layout is a flag error (status 2, one line) in every command that
// loads a model, before anything is loaded.
func TestLayoutFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run", "-m", "nosuch.gguf", "-p", "hi", "--layout", "fast"},
		{"run", "--layout", "GPU"},
		{"run", "--layout="},
		{"chat", "-m", "nosuch.gguf", "--layout", "fast"},
		{"bench", "-m", "nosuch.gguf", "--layout", "fast"},
		{"bench", "--synthetic", "tiny:q4_k_m", "--layout", "x86"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, out)
			assert.Regexp(t, `^vkrun \w+: --layout must be auto, gpu or cpu, not "[^"]*"\n$`, errOut)
		})
	}
}

// runReport is the part of `vkrun run --json` and `vkrun bench --json`
// these tests read.
type runReport struct {
	WeightBytes uint64       `json:"weight_bytes"`
	KVBytes     uint64       `json:"kv_bytes"`
	Layout      string       `json:"layout"`
	Kernels     []kernelJSON `json:"kernels"`
}

func layoutOf(t *testing.T, name string) shaders.Layout {
	t.Helper()
	switch name {
	case "gpu":
		return shaders.GPULayout
	case "cpu":
		return shaders.CPULayout
	}
	t.Fatalf("layout %q is neither gpu nor cpu", name)
	return 0
}

// hasPick reports whether the report records the table's op kernel for
// weight type dt in its layout.
func hasPick(t *testing.T, r runReport, op shaders.Op, dt loader.DType) bool {
	t.Helper()
	k, ok := shaders.WeightKernel(op, dt, layoutOf(t, r.Layout))
	require.True(t, ok, "%s has no %s kernel", dt, op)
	return slices.ContainsFunc(r.Kernels, func(p kernelJSON) bool {
		return p.Op == op.String() && p.Type == dt.String() && (p.Kernel == k.Name || p.Table == k.Name)
	})
}

// run --json reports the weights' and the KV cache's device bytes, the
// kernel layout and the kernels it picked; --layout forces the layout.
func TestRunJSONMemoryAndKernels(t *testing.T) {
	needVulkan(t)
	path := testmodel.Stories260K(t)
	m, err := vkrun.Load(context.Background(), path)
	require.NoError(t, err)
	weights, cfg, window := m.WeightBytes(), m.Config, m.Context() // full attention: every layer holds the context
	auto := m.Layout()
	require.NoError(t, m.Close())
	require.NotZero(t, weights)

	for _, c := range []struct{ layout, want string }{{"auto", auto}, {"gpu", "gpu"}, {"cpu", "cpu"}} {
		t.Run(c.layout, func(t *testing.T) {
			out, errOut, code := runCLI("run", "-m", path, "--prompt-tokens", "1,403,407", "--temp", "0", "-n", "3",
				"--json", "--layout", c.layout)
			if code != 0 && c.layout == "cpu" && strings.Contains(errOut, "needs subgroup arithmetic") {
				t.Skip(errOut)
			}
			require.Equal(t, 0, code, errOut)
			var r runReport
			require.NoError(t, json.Unmarshal([]byte(out), &r))
			assert.Equal(t, weights, r.WeightBytes, "weight_bytes is what the model reports")
			kvDim := cfg.NumKVHeads * cfg.HeadDim
			assert.Equal(t, uint64(2*cfg.NumLayers*window*kvDim*2), r.KVBytes, "kv_bytes: 2·layers·W·kvDim·sizeof(f16)")
			assert.Equal(t, c.want, r.Layout)
			assert.True(t, hasPick(t, r, shaders.OpMatMul1, loader.F32), "kernels %+v lack the F32 decode matmul", r.Kernels)
			assert.True(t, hasPick(t, r, shaders.OpMatMul, loader.F32), "kernels %+v lack the F32 prefill matmul", r.Kernels)
			assert.True(t, hasPick(t, r, shaders.OpEmbed, loader.F32), "kernels %+v lack the F32 embedding", r.Kernels)
			for _, k := range r.Kernels {
				assert.NotEmpty(t, k.Op)
				assert.NotEmpty(t, k.Kernel)
			}
		})
	}

	// With --kv f32 the cache doubles.
	out, errOut, code := runCLI("run", "-m", path, "--prompt-tokens", "1", "--temp", "0", "-n", "1", "--json", "--kv", "f32")
	require.Equal(t, 0, code, errOut)
	var r runReport
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Equal(t, uint64(2*cfg.NumLayers*window*cfg.NumKVHeads*cfg.HeadDim*4), r.KVBytes)
}

// bench --synthetic takes a llama.cpp mix: a Q4_K_M model runs Q4_K and,
// for output.weight and some attn_v and ffn_down, Q6_K.
func TestBenchSyntheticMix(t *testing.T) {
	needVulkan(t)
	// -p 0: decode only, so that lavapipe compiles only the one-token kernels.
	out, errOut, code := runCLI("bench", "--synthetic", "tiny:q4_k_m", "-p", "0", "-n", "2", "-r", "1", "--json")
	require.Equal(t, 0, code, errOut)
	var r struct {
		runReport
		Model   string `json:"model"`
		Results []struct {
			Test string `json:"test"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Equal(t, "tiny:q4_k_m", r.Model)
	require.Len(t, r.Results, 1)
	assert.Equal(t, "tg2", r.Results[0].Test)
	assert.NotZero(t, r.WeightBytes)
	c := shapes["tiny"]
	assert.Equal(t, uint64(2*c.NumLayers*c.Window*c.NumKVHeads*(c.Dim/c.NumHeads)*2), r.KVBytes)
	assert.True(t, hasPick(t, r.runReport, shaders.OpMatMul1, loader.Q4_K), "kernels %+v lack Q4_K", r.Kernels)
	assert.True(t, hasPick(t, r.runReport, shaders.OpMatMul1, loader.Q6_K), "kernels %+v lack Q6_K", r.Kernels)
	assert.True(t, hasPick(t, r.runReport, shaders.OpEmbed, loader.Q4_K), "kernels %+v lack the Q4_K embedding", r.Kernels)
}

// Every weight type with kernels and every llama.cpp mix is a QUANT of
// --synthetic, each with its own cached file name.
func TestParseSyntheticQuants(t *testing.T) {
	tags := map[string]string{}
	check := func(quant string) synthQuant {
		t.Helper()
		cfg, q, name, err := parseSynthetic("tiny:" + quant)
		require.NoError(t, err, quant)
		assert.Equal(t, "tiny:"+strings.ToLower(quant), name)
		assert.Equal(t, 256, cfg.Dim)
		tag := q.fileTag()
		if prev, dup := tags[tag]; dup {
			t.Errorf("%s and %s share the file tag %s", prev, quant, tag)
		}
		tags[tag] = quant
		return q
	}
	for _, dt := range shaders.WeightTypes {
		q := check(strings.ToLower(dt.String()))
		assert.Equal(t, synthQuant{dtype: dt}, q, "a type's name is that type")
		assert.Contains(t, q.fileTag(), dt.String())
	}
	for _, mix := range loader.QuantMixes() {
		name := strings.ToLower(string(mix))
		q, err := parseQuant(name)
		require.NoError(t, err)
		if q.mix == "" { // named like a type, which wins: the mix is mix:NAME
			q = check("mix:" + name)
		} else {
			q = check(name)
		}
		assert.Equal(t, mix, q.mix)
		assert.Contains(t, q.fileTag(), string(mix))
	}
	q, err := parseQuant("Q4_K_M")
	require.NoError(t, err)
	assert.Equal(t, synthQuant{mix: "Q4_K_M"}, q, "names match case-insensitively")

	_, _, _, err = parseSynthetic("tiny:q3")
	require.Error(t, err)
	for _, want := range []string{`"q3"`, "f32", "bf16", "iq4_xs", "q6_k", "q3_k_m", "q4_k_m", "q5_k_s", "mix:NAME"} {
		assert.Contains(t, err.Error(), want)
	}
	_, _, code := runCLI("bench", "--synthetic", "tiny:q3")
	assert.Equal(t, 2, code)
}

// inspect names each matrix's decode kernels in both layouts, by its type:
// a Q4_K_M file shows Q4_K's and Q6_K's.
func TestInspectMixKernels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q4_k_m.gguf")
	cfg := loader.Config{Dim: 256, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, FFNDim: 512, VocabSize: 256}
	require.NoError(t, loader.WriteSyntheticMix(path, cfg, "Q4_K_M", 1, nil))

	out, errOut, code := runInspect(path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "KERNEL (GPU / CPU layout)")
	assert.Regexp(t, `(?m)^  blk\.0\.attn_q\.weight +Q4_K +256×256 .* matmul_q4_k_1tok / matmul_blocks_q4_k_1tok$`, out)
	assert.Regexp(t, `(?m)^  output\.weight +Q6_K .* matmul_q6_k_1tok / matmul_blocks_q6_k_1tok$`, out)
	assert.Regexp(t, `(?m)^  token_embd\.weight +Q4_K .* embed_q4_k$`, out)
	assert.Regexp(t, `(?m)^  blk\.0\.attn_norm\.weight +F32 +256 +1\.0 KiB +\d+$`, out, "a vector has no kernel")

	out, _, code = runInspect("--json", path)
	require.Equal(t, 0, code)
	var r inspectReport
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	types := map[string]bool{}
	for _, ts := range r.Tensors {
		if len(ts.Shape) != 2 {
			assert.Empty(t, ts.kernelText(), ts.Name)
			continue
		}
		var dt loader.DType
		for _, w := range shaders.WeightTypes {
			if w.String() == ts.Type {
				dt = w
			}
		}
		require.True(t, shaders.HasKernels(dt), "%s: %s", ts.Name, ts.Type)
		types[ts.Type] = true
		gpu, _ := shaders.WeightKernel(shaders.OpMatMul1, dt, shaders.GPULayout)
		cpu, _ := shaders.WeightKernel(shaders.OpMatMul1, dt, shaders.CPULayout)
		assert.Empty(t, ts.KernelNote, ts.Name)
		if ts.Name == "token_embd.weight" {
			embed, _ := shaders.WeightKernel(shaders.OpEmbed, dt, shaders.GPULayout)
			assert.Equal(t, embed.Name, ts.KernelEmbed)
			assert.Empty(t, ts.KernelGPU, "an untied token_embd only serves the lookup")
			continue
		}
		assert.Equal(t, gpu.Name, ts.KernelGPU, ts.Name)
		assert.Equal(t, cpu.Name, ts.KernelCPU, ts.Name)
	}
	assert.Equal(t, map[string]bool{"Q4_K": true, "Q6_K": true}, types)
}

// A tied model's token_embd is also the output matrix: it names both.
func TestInspectTiedKernels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tied.gguf")
	cfg := loader.Config{Dim: 64, NumLayers: 1, NumHeads: 2, FFNDim: 64, VocabSize: 32}
	require.NoError(t, writeTied(path, cfg))
	out, errOut, code := runInspect(path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "tied output  true")
	assert.Regexp(t, `(?m)^  token_embd\.weight +Q8_0 .* embed_q8_0, matmul_q8_0_1tok / matmul_blocks_q8_0_1tok$`, out)
}

// writeTied writes a Q8_0 model whose token_embd doubles as the output
// matrix: WriteSynthetic's, without output.weight.
func writeTied(path string, cfg loader.Config) error {
	full := path + ".full"
	if err := loader.WriteSynthetic(full, cfg, loader.Q8_0, 1, nil); err != nil {
		return err
	}
	defer os.Remove(full)
	f, err := loader.OpenGGUF(full)
	if err != nil {
		return err
	}
	defer f.Close()
	w := loader.NewGGUFWriter()
	for _, kv := range f.Metadata {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	for _, ts := range f.Tensors {
		if ts.Name == "output.weight" {
			continue
		}
		raw, err := ts.Bytes()
		if err != nil {
			return err
		}
		if err := w.AddTensorBytes(ts.Name, ts.Type, ts.Shape, raw); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}

// A type the loader cannot read is "unsupported"; one it reads without a
// kernel is converted to F16 at load, and runs F16's kernels.
func TestInspectKernelNotes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q8_1.gguf")
	w := loader.NewGGUFWriter()
	require.NoError(t, w.SetValue("general.architecture", "gpt2"))
	require.NoError(t, w.AddTensorBytes("w", loader.Q8_1, []uint64{32, 2}, make([]byte, 2*36)))
	require.NoError(t, w.AddTensor("v", loader.Q8_0, []uint64{32, 2}, make([]float32, 64)))
	require.NoError(t, w.WriteFile(path))
	out, _, code := runInspect(path)
	assert.Equal(t, 1, code, "not a runnable model")
	assert.Regexp(t, `(?m)^  w +Q8_1 +32×2 .* unsupported$`, out)
	assert.Regexp(t, `(?m)^  v +Q8_0 +32×2 .* matmul_q8_0_1tok / matmul_blocks_q8_0_1tok$`, out)

	saved := hasKernels
	t.Cleanup(func() { hasKernels = saved })
	hasKernels = func(dt loader.DType) bool { return dt != loader.Q5_1 && saved(dt) }
	ts := inspectTensor{Name: "blk.0.ffn_up.weight", Type: "Q5_1", Shape: []uint64{64, 32}}
	ts.setKernels(loader.Q5_1, false)
	assert.Equal(t, noteConverted, ts.KernelNote)
	assert.Equal(t, noteConverted, ts.kernelText())
	assert.Equal(t, "matmul_f16_1tok", ts.KernelGPU)
	assert.Equal(t, "matmul_blocks_f16_1tok", ts.KernelCPU)

	vec := inspectTensor{Name: "blk.0.ffn_norm.weight", Shape: []uint64{64}}
	vec.setKernels(loader.F32, false)
	assert.Equal(t, inspectTensor{Name: "blk.0.ffn_norm.weight", Shape: []uint64{64}}, vec)
}
