package loader

import (
	"fmt"
	"strconv"
	"strings"
)

// QuantMix is a llama.cpp file type named as llama-quantize names it
// ("Q4_K_M"): a default tensor type plus llama.cpp's rules for which tensors
// get another one. TensorType applies those rules, as llama.cpp's quantizer
// (src/llama-quant.cpp) applies them to a dense llama-architecture model
// quantised without an importance matrix. The rules were checked against
// every tensor of files that llama.cpp (commit 0ad4a86) wrote; see
// loader/testdata/quant.
type QuantMix string

// MixShape is what the rules look at besides a tensor's name.
type MixShape struct {
	Layers, Heads, KVHeads int
	// Tied reports that the model has no output.weight, so that
	// token_embd.weight doubles as the output matrix. llama.cpp then gives
	// token_embd output.weight's type.
	Tied bool
}

// mixDefs lists the supported mixes with their default type, in
// llama-quantize's order.
var mixDefs = []struct {
	mix  QuantMix
	base DType
}{
	{"Q4_0", Q4_0}, {"Q4_1", Q4_1}, {"Q5_0", Q5_0}, {"Q5_1", Q5_1},
	{"Q2_K", Q2_K}, {"Q3_K_S", Q3_K}, {"Q3_K_M", Q3_K}, {"Q3_K_L", Q3_K},
	{"IQ4_NL", IQ4_NL}, {"IQ4_XS", IQ4_XS},
	{"Q4_K_S", Q4_K}, {"Q4_K_M", Q4_K}, {"Q5_K_S", Q5_K}, {"Q5_K_M", Q5_K},
	{"Q6_K", Q6_K}, {"Q8_0", Q8_0}, {"F16", F16}, {"BF16", BF16},
}

// QuantMixes lists the supported mixes.
func QuantMixes() []QuantMix {
	out := make([]QuantMix, len(mixDefs))
	for i, d := range mixDefs {
		out[i] = d.mix
	}
	return out
}

// base is m's default tensor type. Names match case-insensitively, as
// llama-quantize matches them; ok is false for an unknown mix.
func (m QuantMix) base() (QuantMix, DType, bool) {
	up := QuantMix(strings.ToUpper(string(m)))
	for _, d := range mixDefs {
		if d.mix == up {
			return up, d.base, true
		}
	}
	return m, 0, false
}

// mixRole is what the rules know a tensor as.
type mixRole int

const (
	roleOther mixRole = iota // attn_q, attn_k, ffn_gate, ffn_up, …: the default type
	roleOutput
	roleTokenEmbd
	roleAttnV
	roleAttnOutput
	roleFFNDown
)

// mixRoleOf classifies a GGUF tensor name the way llama.cpp does: by exact
// name for the two vocabulary matrices, by substring for the per-layer ones.
func mixRoleOf(name string) mixRole {
	switch {
	case name == "output.weight":
		return roleOutput
	case name == "token_embd.weight":
		return roleTokenEmbd
	case strings.Contains(name, "attn_v.weight"):
		return roleAttnV
	case strings.Contains(name, "attn_output.weight"):
		return roleAttnOutput
	case strings.Contains(name, "ffn_down"):
		return roleFFNDown
	}
	return roleOther
}

// mixQuantizable reports whether llama.cpp quantises the tensor: a matrix
// whose name ends in "weight" and is not a norm. rope_freqs.weight is the
// llama arch's one other 1-D weight.
func mixQuantizable(name string) bool {
	return strings.HasSuffix(name, "weight") && !strings.Contains(name, "_norm.weight") &&
		name != "rope_freqs.weight"
}

// mixLayer parses the N of a "blk.N." name.
func mixLayer(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil && n >= 0
}

// moreBits is llama.cpp's use_more_bits: the first and last eighth of the
// layers, and every third layer in between, get more bits in the _M mixes.
func moreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// TensorType is the type llama.cpp's quantizer writes for the tensor called
// name (a GGUF name such as "blk.3.attn_v.weight", "output.weight",
// "token_embd.weight") whose rows are cols elements long. Norm vectors and
// other 1-D tensors stay F32.
//
// Where cols is not a multiple of the chosen type's block size, llama.cpp
// falls back to a type whose block fits (Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to
// Q8_0, Q2_K and Q3_K to Q4_0, IQ4_XS to IQ4_NL, and to F16 when even that
// does not fit); so does TensorType. Types with 32-element blocks have no
// fallback: for rows that are not a multiple of 32 llama.cpp refuses to
// quantise, and TensorType returns an error.
func (m QuantMix) TensorType(name string, cols uint64, s MixShape) (DType, error) {
	m, base, ok := m.base()
	if !ok {
		return 0, fmt.Errorf("loader: unknown quantization mix %q (known: %s)", string(m), mixList())
	}
	if !mixQuantizable(name) {
		return F32, nil
	}
	if base == F16 || base == BF16 {
		return base, nil // the rules and fallbacks apply to block types only
	}
	role := mixRoleOf(name)
	if role == roleTokenEmbd && s.Tied {
		role = roleOutput
	}
	t := base
	switch role {
	case roleOutput:
		switch {
		case cols%base.BlockSize() != 0:
			t = Q8_0
		case base != Q8_0:
			t = Q6_K
		}
	case roleAttnV, roleFFNDown:
		i, ok := mixLayer(name)
		if !ok || i >= s.Layers {
			return 0, fmt.Errorf("loader: mix %s: tensor %q: no layer index below the model's %d layers", m, name, s.Layers)
		}
		if role == roleAttnV {
			t = m.attnV(base, i, s)
		} else {
			t = m.ffnDown(base, i, s.Layers)
		}
	case roleAttnOutput:
		switch m {
		case "Q2_K":
			t = Q3_K
		case "Q3_K_M":
			t = Q4_K
		case "Q3_K_L":
			t = Q5_K
		}
	}
	return mixFallback(m, name, t, cols)
}

// attnV is the rule for layer i's attn_v.weight.
func (m QuantMix) attnV(base DType, i int, s MixShape) DType {
	gqa := 0
	if s.KVHeads > 0 {
		gqa = s.Heads / s.KVHeads
	}
	t := base
	switch m {
	case "Q2_K":
		t = Q3_K
		if gqa >= 4 {
			t = Q4_K
		}
	case "Q3_K_M":
		t = Q4_K
		if i < 2 {
			t = Q5_K
		}
	case "Q3_K_L":
		t = Q5_K
	case "IQ4_NL", "IQ4_XS":
		if gqa >= 4 {
			t = Q5_K
		}
	case "Q4_K_M", "Q5_K_M":
		if moreBits(i, s.Layers) {
			t = Q6_K
		}
	case "Q4_K_S":
		if i < 4 {
			t = Q5_K
		}
	}
	// llama.cpp's LLM_TYPE_70B (a llama with 80 layers and grouped KV
	// heads) shares each attn_v among several heads, so it gets more bits.
	if s.Layers == 80 && s.Heads != s.KVHeads && (t == Q3_K || t == Q4_K) {
		t = Q5_K
	}
	return t
}

// ffnDown is the rule for layer i's ffn_down.weight in a model of n layers.
func (m QuantMix) ffnDown(base DType, i, n int) DType {
	switch m {
	case "Q2_K":
		return Q3_K
	case "Q3_K_M":
		if i < n/16 {
			return Q5_K
		}
		return Q4_K
	case "Q3_K_L":
		return Q5_K
	case "Q4_K_M", "Q5_K_M":
		if moreBits(i, n) {
			return Q6_K
		}
	case "Q4_K_S", "IQ4_NL", "IQ4_XS":
		if i < n/8 {
			return Q5_K
		}
	}
	return base
}

// mixFallback replaces t by llama.cpp's fallback type when rows of cols
// elements are not whole blocks of t.
func mixFallback(m QuantMix, name string, t DType, cols uint64) (DType, error) {
	if cols%t.BlockSize() == 0 {
		return t, nil
	}
	var fb DType
	switch t {
	case IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_XS:
		fb = IQ4_NL
	case Q2_K, Q3_K, TQ1_0, TQ2_0:
		fb = Q4_0
	case Q4_K:
		fb = Q5_0
	case Q5_K:
		fb = Q5_1
	case Q6_K:
		fb = Q8_0
	default:
		return 0, fmt.Errorf("loader: mix %s: tensor %q: rows of %d elements are not whole %s blocks, and llama.cpp has no fallback for %s", m, name, cols, t, t)
	}
	if cols%fb.BlockSize() != 0 {
		fb = F16
	}
	return fb, nil
}

func mixList() string {
	var b strings.Builder
	for i, d := range mixDefs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(d.mix))
	}
	return b.String()
}
