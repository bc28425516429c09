package shaders

import (
	"embed"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/vkrun/vkrun/vk"
)

//go:embed spv/*.spv
var spvFS embed.FS

// Kernel is one compute pipeline: shaders/<File>.comp compiled to
// spv/<File>.spv, its storage-buffer bindings in order, and the Go struct
// that mirrors its push-constant block (checked against the SPIR-V by a
// test). Variants of one entry point share a File and differ in Spec.
type Kernel struct {
	Name     string // the pipeline's name, unique
	File     string // the shader's file stem; "" means Name
	Bindings []vk.Access
	Params   reflect.Type
	// Spec are further specialization constants (IDs ≥ 1) with the fixed
	// values this kernel's pipeline is built with, e.g. tile sizes.
	Spec []vk.SpecConstant
	// Width, when not 0, is the kernel's workgroup width on every device,
	// whatever the library's (its shared memory or algorithm depends on it).
	Width uint32
	// OnCPU is the kernel's workgroup width on CPU devices when no width is
	// forced. A kernel that sets it must have a grid independent of the
	// workgroup width.
	OnCPU CPUWidth
	// Subgroup makes a workgroup exactly one subgroup: its width is the
	// device's subgroup size on every device, and the kernel may use
	// subgroup arithmetic. A device without subgroup arithmetic in compute
	// shaders gets no pipeline for it (Library.Has), and its op runs
	// another kernel.
	Subgroup bool
}

// CPUWidth chooses a kernel's workgroup width on CPU devices.
type CPUWidth uint8

const (
	CPUDefault CPUWidth = iota // the library's width
	CPUNarrow                  // CPUWG
)

// Source is the shader's file stem.
func (k Kernel) Source() string {
	if k.File != "" {
		return k.File
	}
	return k.Name
}

// SPIRV returns the kernel's embedded SPIR-V.
func (k Kernel) SPIRV() ([]byte, error) {
	b, err := spvFS.ReadFile("spv/" + k.Source() + ".spv")
	if err != nil {
		return nil, fmt.Errorf("shaders: %s: %w", k.Name, err)
	}
	return b, nil
}

// Desc is the pipeline description for a workgroup width of wg invocations
// (specialization constant 0, a power of two), followed by k.Spec.
func (k Kernel) Desc(wg uint32) (vk.PipelineDesc, error) {
	code, err := k.SPIRV()
	if err != nil {
		return vk.PipelineDesc{}, err
	}
	return vk.PipelineDesc{
		Name:             k.Name,
		SPIRV:            code,
		Bindings:         k.Bindings,
		PushConstantSize: uint32(k.Params.Size()),
		Spec:             append([]vk.SpecConstant{{ID: 0, Value: wg}}, k.Spec...),
	}, nil
}

var rrw = []vk.Access{vk.Read, vk.Read, vk.Write}

// Kernels lists every kernel. Each op's file adds its kernels with register
// from init, so ops live in separate files.
var Kernels []Kernel

func register(ks ...Kernel) {
	Kernels = append(Kernels, ks...)
}

// The first kernels. Each comment gives the contract; shapes are row-major.
var (
	// MatVecF32: y (rows,) = W (rows, cols) @ x (cols,), all f32.
	MatVecF32 = Kernel{Name: "matvec_f32", Bindings: rrw, Params: reflect.TypeFor[MatVecParams]()}
	// Add: z (n,) = x (n,) + y (n,), f32.
	Add = Kernel{Name: "add", Bindings: rrw, Params: reflect.TypeFor[AddParams]()}
	// RMSNorm: y (rows, n) = x / sqrt(mean(x²) + eps) * w (n,), per row, f32.
	RMSNorm = Kernel{Name: "rmsnorm", Bindings: rrw, Params: reflect.TypeFor[RMSNormParams]()}
)

func init() { register(MatVecF32, Add, RMSNorm) }

// MatVecParams mirrors matvec.glsl's push constants.
type MatVecParams struct {
	Rows, Cols       uint32
	WOff, XOff, YOff uint32 // element offsets within each binding
}

// AddParams mirrors add.comp's push constants.
type AddParams struct {
	N                uint32
	XOff, YOff, ZOff uint32
}

// RMSNormParams mirrors rmsnorm.comp's push constants.
type RMSNormParams struct {
	N, Rows          uint32
	Eps              float32
	XOff, WOff, YOff uint32
}

// Push returns p's bytes as push-constant data. T must be a struct of
// 4-byte fields, as every Params type here is.
func Push[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}
