package vkrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vkrun/vkrun/engine"
	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// DeviceInfo describes a Vulkan device.
type DeviceInfo = vk.DeviceInfo

// KernelTime is the GPU time one kernel took (see WithProfile).
type KernelTime = engine.KernelTime

// KernelPick is one kernel choice the model's kernel library made (see
// Model.Kernels): for an op ("matmul1", "matmul", "embed", "attention", and
// in the GPU layout the gate-up products with their activation in the
// epilogue, "matmul_swiglu", "matmul_swiglu1", "matmul_geglu",
// "matmul_geglu1") on
// a type (a weight type such as "Q4_K", or the KV ring's element type), the
// kernel the table names (Table) and the kernel that runs (Kernel). They
// differ only for a variant with other specialization constants, and then
// Reason says why.
type KernelPick = ops.Pick

// Config is a model's hyperparameters.
type Config = loader.Config

// Tokenizer turns text into token ids and back.
type Tokenizer = loader.Tokenizer

// Errors that callers may test for with errors.Is.
var (
	ErrNoDevice          = vk.ErrNoDevice
	ErrNoLoader          = vk.ErrNoLoader
	ErrOutOfDeviceMemory = vk.ErrOutOfDeviceMemory
	ErrDeviceLost        = vk.ErrDeviceLost
	ErrUnsupportedType   = loader.ErrUnsupportedType
	ErrContextFull       = engine.ErrContextFull
	// ErrModelClosed and ErrSessionClosed: the model or session was closed.
	ErrModelClosed   = errors.New("vkrun: model is closed")
	ErrSessionClosed = errors.New("vkrun: session is closed")
	// ErrBusy: the session is in the middle of a Generate (a call from
	// inside its range loop that would change the session).
	ErrBusy = errors.New("vkrun: the session is generating")
)

// Devices lists the Vulkan devices, in the loader's order.
func Devices() ([]DeviceInfo, error) {
	in, err := vk.NewInstance(vk.InstanceOptions{})
	if err != nil {
		return nil, err
	}
	defer in.Close()
	return in.Devices()
}

// ExternalVulkan names a Vulkan device the caller already created, by raw
// handles (for example from vulkan-go): vkrun runs on it and never destroys
// it, its queue or its instance. The caller must not submit to Queue while
// vkrun does unless it serialises the submits.
type ExternalVulkan struct {
	Instance       uintptr // VkInstance
	APIVersion     uint32  // the instance's apiVersion (VK_MAKE_API_VERSION), at least 1.1
	PhysicalDevice uintptr // VkPhysicalDevice
	Device         uintptr // VkDevice
	QueueFamily    uint32  // a family with VK_QUEUE_COMPUTE_BIT
	Queue          uintptr // VkQueue of that family
}

// Option configures Load.
type Option func(*loadOptions)

type loadOptions struct {
	device     string
	window     int // -1: the file's
	kv         ops.KVType
	chunk      int
	context    int
	keep       int
	progress   func(done, total uint64)
	external   *ExternalVulkan
	validation bool
	profile    bool
	layout     string
	intDot     string
	coopmat    string
}

// WithDevice picks the device by index or by a substring of its name (as
// VKRUN_DEVICE does; the option wins over the variable).
func WithDevice(selector string) Option { return func(o *loadOptions) { o.device = selector } }

// WithWindow overrides the sliding window W of every local layer (of every
// layer, for a file that declares no window); 0 makes every layer global.
// Mistral v0.1 GGUF files often lack the key; its window is 4096.
func WithWindow(w int) Option { return func(o *loadOptions) { o.window = w } }

// WithKeep keeps the first n positions of every sequence in each local
// layer's keys beside its sliding window (attention sinks, as StreamingLLM
// keeps them): instructions at the start stay in view however long the
// text. The cache holds n more rows per local layer; the cost per token
// stays flat.
func WithKeep(n int) Option { return func(o *loadOptions) { o.keep = n } }

// WithKV sets the KV cache precision: "f16" (default) or "f32".
func WithKV(precision string) Option {
	return func(o *loadOptions) {
		switch precision {
		case "f32":
			o.kv = ops.KVF32
		case "f16", "":
			o.kv = ops.KVF16
		default:
			o.kv = -1
		}
	}
}

// WithChunk sets the most prompt tokens processed per prefill step (default
// and maximum: the window).
func WithChunk(n int) Option { return func(o *loadOptions) { o.chunk = n } }

// WithContext sets the positions held by the global layers of a model that
// has some (every layer of a model without a sliding window): the longest
// sequence. Default: the model's context length, at most 4096.
func WithContext(n int) Option { return func(o *loadOptions) { o.context = n } }

// WithProgress reports weight upload progress in bytes.
func WithProgress(fn func(done, total uint64)) Option {
	return func(o *loadOptions) { o.progress = fn }
}

// WithVulkan runs vkrun on a device the caller owns (see ExternalVulkan).
func WithVulkan(v ExternalVulkan) Option { return func(o *loadOptions) { o.external = &v } }

// WithValidation turns on the Khronos validation layer (also VKRUN_VALIDATE=1).
func WithValidation() Option { return func(o *loadOptions) { o.validation = true } }

// WithProfile times every kernel on the GPU (timestamp queries around each
// dispatch); Session.Profile reports the totals. It costs a little speed.
func WithProfile() Option { return func(o *loadOptions) { o.profile = true } }

// WithLayout forces the kernel layout: "gpu" (kernels that spread each
// product over many invocations with coalesced loads) or "cpu" (kernels for
// devices that run a workgroup as SIMD fibres, such as lavapipe; they need
// subgroup arithmetic). "auto", the default, picks the CPU layout on CPU
// devices that can run it and the GPU layout elsewhere. Load fails on any
// other value, and with "cpu" on a device without subgroup arithmetic.
func WithLayout(layout string) Option { return func(o *loadOptions) { o.layout = layout } }

// WithIntegerDot chooses where the GPU layout's Q4_0 and Q8_0 products
// round x to 8 bits a 32-column block and sum each block in exact integer
// dot products. "on" takes them wherever the device has them at all (Load
// fails elsewhere, and in the CPU layout) for the products of a norm's
// output (Q, K and V, gate and up, the logits), whose q8 rows the norm
// writes in its own dispatch, so a step has no more dispatches than
// without; "all" for every product, at a dispatch more for each other
// product's x; "auto", the default, is "on" where the device accelerates
// packed 4×int8 dot products and the file has a Q4_0 or Q8_0 matrix, and
// "off" elsewhere; "off" nowhere. Their
// outputs differ from the f32 products by the rounding of x (an NMSE near
// 3e-5 a product on random data), and decode still equals chunked prefill
// bit for bit.
func WithIntegerDot(choice string) Option { return func(o *loadOptions) { o.intDot = choice } }

// WithCoopMat chooses whether the GPU layout's prefill (chunks of 16
// tokens or more: the products, and the attention of rings without sinks
// at head dims that are multiples of 32 up to 256) runs on cooperative
// matrices, the tensor cores or matrix units, through
// VK_KHR_cooperative_matrix (else VK_NV_cooperative_matrix), with the
// operands rounded to f16 and summed in f32. "off", the default, keeps
// prefill bit-identical to decode; "auto" takes them where the device
// offers them; "on" too, and Load fails elsewhere; "khr" and "nv" are "on"
// with that one extension; "emulate" runs the same kernels without the
// extension (slowly: for checking a device's results). Decode is never
// affected. The kernels have run on Mesa's lavapipe (VK_KHR) but not yet on
// a GPU, which is why "off" is the default; Load checks them against their
// emulation on one product and one attention first, and where the two disagree "auto" leaves
// them off (Model.Notes says why) and "on" fails.
func WithCoopMat(choice string) Option { return func(o *loadOptions) { o.coopmat = choice } }

// Model is a model loaded onto a device. Sessions made from it may be used
// from different goroutines.
type Model struct {
	Config Config
	// Device is the device the model runs on.
	Device DeviceInfo
	// Notice is a line worth telling the user about the device choice (a CPU
	// device, say), or "".
	Notice string
	// Notes lists what the user should be told about the load: conversions
	// of tensor types without a kernel, a kernel layout the device could not
	// run. vkrun never falls back silently; print them.
	Notes []string
	// LoadTime is how long Load took.
	LoadTime time.Duration

	file *loader.Model
	em   *engine.Model
	in   *vk.Instance
	dev  *vk.Device

	mu       sync.Mutex
	sessions map[*Session]struct{}
	batches  map[*Batch]struct{}
	closed   bool
}

// Load opens a GGUF file or a safetensors directory and uploads the model to
// a Vulkan device. ctx cancels the load between tensors.
func Load(ctx context.Context, path string, opts ...Option) (*Model, error) {
	start := time.Now()
	o := loadOptions{window: -1, device: os.Getenv(vk.DeviceEnv)}
	for _, opt := range opts {
		opt(&o)
	}
	if o.kv < 0 {
		return nil, fmt.Errorf("vkrun: KV precision must be f16 or f32")
	}
	layout, err := ops.ParseLayout(o.layout)
	if err != nil {
		return nil, fmt.Errorf("vkrun: kernel layout must be auto, gpu or cpu, not %q", o.layout)
	}
	dot, err := ops.ParseDot(o.intDot)
	if err != nil {
		return nil, fmt.Errorf("vkrun: integer dot must be auto, on, all or off, not %q", o.intDot)
	}
	coopmat, err := ops.ParseCoopMat(o.coopmat)
	if err != nil {
		return nil, fmt.Errorf("vkrun: cooperative matrix must be off, auto, on, khr, nv or emulate, not %q", o.coopmat)
	}
	if o.window < -1 || o.chunk < 0 || o.context < 0 || o.keep < 0 {
		return nil, fmt.Errorf("vkrun: window, chunk, context and keep must not be negative")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var lopts []loader.Option
	if o.window >= 0 {
		lopts = append(lopts, loader.WithWindow(o.window))
	}
	file, err := loader.Open(path, lopts...)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: file.Config, file: file, sessions: map[*Session]struct{}{}, batches: map[*Batch]struct{}{}}
	if err := m.open(o); err != nil {
		m.Close()
		return nil, err
	}
	progress := o.progress
	eopts := engine.Options{KV: o.kv, Chunk: o.chunk, Context: o.context, Keep: o.keep, Profile: o.profile, Layout: layout, Dot: dot, CoopMat: coopmat,
		Progress: func(done, total uint64) {
			if progress != nil {
				progress(done, total)
			}
		}}
	eopts.Cancelled = ctx.Err // checked between tensors; engine.Load frees what it made
	em, err := engine.Load(m.dev, file, eopts)
	if err != nil {
		m.Close()
		return nil, err
	}
	m.em = em
	m.Notes = em.Notes
	m.LoadTime = time.Since(start)
	return m, nil
}

// open creates or adopts the Vulkan instance and device.
func (m *Model) open(o loadOptions) error {
	var err error
	if x := o.external; x != nil {
		if m.in, err = vk.WrapInstance(x.Instance, vk.Version(x.APIVersion)); err != nil {
			return err
		}
		m.dev, err = m.in.WrapDevice(vk.ExternalDevice{PhysicalDevice: x.PhysicalDevice, Device: x.Device,
			Queue: x.Queue, QueueFamily: x.QueueFamily}, vk.DeviceOptions{})
		if err != nil {
			return err
		}
		m.Device = m.dev.Info
		return nil
	}
	if m.in, err = vk.NewInstance(vk.InstanceOptions{Validation: o.validation}); err != nil {
		return err
	}
	devs, err := m.in.Devices()
	if err != nil {
		return err
	}
	info, notice, err := vk.Choose(devs, o.device)
	if err != nil {
		return err
	}
	if m.dev, err = m.in.NewDevice(info, vk.DeviceOptions{}); err != nil {
		return err
	}
	m.Device, m.Notice = info, notice
	return nil
}

// ChatTemplate is the file's tokenizer.chat_template (a Jinja template), or "".
func (m *Model) ChatTemplate() string {
	if m.file.GGUF == nil {
		return ""
	}
	t, _ := m.file.GGUF.String("tokenizer.chat_template")
	return t
}

// Tokenizer is the model's tokenizer (nil if the file has none).
func (m *Model) Tokenizer() *Tokenizer { return m.file.Tokenizer }

// LayerCache is one layer's KV cache: the keys a query attends to (Window;
// 0 for a global layer, which attends to every key) and the positions the
// layer retains (Slots: W for a ring, the context for a global layer).
type LayerCache struct {
	Window, Slots int
}

// Cache is each layer's KV cache layout, as every session allocates it.
func (m *Model) Cache() []LayerCache {
	out := make([]LayerCache, len(m.em.Cache))
	for i, c := range m.em.Cache {
		out[i] = LayerCache{Window: c.Window, Slots: c.Slots}
	}
	return out
}

// Context is the longest sequence a session can hold: the slots of the
// global layers' caches, or 0 when every layer slides a window, so that
// sequences run on without end.
func (m *Model) Context() int { return m.em.Context }

// KVBytes is the device memory of one session's KV cache, in bytes:
// Σ_l slots_l·kvHeads·headDim·2·(2 for f16, 4 for f32).
func (m *Model) KVBytes() uint64 { return m.em.KVBytes() }

// WeightBytes is the device memory the model's weights take (matrices in
// their device layout and norm vectors), in bytes. Sessions add their KV
// caches (Session.KVBytes) and activations.
func (m *Model) WeightBytes() uint64 { return m.em.WeightBytes }

// AttentionWorkgroups is the workgroups that attend for one decode query
// after depth tokens, per layer: how much of a GPU one decode step's
// attention can fill.
func (m *Model) AttentionWorkgroups(depth int) int { return m.em.AttentionWorkgroups(depth) }

// Layout is the kernel layout the model runs: "gpu" or "cpu" (see
// WithLayout).
func (m *Model) Layout() string { return m.em.Library().Layout().String() }

// IntegerDot is where the model's Q4_0 and Q8_0 products take the
// integer-dot kernels (see WithIntegerDot): "off", "on" (the products of a
// norm's output) or "all".
func (m *Model) IntegerDot() string {
	switch on, all := m.em.Library().IntegerDot(); {
	case all:
		return "all"
	case on:
		return "on"
	}
	return "off"
}

// CoopMat is how the model's prefill tiles run (see WithCoopMat): "off",
// "khr" (VK_KHR_cooperative_matrix), "nv" (VK_NV_cooperative_matrix) or
// "emulated".
func (m *Model) CoopMat() string { return m.em.Library().CoopMat() }

// Kernels lists the kernel choices made so far, sorted by op, type and
// kernel. Kernels are chosen as sessions first run each step shape, so
// call it after generating: a model that has only been loaded has made
// none.
func (m *Model) Kernels() []KernelPick { return m.em.Library().Picks() }

// ValidationMessages returns what the validation layer reported, when it is on.
func (m *Model) ValidationMessages() []vk.Message {
	if m.in == nil {
		return nil
	}
	return m.in.Messages()
}

// NewSession starts a sequence with its own KV ring cache.
func (m *Model) NewSession() (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrModelClosed
	}
	es, err := m.em.NewSession()
	if err != nil {
		return nil, err
	}
	s := &Session{m: m, es: es, pending: -1}
	m.sessions[s] = struct{}{}
	return s, nil
}

// Close closes the model's sessions and batches and frees everything vkrun made on the
// device; a device given with WithVulkan stays alive. Idempotent.
func (m *Model) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	sessions, batches := m.sessions, m.batches
	m.sessions, m.batches = nil, nil
	m.mu.Unlock()
	for b := range batches {
		b.close()
	}
	for s := range sessions {
		s.close()
	}
	if m.em != nil {
		m.em.Close()
	}
	var err error
	if m.dev != nil {
		err = m.dev.Close()
	}
	if m.in != nil {
		if e := m.in.Close(); err == nil {
			err = e
		}
	}
	if m.file != nil {
		if e := m.file.Close(); err == nil {
			err = e
		}
	}
	return err
}
