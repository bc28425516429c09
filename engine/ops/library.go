package ops

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// Library is one device's kernel set: the kernel layout, chosen once from
// the device type (or forced) and its probed features, and a pipeline for
// every kernel it has run, built on first use through the device's
// pipeline cache. Which kernel serves which op and weight type is
// shaders.WeightKernel's table; the library only picks among a kernel's
// shape variants (Pick records each choice), and never falls back silently.
type Library struct {
	Device *vk.Device
	// WG is the workgroup width of every kernel that is not one subgroup
	// wide (shaders.Kernel.Subgroup).
	WG uint32

	layout shaders.Layout
	notes  []string
	splits int  // Options.AttentionSplits
	dot    bool // Options.Dot resolved: the integer-dot matmul kernels
	dotAll bool // and for every product, not only those of a norm's output (AllDot)
	// Options.CoopMat resolved: prefill tiles on cooperative matrices
	// (shaders.MatMulCoopMat, AttentionCoopMat) in configuration coopmatAt
	// (shaders.EmulatedCoopMat: the emulated modules).
	coopmat   bool
	coopmatAt shaders.CoopMat

	mu    sync.Mutex // guards pipes and picks
	pipes map[string]*vk.Pipeline
	picks map[Pick]bool
}

// Options configure NewLibrary.
type Options struct {
	// WG is the workgroup width, a power of two (0: DefaultWG).
	WG uint32
	// Layout forces a kernel layout; AutoLayout picks CPULayout on CPU
	// devices with subgroup arithmetic and GPULayout elsewhere.
	Layout LayoutChoice
	// AttentionSplits forces the GPU layout's attention to cut every band
	// into this many splits (0: chosen from the shape; 1: one pass, no
	// merge), to compare the split-K kernel with the single pass.
	AttentionSplits int
	// Dot is where the GPU layout's Q4_0 and Q8_0 products take the
	// integer-dot kernels (shaders.MatMulDot: x rounded to 8 bits a
	// 32-column block). See DotChoice.
	Dot DotChoice
	// CoopMat is whether the GPU layout's prefill runs on cooperative
	// matrices (shaders.MatMulCoopMat and AttentionCoopMat: operands
	// rounded to f16, so prefill no longer equals decode bit for bit). See
	// CoopMatChoice.
	CoopMat CoopMatChoice
}

// CoopMatChoice is Options.CoopMat.
//
// NoCoopMat, the default, keeps every product exact: chunked prefill
// equals decode bit for bit. AutoCoopMat takes the cooperative-matrix
// tiles where the device offers them and the exact tiles elsewhere, with a
// note where the device offers an extension the library cannot use. It
// needs VK_KHR_cooperative_matrix (preferred) or VK_NV_cooperative_matrix
// with an f16 shape into f32 that tiles the kernels (shaders.ChooseCoopMat)
// at one subgroup size, shaderFloat16 and vulkanMemoryModel, the library at
// shaders.CoopMatWG, and a check product and attention that agree with the
// emulated modules at NewLibrary. ForceCoopMat is an error where any of
// that is missing; ForceCoopMatKHR and ForceCoopMatNV are ForceCoopMat on
// the one extension. EmulateCoopMat runs the same kernels' emulated
// modules on any device with shaderFloat16: slow, for tests and for
// checking a device's results.
type CoopMatChoice int

const (
	NoCoopMat CoopMatChoice = iota
	AutoCoopMat
	ForceCoopMat
	EmulateCoopMat
	ForceCoopMatKHR
	ForceCoopMatNV
)

// ParseCoopMat reads a cooperative-matrix choice: "off", "auto", "on"
// (ForceCoopMat), "khr", "nv" or "emulate".
func ParseCoopMat(s string) (CoopMatChoice, error) {
	switch s {
	case "", "off":
		return NoCoopMat, nil
	case "auto":
		return AutoCoopMat, nil
	case "on":
		return ForceCoopMat, nil
	case "khr":
		return ForceCoopMatKHR, nil
	case "nv":
		return ForceCoopMatNV, nil
	case "emulate":
		return EmulateCoopMat, nil
	}
	return NoCoopMat, fmt.Errorf("cooperative matrix %q: want off, auto, on, khr, nv or emulate", s)
}

// DotChoice is Options.Dot: where the integer-dot kernels serve.
//
// With AutoDot (where the device accelerates the packed 4×int8 dot
// product) and ForceDot (wherever it has shaderIntegerDotProduct at all;
// an error elsewhere) they serve the products whose x is a norm's output,
// whose q8 rows the norm writes in its own dispatch: no product pays a
// dispatch to round its x, and the others (the attention output's, the
// FFN hidden vector's) take the f32 kernels. AllDot serves every product,
// rounding x in a dispatch of its own where no norm made its q8 rows.
// NoDot serves none. Either way a product's kernel depends on where its x
// comes from, never on the token count, so chunked prefill still equals
// decode bit for bit.
type DotChoice int

const (
	AutoDot DotChoice = iota
	ForceDot
	AllDot
	NoDot
)

// ParseDot reads an integer-dot choice: "auto", "on" (ForceDot), "all" or
// "off".
func ParseDot(s string) (DotChoice, error) {
	switch s {
	case "", "auto":
		return AutoDot, nil
	case "on":
		return ForceDot, nil
	case "all":
		return AllDot, nil
	case "off":
		return NoDot, nil
	}
	return AutoDot, fmt.Errorf("integer dot %q: want auto, on, all or off", s)
}

// LayoutChoice is Options.Layout.
type LayoutChoice int

const (
	AutoLayout LayoutChoice = iota
	ForceGPU
	ForceCPU
)

// ParseLayout reads a layout choice: "auto", "gpu" or "cpu".
func ParseLayout(s string) (LayoutChoice, error) {
	switch s {
	case "", "auto":
		return AutoLayout, nil
	case "gpu":
		return ForceGPU, nil
	case "cpu":
		return ForceCPU, nil
	}
	return 0, fmt.Errorf("ops: unknown kernel layout %q (auto, gpu or cpu)", s)
}

// DefaultWG is the workgroup width: a multiple of every common subgroup size
// (8 on lavapipe, 32 on NVIDIA, 32/64 on AMD, 8–32 on Intel).
const DefaultWG = 128

// NewLibrary chooses d's kernel set. Pipelines are built as ops first use
// them.
func NewLibrary(d *vk.Device, opts Options) (*Library, error) {
	wg := opts.WG
	if wg == 0 {
		wg = DefaultWG
	}
	if wg&(wg-1) != 0 || wg > d.Info.MaxWorkgroupSize[0] || wg > d.Info.MaxWorkgroupInvocations {
		return nil, fmt.Errorf("ops: workgroup width %d is not a power of two within the device's limits", wg)
	}
	if opts.AttentionSplits < 0 || opts.AttentionSplits > maxSplits {
		return nil, fmt.Errorf("ops: %d attention splits (0 to %d)", opts.AttentionSplits, maxSplits)
	}
	l := &Library{Device: d, WG: wg, pipes: map[string]*vk.Pipeline{}, picks: map[Pick]bool{}, splits: opts.AttentionSplits}
	_, subgroups, _ := l.subgroupWidth()
	switch opts.Layout {
	case ForceGPU:
		l.layout = shaders.GPULayout
	case ForceCPU:
		if !subgroups {
			return nil, fmt.Errorf("ops: the CPU kernel layout needs subgroup arithmetic in compute shaders with a workgroup of one whole subgroup (a power-of-two size, fixed or required through subgroup size control), which %s cannot give", d.Info.Name)
		}
		l.layout = shaders.CPULayout
	default:
		if d.Info.Type == vk.DeviceCPU {
			if subgroups {
				l.layout = shaders.CPULayout
			} else {
				l.notes = append(l.notes, fmt.Sprintf("%s is a CPU device without subgroup arithmetic: it runs the GPU kernel layout", d.Info.Name))
			}
		}
	}
	canDot := l.layout == shaders.GPULayout && d.Features.IntegerDotProduct && l.Shuffles()
	switch opts.Dot {
	case ForceDot, AllDot:
		if !canDot {
			return nil, fmt.Errorf("ops: the integer-dot matmul needs the GPU kernel layout, shaderIntegerDotProduct and subgroup shuffles with full subgroups, which %s (%s layout) cannot give", d.Info.Name, l.layout)
		}
		l.dot, l.dotAll = true, opts.Dot == AllDot
	case AutoDot:
		l.dot = canDot && d.Features.IntegerDot4x8Accelerated
	}
	if err := l.chooseCoopMat(opts.CoopMat); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// chooseCoopMat resolves Options.CoopMat.
func (l *Library) chooseCoopMat(c CoopMatChoice) error {
	if c == NoCoopMat {
		return nil
	}
	d := l.Device
	tile, _ := shaders.WeightKernel(shaders.OpMatMulTiled, loader.F32, shaders.GPULayout)
	tile, _ = shaders.MatMulCoopMat(tile, shaders.EmulatedCoopMat)
	var why string
	switch shared := shaders.MatMulSharedBytes(tile, loader.F32, shaders.CoopMatWG); {
	case l.layout != shaders.GPULayout:
		why = "the GPU kernel layout"
	case l.WG != shaders.CoopMatWG:
		why = fmt.Sprintf("a workgroup width of %d (this library's is %d)", shaders.CoopMatWG, l.WG)
	case !d.Features.Float16:
		why = "shaderFloat16"
	case shared > d.Info.MaxComputeSharedMemorySize:
		why = fmt.Sprintf("%d bytes of shared memory a workgroup (%d here)", shared, d.Info.MaxComputeSharedMemorySize)
	}
	if why == "" && c == EmulateCoopMat {
		l.coopmat, l.coopmatAt = true, shaders.EmulatedCoopMat
		return nil
	}
	offered := d.Features.CooperativeMatrixKHR || d.Features.CooperativeMatrixNV
	if why == "" {
		ats, whyNot := l.coopMatConfigs(c)
		why = whyNot
		var failed []string
		for _, at := range ats {
			// The kernels have never run on such a device in CI: check them
			// against their emulated modules here before any product takes
			// them, and take the next extension where they disagree.
			l.coopmat, l.coopmatAt = true, at
			nmse, err := l.checkCoopMat()
			bad := ""
			if err != nil {
				bad = fmt.Sprintf("they failed: %v", err)
			}
			for i, e := range nmse {
				if !(e <= maxCoopMatCheckNMSE) && bad == "" { // NaN fails too
					bad = fmt.Sprintf("the check %s's NMSE against the emulation is %.3g, the bound %g", []string{"product", "attention"}[i], e, maxCoopMatCheckNMSE)
				}
			}
			if bad == "" {
				return nil
			}
			l.coopmat, l.coopmatAt = false, shaders.CoopMat{}
			failed = append(failed, fmt.Sprintf("in %v %s", at, bad))
		}
		if len(failed) != 0 {
			why = "kernels that agree with their emulation (" + strings.Join(failed, "; ") + ")"
		}
	}
	if c == AutoCoopMat {
		if offered {
			l.notes = append(l.notes, fmt.Sprintf("cooperative-matrix prefill is off: it needs %s", why))
		}
		return nil
	}
	return fmt.Errorf("ops: cooperative-matrix prefill needs %s, which %s (%s layout) cannot give", why, d.Info.Name, l.layout)
}

// coopMatConfigs are the cooperative-matrix configurations the device
// takes for choice c, best first: VK_KHR_cooperative_matrix where it is
// offered, then VK_NV_cooperative_matrix (or only the one ForceCoopMatKHR or
// ForceCoopMatNV names), each in the shape and grid shaders.ChooseCoopMat
// picks for the subgroup size the pipelines will run at. whyNot says what
// is missing where there is none.
func (l *Library) coopMatConfigs(c CoopMatChoice) (ats []shaders.CoopMat, whyNot string) {
	d := l.Device
	info := d.Info
	khr := d.Features.CooperativeMatrixKHR && c != ForceCoopMatNV
	nv := d.Features.CooperativeMatrixNV && c != ForceCoopMatKHR
	if !khr && !nv {
		switch c {
		case ForceCoopMatKHR:
			return nil, "VK_KHR_cooperative_matrix with shaderFloat16 and vulkanMemoryModel"
		case ForceCoopMatNV:
			return nil, "VK_NV_cooperative_matrix with shaderFloat16 and vulkanMemoryModel"
		}
		return nil, "VK_KHR_cooperative_matrix or VK_NV_cooperative_matrix with shaderFloat16 and vulkanMemoryModel"
	}
	// The grid's subgroup size: the device's one, or, where it can vary
	// and a pipeline can require one (the pipelines then do), 32 where the
	// range has it (NVIDIA's only size, AMD's wave32) and the default
	// elsewhere.
	sg := info.SubgroupSize
	if info.MinSubgroupSize != info.MaxSubgroupSize {
		if !(d.Features.SubgroupSizeControl && info.RequiredSubgroupSizeInCompute) {
			return nil, fmt.Sprintf("one subgroup size (%d to %d here, and no required subgroup size in compute shaders)", info.MinSubgroupSize, info.MaxSubgroupSize)
		}
		if info.MinSubgroupSize <= 32 && 32 <= info.MaxSubgroupSize {
			sg = 32
		}
	}
	var listed []string
	for _, e := range []struct {
		on     bool
		ext    shaders.CoopMatExt
		shapes []vk.CooperativeMatrixShape
	}{{khr, shaders.CoopMatKHR, info.CooperativeMatrixKHRShapes}, {nv, shaders.CoopMatNV, info.CooperativeMatrixNVShapes}} {
		if !e.on {
			continue
		}
		if at, ok := shaders.ChooseCoopMat(e.ext, e.shapes, sg); ok {
			ats = append(ats, at)
		} else {
			listed = append(listed, fmt.Sprintf("%s %v", e.ext, e.shapes))
		}
	}
	if len(ats) == 0 {
		return nil, fmt.Sprintf("an f16 shape into f32 whose grid of subgroups of %d tiles the kernels (listed: %s)", sg, strings.Join(listed, "; "))
	}
	return ats, ""
}

// CoopMat is how the GPU layout's prefill tiles run (Options.CoopMat):
// "off" (the exact tiles), "khr" (VK_KHR_cooperative_matrix), "nv"
// (VK_NV_cooperative_matrix) or "emulated".
func (l *Library) CoopMat() string {
	if !l.coopmat {
		return "off"
	}
	return l.coopmatAt.Ext.String()
}

// CoopMatConfig is the cooperative-matrix configuration the prefill tiles
// run in (shape and grid of subgroups), with ok false where CoopMat is
// "off".
func (l *Library) CoopMatConfig() (at shaders.CoopMat, ok bool) { return l.coopmatAt, l.coopmat }

// IntegerDot reports whether the GPU layout's Q4_0 and Q8_0 products take
// the integer-dot kernels (Options.Dot), and whether all of them do
// (AllDot) or only those of a norm's output.
func (l *Library) IntegerDot() (on, all bool) { return l.dot, l.dotAll }

// Layout is the library's kernel layout.
func (l *Library) Layout() shaders.Layout { return l.layout }

// Notes are what the user should know about the kernel set (a layout the
// device could not run).
func (l *Library) Notes() []string { return slices.Clone(l.notes) }

// subgroupWidth is the width of Subgroup kernels on this device, whether
// it can run them, and whether their pipelines must request that size.
// They need subgroup arithmetic in compute shaders, a power-of-two size
// within the workgroup limits, and a workgroup that is one whole subgroup:
// where the subgroup size can vary (Intel: 8 to 32; AMD: 32 or 64), that
// takes VK_EXT_subgroup_size_control's required size for compute shaders.
// Where the device offers it, the size is requested even when it cannot
// vary, so the path is exercised everywhere (lavapipe included).
func (l *Library) subgroupWidth() (width uint32, ok, require bool) {
	info := l.Device.Info
	s := info.SubgroupSize
	ok = l.Device.Features.SubgroupArithmetic && s != 0 && s&(s-1) == 0 &&
		s <= info.MaxWorkgroupSize[0] && s <= info.MaxWorkgroupInvocations
	control := l.Device.Features.SubgroupSizeControl && info.RequiredSubgroupSizeInCompute &&
		info.MinSubgroupSize <= s && s <= info.MaxSubgroupSize
	if info.MinSubgroupSize != info.MaxSubgroupSize && !control {
		ok = false
	}
	return s, ok, ok && control
}

// Shuffles reports whether this device runs kernels with subgroup
// shuffles among groups of up to 8 invocations (shaders.Kernel.Shuffles)
// at the library's workgroup width: shuffles in compute shaders, full
// subgroups on request, and every subgroup size it may choose at least 8
// and a divisor of WG (then each run of 8 aligned invocations of a
// subgroup lies in it whole).
func (l *Library) Shuffles() bool {
	info, f := l.Device.Info, l.Device.Features
	lo, hi := info.MinSubgroupSize, info.MaxSubgroupSize
	return f.SubgroupShuffle && f.ComputeFullSubgroups && lo >= 8 && lo&(lo-1) == 0 &&
		hi&(hi-1) == 0 && hi <= l.WG && l.WG%hi == 0
}

// SubgroupSize is the workgroup width of the kernels that are one
// subgroup (shaders.Kernel.Subgroup), and whether their pipelines request
// it through subgroup size control.
func (l *Library) SubgroupSize() (width uint32, required bool) {
	w, _, req := l.subgroupWidth()
	return w, req
}

// width is k's workgroup width on this device, or an error if the device
// cannot run k.
func (l *Library) width(k shaders.Kernel) (uint32, error) {
	if !k.Subgroup {
		return l.WG, nil
	}
	s, ok, _ := l.subgroupWidth()
	if !ok {
		return 0, fmt.Errorf("ops: %s needs subgroup arithmetic in compute shaders with a workgroup of one whole subgroup, which %s cannot give", k.Name, l.Device.Info.Name)
	}
	return s, nil
}

// Pipeline returns k's pipeline, building it on first use.
func (l *Library) Pipeline(k shaders.Kernel) (*vk.Pipeline, error) {
	wg, err := l.width(k)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.pipes[k.Name]; p != nil {
		return p, nil
	}
	desc, err := k.Desc(wg)
	if err != nil {
		return nil, err
	}
	if _, _, require := l.subgroupWidth(); k.Subgroup && require {
		desc.RequiredSubgroupSize = wg
	}
	if k.CoopMat != shaders.CoopMatNone {
		f := l.Device.Features
		if on := (k.CoopMat == shaders.CoopMatNV && f.CooperativeMatrixNV) || (k.CoopMat == shaders.CoopMatKHR && f.CooperativeMatrixKHR); !on {
			return nil, fmt.Errorf("ops: %s needs the %s cooperative-matrix extension, which %s does not offer", k.Name, k.CoopMat, l.Device.Info.Name)
		}
		// The kernel's grid of subgroups assumes a subgroup size: pin it
		// where the device may choose another.
		if info := l.Device.Info; info.MinSubgroupSize != info.MaxSubgroupSize {
			desc.RequiredSubgroupSize = k.CoopMatSubgroup()
		}
	}
	if k.Half && !l.Device.Features.Float16 {
		return nil, fmt.Errorf("ops: %s needs shaderFloat16, which %s does not offer", k.Name, l.Device.Info.Name)
	}
	if k.Dot && !l.Device.Features.IntegerDotProduct {
		return nil, fmt.Errorf("ops: %s needs shaderIntegerDotProduct, which %s does not offer", k.Name, l.Device.Info.Name)
	}
	if k.Shuffles {
		if !l.Shuffles() {
			return nil, fmt.Errorf("ops: %s needs subgroup shuffles in compute shaders and full subgroups of 8 to %d invocations, which %s cannot give", k.Name, l.WG, l.Device.Info.Name)
		}
		desc.FullSubgroups = true
	}
	p, err := l.Device.NewPipeline(desc)
	if err != nil {
		return nil, err
	}
	l.pipes[k.Name] = p
	return p, nil
}

// Pick is one kernel choice the library made: for Op on Type (a weight
// type, or a KV ring's element type), the kernel the table names and the
// kernel that ran (a variant of it with other specialization constants, for
// Reason), equal when the shapes suit the table's kernel as it is.
type Pick struct {
	Op, Type      string
	Table, Kernel string
	Reason        string
}

func (l *Library) record(p Pick) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.picks[p] = true
}

// Picks lists every choice recorded so far, sorted.
func (l *Library) Picks() []Pick {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Pick, 0, len(l.picks))
	for p := range l.picks {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pick) int {
		return cmp.Or(cmp.Compare(a.Op, b.Op), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Kernel, b.Kernel), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}

// WeightKernel is the kernel the table names for op on weight type t in
// this library's layout, or an error naming the type.
func (l *Library) WeightKernel(op shaders.Op, t loader.DType) (shaders.Kernel, error) {
	k, ok := shaders.WeightKernel(op, t, l.layout)
	if !ok {
		return shaders.Kernel{}, fmt.Errorf("ops: no %s kernel for weight type %s: %w", op, t, loader.ErrUnsupportedType)
	}
	return k, nil
}

// Close destroys the pipelines. Idempotent.
func (l *Library) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for n, p := range l.pipes {
		p.Close()
		delete(l.pipes, n)
	}
}

// Plan records ops into a Sequence and owns the descriptor sets they bind.
// Build it once and submit the sequence as often as needed; Close frees the
// sets once the GPU is done with them.
//
// Like vk.Sequence, a plan keeps its first error: an op that fails records
// its error and every later op records nothing, so a forward pass reads as
// the math does and checks Err once.
type Plan struct {
	lib     *Library
	Seq     *vk.Sequence
	sets    []*vk.DescriptorSet
	scratch Tensor       // SetScratch's, or the largest of own
	own     []*vk.Buffer // scratch the plan allocated itself
	q8      Tensor       // SetQ8Scratch's, or the largest q8 activations of own (quantizeQ8)
	q8src   q8Source     // whose q8 rows q8 holds
	err     error
}

// SetScratch gives the plan device memory for the scratch its ops need
// (Library.AttentionScratch), so that plans that never run at once can
// share one buffer; without it a plan allocates its own.
func (p *Plan) SetScratch(t Tensor) { p.scratch = t }

// SetQ8Scratch gives the plan device memory for the q8 rows that its
// integer-dot products round x to (Library.Q8Scratch), so that plans that
// never run at once can share one buffer; without it, or where it is too
// small, a plan allocates its own.
func (p *Plan) SetQ8Scratch(t Tensor) { p.q8 = t }

// Q8Scratch is the words of q8 rows that the integer-dot products of ntok
// tokens of at most cols columns need (Plan.SetQ8Scratch): 0 where the
// library takes no integer-dot kernel.
func (l *Library) Q8Scratch(ntok, cols int) uint64 {
	if !l.dot || ntok <= 0 || cols <= 0 {
		return 0
	}
	return uint64(ntok) * shaders.Q8RowWords(uint64(cols+31)/32*32)
}

// scratchFor returns at least n elements of scratch: SetScratch's tensor
// when it is large enough, else a buffer of the plan's own (kept until
// Close, since recorded dispatches refer to it).
func (p *Plan) scratchFor(n uint64) (Tensor, error) {
	if p.scratch.Buf != nil && p.scratch.Len >= n {
		return p.scratch, nil
	}
	b, err := p.lib.Device.NewBuffer("attention partials", 4*n, vk.DeviceMemory)
	if err != nil {
		return Tensor{}, err
	}
	p.own = append(p.own, b)
	p.scratch = F32(b)
	return p.scratch, nil
}

// NewPlan records into seq, which must be between Begin and End.
func (l *Library) NewPlan(seq *vk.Sequence) *Plan { return &Plan{lib: l, Seq: seq} }

// Err is the first error of any op recorded into the plan.
func (p *Plan) Err() error { return p.err }

// fail records err if it is the plan's first.
func (p *Plan) fail(err error) {
	if p.err == nil && err != nil {
		p.err = err
	}
}

// Close frees the plan's descriptor sets and its own scratch.
func (p *Plan) Close() {
	for _, s := range p.sets {
		s.Close()
	}
	p.sets = nil
	for _, b := range p.own {
		b.Close()
	}
	p.own = nil
	p.scratch, p.q8, p.q8src = Tensor{}, Tensor{}, q8Source{}
}

// Tensor names f32 elements [Off, Off+Len) of a buffer.
type Tensor struct {
	Buf      *vk.Buffer
	Off, Len uint64 // in elements
}

// F32 is all of b as f32 elements.
func F32(b *vk.Buffer) Tensor { return Tensor{Buf: b, Len: b.Size / 4} }

// Sub is elements [off, off+n) of t.
func (t Tensor) Sub(off, n uint64) Tensor { return Tensor{Buf: t.Buf, Off: t.Off + off, Len: n} }

var errShape = errors.New("shape mismatch")

// binding binds elements [start, start+n) of t (element size es bytes): the
// range starts at the aligned-down byte offset and the shader adds the
// returned element offset, so any element can start a binding.
func (p *Plan) binding(t Tensor, start, n, es uint64) (vk.Range, uint32, error) {
	info := &p.lib.Device.Info
	if t.Buf == nil {
		return vk.Range{}, 0, fmt.Errorf("nil buffer")
	}
	if start+n > t.Len || (t.Off+t.Len)*es > t.Buf.Size {
		return vk.Range{}, 0, fmt.Errorf("elements [%d, %d) of a %d-element tensor in %s (%d bytes)", start, start+n, t.Len, t.Buf.Name, t.Buf.Size)
	}
	byteOff := (t.Off + start) * es
	align := max(info.MinStorageBufferOffsetAlignment, 1)
	base := byteOff / align * align
	rem := byteOff - base
	if rem%es != 0 {
		return vk.Range{}, 0, fmt.Errorf("offset %d of %s cannot be bound with alignment %d", byteOff, t.Buf.Name, align)
	}
	size := rem + n*es
	if size > info.MaxStorageBufferRange {
		return vk.Range{}, 0, fmt.Errorf("%d bytes of %s exceed maxStorageBufferRange %d: %w", size, t.Buf.Name, info.MaxStorageBufferRange, vk.ErrTooLarge)
	}
	if rem/es > 1<<31 {
		return vk.Range{}, 0, fmt.Errorf("element offset %d too large", rem/es)
	}
	return t.Buf.Slice(base, size), uint32(rem / es), nil
}

// dispatch binds ranges to k and records it over n workgroups, folding a grid
// larger than maxComputeWorkGroupCount[0] into y (kernels use group_index()).
func (p *Plan) dispatch(k shaders.Kernel, n uint64, push []byte, ranges ...vk.Range) error {
	pipe, err := p.lib.Pipeline(k)
	if err != nil {
		return err
	}
	return p.dispatchPipe(pipe, n, push, ranges...)
}

// dispatchPipe is dispatch with a pipeline (a kernel's variant).
func (p *Plan) dispatchPipe(pipe *vk.Pipeline, n uint64, push []byte, ranges ...vk.Range) error {
	set, err := p.lib.Device.NewDescriptorSet(pipe, ranges...)
	if err != nil {
		return err
	}
	p.sets = append(p.sets, set)
	p.Seq.Dispatch(pipe, set, grid(n, p.lib.Device.Info.MaxWorkgroupCount), push)
	p.forgetWritten(pipe.Bindings, ranges)
	return nil
}

func grid(n uint64, limit [3]uint32) [3]uint32 {
	x := min(n, uint64(limit[0]), 65535)
	x = max(x, 1)
	return [3]uint32{uint32(x), uint32((n + x - 1) / x), 1}
}

// maxRows is how many rows of rowElems elements (es bytes each) fit one binding.
func (p *Plan) maxRows(rowElems, es uint64) uint64 {
	info := &p.lib.Device.Info
	slack := max(info.MinStorageBufferOffsetAlignment, 1)
	budget := info.MaxStorageBufferRange - slack
	return max(budget/(rowElems*es), 1)
}

// MatVec records y (rows,) = W (rows, cols) @ x (cols,). A W larger than one
// binding is split into row blocks, one dispatch each.
func (p *Plan) MatVec(w, x, y Tensor, rows, cols int) {
	if p.err == nil {
		p.fail(p.matVec(w, x, y, rows, cols))
	}
}

// matVec is MatVec, returning its error.
func (p *Plan) matVec(w, x, y Tensor, rows, cols int) error {
	r, c := uint64(rows), uint64(cols)
	if rows <= 0 || cols <= 0 || w.Len != r*c || x.Len != c || y.Len != r {
		return fmt.Errorf("ops: MatVec: W %d, x %d, y %d elements for (%d, %d): %w", w.Len, x.Len, y.Len, rows, cols, errShape)
	}
	xr, xo, err := p.binding(x, 0, c, 4)
	if err != nil {
		return fmt.Errorf("ops: MatVec x: %w", err)
	}
	step := p.maxRows(c, 4)
	for r0 := uint64(0); r0 < r; r0 += step {
		n := min(step, r-r0)
		wr, wo, err := p.binding(w, r0*c, n*c, 4)
		if err != nil {
			return fmt.Errorf("ops: MatVec W rows [%d, %d): %w", r0, r0+n, err)
		}
		yr, yo, err := p.binding(y, r0, n, 4)
		if err != nil {
			return fmt.Errorf("ops: MatVec y: %w", err)
		}
		pc := shaders.MatVecParams{Rows: uint32(n), Cols: uint32(c), WOff: wo, XOff: xo, YOff: yo}
		if err := p.dispatch(shaders.MatVecF32, n, shaders.Push(&pc), wr, xr, yr); err != nil {
			return err
		}
	}
	return nil
}

// AddBias records x (rows, n) += b (n,) in place: the bias b added to
// every row (Qwen 2.5's Q, K and V biases on q|k|v rows).
func (p *Plan) AddBias(x, b Tensor, rows, n int) {
	if p.err == nil {
		p.fail(p.addBias(x, b, rows, n))
	}
}

// addBias is AddBias, returning its error. x is bound in blocks of whole
// rows, so each block's element 0 is a row's first.
func (p *Plan) addBias(x, b Tensor, rows, n int) error {
	if rows <= 0 || n <= 0 || x.Len != uint64(rows)*uint64(n) || b.Len != uint64(n) {
		return fmt.Errorf("ops: AddBias: x %d, b %d elements for %d rows of %d: %w", x.Len, b.Len, rows, n, errShape)
	}
	wg := uint64(p.lib.WG)
	block := max(p.maxRows(uint64(n), 4), 1)
	br, bo, err := p.binding(b, 0, b.Len, 4)
	if err != nil {
		return fmt.Errorf("ops: AddBias b: %w", err)
	}
	for r0 := uint64(0); r0 < uint64(rows); r0 += block {
		m := min(block, uint64(rows)-r0) * uint64(n)
		xr, xo, err := p.binding(x, r0*uint64(n), m, 4)
		if err != nil {
			return fmt.Errorf("ops: AddBias x: %w", err)
		}
		pc := shaders.AddParams{N: uint32(m), XOff: xo, YOff: bo, ZOff: xo, YPeriod: uint32(n)}
		if err := p.dispatch(shaders.Add, (m+wg-1)/wg, shaders.Push(&pc), xr, br, xr); err != nil {
			return err
		}
	}
	return nil
}

// Add records z = x + y elementwise over n elements. z may be x or y.
func (p *Plan) Add(x, y, z Tensor) {
	if p.err == nil {
		p.fail(p.add(x, y, z))
	}
}

// add is Add, returning its error.
func (p *Plan) add(x, y, z Tensor) error {
	n := z.Len
	if x.Len != n || y.Len != n || n == 0 {
		return fmt.Errorf("ops: Add: x %d, y %d, z %d elements: %w", x.Len, y.Len, z.Len, errShape)
	}
	wg := uint64(p.lib.WG)
	step := p.maxRows(1, 4) / wg * wg
	for o := uint64(0); o < n; o += step {
		m := min(step, n-o)
		xr, xo, err := p.binding(x, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: Add x: %w", err)
		}
		yr, yo, err := p.binding(y, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: Add y: %w", err)
		}
		zr, zo, err := p.binding(z, o, m, 4)
		if err != nil {
			return fmt.Errorf("ops: Add z: %w", err)
		}
		pc := shaders.AddParams{N: uint32(m), XOff: xo, YOff: yo, ZOff: zo}
		if err := p.dispatch(shaders.Add, (m+wg-1)/wg, shaders.Push(&pc), xr, yr, zr); err != nil {
			return err
		}
	}
	return nil
}
