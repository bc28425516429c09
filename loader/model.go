package loader

// This file holds the types shared by every model format. The engine depends
// only on these: Model, Config, Tensor, DType and Tokenizer.

// RopeStyle says how RoPE pairs the elements of a Q or K head.
type RopeStyle int

const (
	// RopePairwise rotates consecutive pairs (x[2i], x[2i+1]) by pos·θ^(−2i/rot).
	// This is the GGUF llama convention and the one the engine consumes.
	RopePairwise RopeStyle = iota
	// RopeHalf rotates (x[i], x[i+rot/2]) (Hugging Face "rotate_half").
	// The loader normalises such checkpoints to RopePairwise by permuting the
	// rows of the Q and K projections, so Config.Rope is RopePairwise after Open.
	RopeHalf
)

// Config is a decoder-only Mistral/Llama-style transformer's hyperparameters.
type Config struct {
	Arch          string    // "llama" or "mistral"
	Dim           int       // model (embedding) width
	NumLayers     int       // transformer blocks
	NumHeads      int       // query heads
	NumKVHeads    int       // key/value heads (GQA when < NumHeads)
	HeadDim       int       // per-head width; Dim == NumHeads*HeadDim for llama-style files
	FFNDim        int       // SwiGLU hidden width
	VocabSize     int       // rows of token_embd / output
	RopeTheta     float64   // RoPE base θ (10000 for Mistral v0.1)
	RopeDim       int       // rotated dims per head (usually HeadDim)
	Rope          RopeStyle // always RopePairwise after loading
	NormEps       float64   // RMSNorm epsilon
	ContextLength int       // the training context from metadata (informational)
	// Window is the sliding-window size W: a query at position i attends to
	// keys max(0,i−W+1)…i. 0 means the file declares none (full attention).
	Window int
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

// WithWindow overrides the sliding window (Mistral v0.1 GGUFs often lack the
// key). 0 means full attention.
func WithWindow(w int) Option { return func(o *openOptions) { o.window = w } }

// WithoutTokenizer skips building the tokenizer (inspect of huge vocabularies, benchmarks).
func WithoutTokenizer() Option { return func(o *openOptions) { o.noTokens = true } }
