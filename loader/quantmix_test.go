package loader_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vkrun/vkrun/loader"
)

type qgMixes struct {
	LlamaCpp map[string]string `json:"llama_cpp"`
	Variants []struct {
		Name    string `json:"name"`
		Why     string `json:"why"`
		Layers  int    `json:"layers"`
		Heads   int    `json:"heads"`
		KVHeads int    `json:"kv_heads"`
		Output  bool   `json:"output"`
		Tensors []struct {
			Name  string   `json:"name"`
			Shape []uint64 `json:"shape"`
		} `json:"tensors"`
		Types map[string][]string `json:"types"`
	} `json:"variants"`
}

// TestQuantMixGolden: for every file llama.cpp wrote (each variant, each
// file type), TensorType gives exactly the type llama.cpp chose, for every
// tensor.
func TestQuantMixGolden(t *testing.T) {
	var g qgMixes
	qgReadGz(t, "mixes.json.gz", &g)
	t.Logf("llama.cpp %v", g.LlamaCpp)
	for _, v := range g.Variants {
		shape := loader.MixShape{Layers: v.Layers, Heads: v.Heads, KVHeads: v.KVHeads, Tied: !v.Output}
		var mixes []string
		for ft := range v.Types {
			mixes = append(mixes, ft)
		}
		slices.Sort(mixes)
		var want []string
		for _, m := range loader.QuantMixes() {
			want = append(want, string(m))
		}
		slices.Sort(want)
		if !slices.Equal(mixes, want) {
			t.Errorf("%s: llama.cpp files for %v, QuantMixes %v", v.Name, mixes, want)
		}
		for _, ft := range mixes {
			t.Run(v.Name+"/"+ft, func(t *testing.T) {
				types := v.Types[ft]
				if len(types) != len(v.Tensors) {
					t.Fatalf("%d types for %d tensors", len(types), len(v.Tensors))
				}
				bad := 0
				for i, tn := range v.Tensors {
					got, err := loader.QuantMix(ft).TensorType(tn.Name, tn.Shape[0], shape)
					if err != nil {
						t.Errorf("%s %v: %v", tn.Name, tn.Shape, err)
						bad++
						continue
					}
					if got.String() != types[i] {
						if bad < 8 {
							t.Errorf("%s %v: %s, llama.cpp wrote %s", tn.Name, tn.Shape, got, types[i])
						}
						bad++
					}
				}
				if bad > 0 {
					t.Errorf("%d of %d tensors differ (%s)", bad, len(v.Tensors), v.Why)
				}
			})
		}
	}
}

// qgLlamaTensors lists a llama model's tensors with their row lengths.
func qgLlamaTensors(layers, dim, ffn, q, kv int, output bool) (names []string, cols []uint64) {
	add := func(n string, c int) { names, cols = append(names, n), append(cols, uint64(c)) }
	add("token_embd.weight", dim)
	add("output_norm.weight", dim)
	if output {
		add("output.weight", dim)
	}
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", dim)
		add(p+"attn_q.weight", dim)
		add(p+"attn_k.weight", dim)
		add(p+"attn_v.weight", dim)
		add(p+"attn_output.weight", q)
		add(p+"ffn_norm.weight", dim)
		add(p+"ffn_gate.weight", dim)
		add(p+"ffn_up.weight", dim)
		add(p+"ffn_down.weight", ffn)
	}
	return names, cols
}

// TestQuantMixMistral7B: the type counts of Mistral-7B-Instruct-v0.2's
// Q4_K_M file (design.md §8): 65 F32, 193 Q4_K, 33 Q6_K.
func TestQuantMixMistral7B(t *testing.T) {
	s := loader.MixShape{Layers: 32, Heads: 32, KVHeads: 8}
	names, cols := qgLlamaTensors(32, 4096, 14336, 4096, 1024, true)
	count := map[loader.DType]int{}
	for i, n := range names {
		typ, err := loader.QuantMix("Q4_K_M").TensorType(n, cols[i], s)
		if err != nil {
			t.Fatal(err)
		}
		count[typ]++
	}
	want := map[loader.DType]int{loader.F32: 65, loader.Q4_K: 193, loader.Q6_K: 33}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("Q4_K_M type counts %v, want %v", count, want)
	}
}

// TestQuantMixRules spells out the rules for single tensors.
func TestQuantMixRules(t *testing.T) {
	mistral := loader.MixShape{Layers: 32, Heads: 32, KVHeads: 8}
	llama2 := loader.MixShape{Layers: 32, Heads: 32, KVHeads: 32}
	llama70 := loader.MixShape{Layers: 80, Heads: 64, KVHeads: 8}
	tied := loader.MixShape{Layers: 32, Heads: 32, KVHeads: 8, Tied: true}
	tests := []struct {
		mix  loader.QuantMix
		name string
		cols uint64
		s    loader.MixShape
		want loader.DType
	}{
		// Q4_K_M at 32 layers: use_more_bits is layers 0–3, 28–31 and
		// 6, 9, …, 27.
		{"Q4_K_M", "blk.0.attn_v.weight", 4096, mistral, loader.Q6_K},
		{"Q4_K_M", "blk.3.attn_v.weight", 4096, mistral, loader.Q6_K},
		{"Q4_K_M", "blk.4.attn_v.weight", 4096, mistral, loader.Q4_K},
		{"Q4_K_M", "blk.5.attn_v.weight", 4096, mistral, loader.Q4_K},
		{"Q4_K_M", "blk.6.attn_v.weight", 4096, mistral, loader.Q6_K},
		{"Q4_K_M", "blk.7.attn_v.weight", 4096, mistral, loader.Q4_K},
		{"Q4_K_M", "blk.27.attn_v.weight", 4096, mistral, loader.Q6_K},
		{"Q4_K_M", "blk.28.attn_v.weight", 4096, mistral, loader.Q6_K},
		{"Q4_K_M", "blk.31.ffn_down.weight", 14336, mistral, loader.Q6_K},
		{"Q4_K_M", "blk.10.ffn_down.weight", 14336, mistral, loader.Q4_K},
		{"Q4_K_M", "blk.9.ffn_down.weight", 14336, mistral, loader.Q6_K},
		{"Q4_K_M", "blk.0.attn_q.weight", 4096, mistral, loader.Q4_K},
		{"Q4_K_M", "blk.0.attn_output.weight", 4096, mistral, loader.Q4_K},
		{"Q4_K_M", "blk.0.ffn_gate.weight", 4096, mistral, loader.Q4_K},
		{"Q4_K_M", "blk.0.attn_norm.weight", 4096, mistral, loader.F32},
		{"Q4_K_M", "output_norm.weight", 4096, mistral, loader.F32},
		{"Q4_K_M", "rope_freqs.weight", 64, mistral, loader.F32},
		{"Q4_K_M", "output.weight", 4096, mistral, loader.Q6_K},
		{"Q4_K_M", "token_embd.weight", 4096, mistral, loader.Q4_K},
		// Without output.weight, token_embd takes its rule.
		{"Q4_K_M", "token_embd.weight", 4096, tied, loader.Q6_K},
		{"Q4_0", "token_embd.weight", 4096, tied, loader.Q6_K},
		{"Q8_0", "token_embd.weight", 4096, tied, loader.Q8_0},
		// output.weight is Q6_K in the legacy mixes too, but not in Q8_0, F16, BF16.
		{"Q4_0", "output.weight", 4096, mistral, loader.Q6_K},
		{"Q5_1", "output.weight", 4096, mistral, loader.Q6_K},
		{"Q8_0", "output.weight", 4096, mistral, loader.Q8_0},
		{"F16", "output.weight", 4096, mistral, loader.F16},
		{"BF16", "blk.0.attn_v.weight", 4096, mistral, loader.BF16},
		{"F16", "blk.0.ffn_norm.weight", 4096, mistral, loader.F32},
		// Q5_K_M is Q4_K_M with Q5_K.
		{"Q5_K_M", "blk.4.attn_v.weight", 4096, mistral, loader.Q5_K},
		{"Q5_K_M", "blk.3.attn_v.weight", 4096, mistral, loader.Q6_K},
		// Q4_K_S: attn_v of the first 4 layers, ffn_down of the first n/8.
		{"Q4_K_S", "blk.3.attn_v.weight", 4096, mistral, loader.Q5_K},
		{"Q4_K_S", "blk.4.attn_v.weight", 4096, mistral, loader.Q4_K},
		{"Q4_K_S", "blk.3.ffn_down.weight", 14336, mistral, loader.Q5_K},
		{"Q4_K_S", "blk.4.ffn_down.weight", 14336, mistral, loader.Q4_K},
		// Q3_K_M: attn_v Q5_K in layers 0–1, else Q4_K; ffn_down Q5_K in the
		// first n/16, else Q4_K; attn_output Q4_K.
		{"Q3_K_M", "blk.1.attn_v.weight", 4096, mistral, loader.Q5_K},
		{"Q3_K_M", "blk.2.attn_v.weight", 4096, mistral, loader.Q4_K},
		{"Q3_K_M", "blk.1.ffn_down.weight", 14336, mistral, loader.Q5_K},
		{"Q3_K_M", "blk.2.ffn_down.weight", 14336, mistral, loader.Q4_K},
		{"Q3_K_M", "blk.2.attn_output.weight", 4096, mistral, loader.Q4_K},
		{"Q3_K_M", "blk.2.attn_q.weight", 4096, mistral, loader.Q3_K},
		{"Q3_K_S", "blk.0.attn_v.weight", 4096, mistral, loader.Q3_K},
		{"Q3_K_L", "blk.9.attn_output.weight", 4096, mistral, loader.Q5_K},
		// Q2_K: attn_v Q4_K with GQA ≥ 4, else Q3_K.
		{"Q2_K", "blk.5.attn_v.weight", 4096, mistral, loader.Q4_K},
		{"Q2_K", "blk.5.attn_v.weight", 4096, llama2, loader.Q3_K},
		{"Q2_K", "blk.5.ffn_down.weight", 11008, llama2, loader.Q3_K},
		{"Q2_K", "blk.5.attn_output.weight", 4096, llama2, loader.Q3_K},
		{"Q2_K", "blk.5.ffn_up.weight", 4096, llama2, loader.Q2_K},
		// IQ4_NL / IQ4_XS: attn_v Q5_K with GQA ≥ 4; ffn_down of the first n/8.
		{"IQ4_XS", "blk.5.attn_v.weight", 4096, mistral, loader.Q5_K},
		{"IQ4_XS", "blk.5.attn_v.weight", 4096, llama2, loader.IQ4_XS},
		{"IQ4_NL", "blk.3.ffn_down.weight", 11008, llama2, loader.Q5_K},
		// llama.cpp's 70B (80 layers, GQA): Q3_K and Q4_K attn_v become Q5_K.
		{"Q4_K_M", "blk.11.attn_v.weight", 8192, llama70, loader.Q5_K},
		{"Q4_K_M", "blk.0.attn_v.weight", 8192, llama70, loader.Q6_K},
		{"Q3_K_S", "blk.40.attn_v.weight", 8192, llama70, loader.Q5_K},
		{"Q3_K_S", "blk.40.attn_q.weight", 8192, llama70, loader.Q3_K},
		// Fallbacks for rows that are not whole 256-element blocks.
		{"Q4_K_M", "blk.5.ffn_down.weight", 320, mistral, loader.Q5_0},
		{"Q4_K_M", "blk.6.ffn_down.weight", 320, mistral, loader.Q8_0},
		{"Q5_K_S", "blk.5.ffn_down.weight", 320, mistral, loader.Q5_1},
		{"Q3_K_S", "blk.5.ffn_down.weight", 320, mistral, loader.Q4_0},
		{"Q2_K", "blk.5.ffn_gate.weight", 288, mistral, loader.Q4_0},
		{"IQ4_XS", "blk.5.ffn_gate.weight", 288, llama2, loader.IQ4_NL},
		{"Q4_K_M", "blk.5.ffn_gate.weight", 48, mistral, loader.F16},
		{"Q4_K_M", "output.weight", 288, mistral, loader.Q8_0},
		{"Q4_0", "output.weight", 288, mistral, loader.Q8_0},
		{"IQ4_NL", "output.weight", 288, mistral, loader.Q8_0},
		// Names match case-insensitively, as llama-quantize's do.
		{"q4_k_m", "output.weight", 4096, mistral, loader.Q6_K},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tc.mix, tc.name, tc.cols), func(t *testing.T) {
			got, err := tc.mix.TensorType(tc.name, tc.cols, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s %s (rows of %d): %s, want %s", tc.mix, tc.name, tc.cols, got, tc.want)
			}
		})
	}
}

func TestQuantMixErrors(t *testing.T) {
	s := loader.MixShape{Layers: 8, Heads: 4, KVHeads: 2}
	tests := []struct {
		mix  loader.QuantMix
		name string
		cols uint64
		want string
	}{
		{"Q4_K_X", "blk.0.attn_q.weight", 256, "known: Q4_0, Q4_1"},
		{"", "blk.0.attn_q.weight", 256, "unknown quantization mix"},
		// 32-element types have no fallback: llama.cpp refuses these rows.
		{"Q4_0", "blk.0.attn_q.weight", 48, "no fallback for Q4_0"},
		{"Q8_0", "output.weight", 48, "no fallback for Q8_0"},
		{"Q4_K_M", "output.weight", 48, "no fallback for Q8_0"},
		{"IQ4_NL", "blk.0.ffn_up.weight", 80, "no fallback for IQ4_NL"},
		// The layer rules need a layer index within the model.
		{"Q4_K_M", "attn_v.weight", 256, "no layer index"},
		{"Q4_K_M", "blk.8.ffn_down.weight", 256, "no layer index"},
		{"Q4_K_M", "blk.x.ffn_down.weight", 256, "no layer index"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tc.mix, tc.name, tc.cols), func(t *testing.T) {
			got, err := tc.mix.TensorType(tc.name, tc.cols, s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("TensorType = %s, %v; want an error containing %q", got, err, tc.want)
			}
		})
	}
}

func TestQuantMixes(t *testing.T) {
	got := loader.QuantMixes()
	if len(got) != 18 {
		t.Errorf("%d mixes, want the 18 of loader/testdata/quant: %v", len(got), got)
	}
	s := loader.MixShape{Layers: 8, Heads: 4, KVHeads: 2}
	for _, m := range got {
		if _, err := m.TensorType("blk.0.attn_q.weight", 256, s); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
	got[0] = "changed"
	if loader.QuantMixes()[0] == "changed" {
		t.Error("QuantMixes returns its internal slice")
	}
}
