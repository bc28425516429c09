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

// Kernel is one compute entry point: shaders/<Name>.comp compiled to
// spv/<Name>.spv, its storage-buffer bindings in order, and the Go struct
// that mirrors its push-constant block (checked against the SPIR-V by a test).
type Kernel struct {
	Name     string
	Bindings []vk.Access
	Params   reflect.Type
}

// SPIRV returns the kernel's embedded SPIR-V.
func (k Kernel) SPIRV() ([]byte, error) {
	b, err := spvFS.ReadFile("spv/" + k.Name + ".spv")
	if err != nil {
		return nil, fmt.Errorf("shaders: %s: %w", k.Name, err)
	}
	return b, nil
}

// Desc is the pipeline description for a workgroup width of wg invocations
// (specialization constant 0, a power of two).
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
		Spec:             []vk.SpecConstant{{ID: 0, Value: wg}},
	}, nil
}

var rrw = []vk.Access{vk.Read, vk.Read, vk.Write}

// The kernels. Each comment gives the contract; shapes are row-major.
var (
	// MatVecF32: y (rows,) = W (rows, cols) @ x (cols,), all f32.
	MatVecF32 = Kernel{"matvec_f32", rrw, reflect.TypeFor[MatVecParams]()}
	// Add: z (n,) = x (n,) + y (n,), f32.
	Add = Kernel{"add", rrw, reflect.TypeFor[AddParams]()}
	// RMSNorm: y (rows, n) = x / sqrt(mean(x²) + eps) * w (n,), per row, f32.
	RMSNorm = Kernel{"rmsnorm", rrw, reflect.TypeFor[RMSNormParams]()}
)

// Kernels lists every kernel.
var Kernels = []Kernel{MatVecF32, Add, RMSNorm}

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
