package loader

import (
	"fmt"
	"math"
)

// This file holds the types shared by every model format. The engine depends
// only on these: Model, Config, Tensor, DType and Tokenizer.

// RopeStyle says how RoPE pairs the elements of a Q or K head.
type RopeStyle int

const (
	// RopePairwise rotates consecutive pairs (x[2i], x[2i+1]) by pos·θ^(−2i/rot).
	// This is the GGUF llama convention (llama.cpp's "NORM" RoPE).
	RopePairwise RopeStyle = iota
	// RopeHalf rotates (x[i], x[i+rot/2]) (Hugging Face "rotate_half",
	// llama.cpp's "NEOX" RoPE). The loader normalises llama/mistral
	// safetensors checkpoints to RopePairwise by permuting the rows of the
	// Q and K projections; Gemma files keep RopeHalf, which the engine
	// runs as it is.
	RopeHalf
)

func (r RopeStyle) String() string {
	switch r {
	case RopePairwise:
		return "pairwise"
	case RopeHalf:
		return "half"
	}
	return fmt.Sprintf("RopeStyle(%d)", int(r))
}

// NormKind is the normalisation every norm tensor of a model applies.
type NormKind int

const (
	// NormRMS is RMSNorm: x / √(mean(x²) + ε) · w.
	NormRMS NormKind = iota
	// NormLayer is LayerNorm without bias (Cohere2): (x − mean) / √(var + ε) · w.
	NormLayer
)

func (n NormKind) String() string {
	switch n {
	case NormRMS:
		return "rmsnorm"
	case NormLayer:
		return "layernorm"
	}
	return fmt.Sprintf("NormKind(%d)", int(n))
}

// Activation is the gate activation of the gated FFN: down(act(gate·h) ⊙ up·h).
type Activation int

const (
	// ActSiLU is x·σ(x) (SwiGLU: llama, mistral, cohere2).
	ActSiLU Activation = iota
	// ActGELUTanh is GELU's tanh approximation,
	// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GeGLU: Gemma).
	ActGELUTanh
)

func (a Activation) String() string {
	switch a {
	case ActSiLU:
		return "silu"
	case ActGELUTanh:
		return "gelu-tanh"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// LayerSpec is what differs between the layers of one model: which keys a
// layer's queries attend to and how its RoPE turns.
type LayerSpec struct {
	// Window is W for a local (sliding-window) layer: the query at position
	// i attends to keys max(0, i−W+1)…i. 0 is a global layer: every key
	// from position 0.
	Window int
	// RopeTheta is the layer's RoPE base θ; 0 means the layer applies no
	// RoPE at all (Cohere2's global layers).
	RopeTheta float64
	// RopeScale is linear RoPE scaling: the layer rotates position p by the
	// angles of p / RopeScale (Gemma 3's global layers). 1 is none.
	RopeScale float64
}

// Config is a decoder-only transformer's hyperparameters: the llama and
// mistral archs, and the Gemma 2, Gemma 3 and Cohere2 families, whose
// differences the fields after Window describe (their zero values are
// llama's).
type Config struct {
	Arch          string    // "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3" or "cohere2"
	Dim           int       // model (embedding) width
	NumLayers     int       // transformer blocks
	NumHeads      int       // query heads
	NumKVHeads    int       // key/value heads (GQA when < NumHeads)
	HeadDim       int       // per-head width; not always Dim/NumHeads (Gemma 3 1B: dim 1152, 4 heads of 256)
	FFNDim        int       // gated FFN hidden width
	VocabSize     int       // rows of token_embd / output
	RopeTheta     float64   // RoPE base θ (10000 for Mistral v0.1); of the global layers when they differ
	RopeDim       int       // rotated dims per head (usually HeadDim)
	Rope          RopeStyle // how RoPE pairs a head's elements
	NormEps       float64   // RMSNorm / LayerNorm epsilon
	ContextLength int       // the training context from metadata (informational)
	// Window is the sliding-window size W of the local layers: a query at
	// position i attends to keys max(0,i−W+1)…i. 0 means the file declares
	// none (full attention everywhere).
	Window int

	// Layers holds each layer's window and RoPE (len NumLayers). nil means
	// every layer is {Window, RopeTheta, 1}: use Layer(l), which handles
	// both.
	Layers []LayerSpec

	Norm NormKind   // the norm of every norm tensor
	Act  Activation // the FFN gate's activation
	// EmbedScale multiplies the token embeddings (Gemma: √Dim); 0 is 1.
	EmbedScale float64
	// PostNorms: each block normalises its attention and FFN outputs
	// (post_attention_norm, post_ffw_norm) before the residual add (Gemma).
	PostNorms bool
	// QKNorm: each query and key head is RMS-normalised over HeadDim, with
	// the weights attn_q_norm and attn_k_norm, before RoPE (Gemma 3).
	QKNorm bool
	// Parallel: attention and FFN both read one norm of x and both add to
	// x, x += attn(n) + ffn(n) with n = attn_norm(x); no ffn_norm (Cohere2).
	Parallel bool
	// AttnScale multiplies q·k; 0 is 1/√HeadDim.
	AttnScale float64
	// AttnSoftcap caps attention scores, s ← c·tanh(s/c), after AttnScale
	// (Gemma 2); 0 is none.
	AttnSoftcap float64
	// FinalSoftcap caps the logits the same way (Gemma 2); 0 is none.
	FinalSoftcap float64
	// LogitScale multiplies the logits (Cohere2); 0 is 1.
	LogitScale float64

	// QKVBias: the Q, K and V products add the biases attn_q.bias,
	// attn_k.bias and attn_v.bias, (heads·headDim,) and (kvHeads·headDim,)
	// f32 (Qwen 2.5).
	QKVBias bool
	// RopeFreqFactors divides each RoPE pair's frequency: pair i turns by
	// (pos/RopeScale)·θ^(−2i/RopeDim) / RopeFreqFactors[i] (len RopeDim/2;
	// nil: none). Llama 3.1's RoPE scaling, from the file's
	// rope_freqs.weight or its rope.scaling keys; it applies to every
	// layer that has RoPE.
	RopeFreqFactors []float64
}

// Layer is layer l's window and RoPE (see Layers).
func (c Config) Layer(l int) LayerSpec {
	if c.Layers != nil {
		return c.Layers[l]
	}
	return LayerSpec{Window: c.Window, RopeTheta: c.RopeTheta, RopeScale: 1}
}

// Local reports whether some layer has a sliding window, and Global whether
// some layer attends to every key.
func (c Config) Local() bool {
	for l := range c.NumLayers {
		if c.Layer(l).Window > 0 {
			return true
		}
	}
	return false
}

// Global reports whether some layer attends to every key (see Local).
func (c Config) Global() bool {
	for l := range c.NumLayers {
		if c.Layer(l).Window == 0 {
			return true
		}
	}
	return false
}

// QueryScale is the factor of q·k: AttnScale, or 1/√HeadDim when unset.
func (c Config) QueryScale() float64 {
	if c.AttnScale != 0 {
		return c.AttnScale
	}
	return 1 / math.Sqrt(float64(c.HeadDim))
}

// Tensor is one named weight. Shape lists dimensions innermost first, as GGUF
// does: a torch (out, in) matrix has Shape {in, out}.
type Tensor struct {
	Name  string
	Type  DType
	Shape []uint64
	// Offset is the absolute byte offset of the data in its file (for inspect).
	Offset uint64
	// data is a zero-copy view into the file mapping; transform, when set,
	// produces the engine-convention bytes from it (e.g. the RoPE row
	// permutation of HF checkpoints).
	data      []byte
	transform func(raw []byte) ([]byte, error)
}

// Model is an opened model: its config, its tensors (views into the mapped
// file, never copied into the Go heap) and its tokenizer. Close unmaps it;
// tensor data must not be used after Close.
type Model struct {
	Path    string
	Format  string // "gguf" or "safetensors"
	Config  Config
	Tensors []*Tensor // file order
	// Unmapped names a checkpoint's float tensors that have no engine name
	// (a safetensors bias, say), which the engine refuses. Rotary inv_freq
	// buffers, which change nothing, are not listed.
	Unmapped  []string
	Tokenizer *Tokenizer // nil when the file carries none
	// GGUF is the parsed GGUF file when Format == "gguf" (metadata for inspect).
	GGUF *GGUFFile

	byName  map[string]*Tensor
	closers []func() error
}

// Option adjusts how Open reads a model.
type Option func(*openOptions)

type openOptions struct {
	window   int // -1: keep what the file says
	noTokens bool
}

// WithWindow overrides the sliding window W of every local layer (Mistral
// v0.1 GGUFs often lack the key); for a file that declares no window, w > 0
// makes every layer local. 0 makes every layer global (full attention).
func WithWindow(w int) Option { return func(o *openOptions) { o.window = w } }

// WithoutTokenizer skips building the tokenizer (inspect of huge vocabularies, benchmarks).
func WithoutTokenizer() Option { return func(o *openOptions) { o.noTokens = true } }
