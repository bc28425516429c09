package shaders

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/vkrun/vkrun/vk"
)

// CoopMatExt is the cooperative-matrix extension a module is written on.
type CoopMatExt uint8

const (
	// CoopMatNone: no extension. Every kernel but the cooperative-matrix
	// ones, and the emulated cooperative-matrix modules (COOPMAT_EMULATE),
	// which do the matrix products with plain invocations.
	CoopMatNone CoopMatExt = iota
	CoopMatNV              // VK_NV_cooperative_matrix: matmul_coopmat_<type>, swa_coopmat[_f16]
	CoopMatKHR             // VK_KHR_cooperative_matrix: the *_khr* modules, the NV ones rewritten
)

func (e CoopMatExt) String() string {
	switch e {
	case CoopMatNV:
		return "nv"
	case CoopMatKHR:
		return "khr"
	}
	return "emulated"
}

// Cooperative-matrix tiles: matmul_coopmat.comp computes CoopMatTile rows
// × CoopMatTile tokens a workgroup, attention_coopmat.glsl 32 query rows
// of one head; both run at a workgroup of CoopMatWG.
const (
	CoopMatTile = 64
	CoopMatWG   = 128
	coopMatQ    = 32 // attention_coopmat.glsl's BQ and BKEYS
	coopMatBK   = 32 // matmul_coopmat.comp's BK
)

// CoopMat configures the cooperative-matrix kernels for a device: the
// extension, the product's shape (one the device lists: specialization
// constants 7 to 9, coopmat.glsl), and the grid of Down × Across subgroups
// that tile a workgroup's output (constants 10 and 11). Ext CoopMatNone
// selects the emulated modules, which take no shape.
type CoopMat struct {
	Ext          CoopMatExt
	Shape        vk.CooperativeMatrixShape
	Down, Across uint32
}

// EmulatedCoopMat selects the emulated cooperative-matrix modules, which
// run on any device with shaderFloat16.
var EmulatedCoopMat = CoopMat{}

// Subgroup is the subgroup size c's grid assumes: CoopMatWG over its
// subgroups.
func (c CoopMat) Subgroup() uint32 {
	if c.Down*c.Across == 0 {
		return 0
	}
	return CoopMatWG / (c.Down * c.Across)
}

func (c CoopMat) String() string {
	if c.Ext == CoopMatNone {
		return "emulated"
	}
	return fmt.Sprintf("%s %v on %d×%d subgroups of %d", c.Ext, c.Shape, c.Down, c.Across, c.Subgroup())
}

// fits reports whether c's grid of shapes tiles a rows × cols output and
// steps through 32 columns of the products' inner dimension.
func (c CoopMat) fits(rows, cols uint32) bool {
	s := c.Shape
	return s.M != 0 && s.N != 0 && s.K != 0 && c.Down != 0 && c.Across != 0 &&
		rows%(c.Down*s.M) == 0 && cols%(c.Across*s.N) == 0 && coopMatBK%s.K == 0
}

// ChooseCoopMat picks the configuration of ext's kernels on a device that
// lists shapes and runs subgroups of subgroup invocations: the shape with
// the most products a call (M·N·K, then the driver's order) whose grid of
// CoopMatWG/subgroup subgroups tiles both kernels' outputs, with the
// squarest such grid (more subgroups down than across where it cannot be
// square). ok is false where no listed shape fits.
func ChooseCoopMat(ext CoopMatExt, shapes []vk.CooperativeMatrixShape, subgroup uint32) (CoopMat, bool) {
	if ext == CoopMatNone || subgroup == 0 || CoopMatWG%subgroup != 0 {
		return CoopMat{}, false
	}
	n := CoopMatWG / subgroup
	var best CoopMat
	found := false
	for _, s := range shapes {
		for down := n; down >= 1; down-- {
			if n%down != 0 || down*down < n {
				continue // the squarest grid with down ≥ across comes last
			}
			c := CoopMat{Ext: ext, Shape: s, Down: down, Across: n / down}
			if !c.fits(CoopMatTile, CoopMatTile) || !c.fits(coopMatQ, coopMatQ) {
				continue
			}
			if !found || s.M*s.N*s.K > best.Shape.M*best.Shape.N*best.Shape.K ||
				(s == best.Shape && c.Down < best.Down) {
				best, found = c, true
			}
		}
	}
	return best, found
}

// CoopMatSubgroup is the subgroup size a cooperative-matrix kernel's grid
// of subgroups assumes (CoopMat.Subgroup of the configuration it was made
// in), 0 for every other kernel and the emulated ones.
func (k Kernel) CoopMatSubgroup() uint32 {
	down, ok1 := k.SpecValue(10)
	across, ok2 := k.SpecValue(11)
	if k.CoopMat == CoopMatNone || !ok1 || !ok2 {
		return 0
	}
	return CoopMat{Ext: k.CoopMat, Down: down, Across: across}.Subgroup()
}

// spec is c's specialization constants, or none for the emulated modules.
func (c CoopMat) spec() []vk.SpecConstant {
	if c.Ext == CoopMatNone {
		return nil
	}
	return []vk.SpecConstant{{ID: 7, Value: c.Shape.N}, {ID: 8, Value: c.Shape.M}, {ID: 9, Value: c.Shape.K},
		{ID: 10, Value: c.Down}, {ID: 11, Value: c.Across}}
}

// suffix names c's modules (_khr; "" for NV) and a kernel's variant.
func (c CoopMat) suffix() (module, variant string) {
	switch c.Ext {
	case CoopMatNV:
		return "", fmt.Sprintf("coopmat_nv_%dx%dx%d_%dx%d", c.Shape.M, c.Shape.N, c.Shape.K, c.Down, c.Across)
	case CoopMatKHR:
		return "_khr", fmt.Sprintf("coopmat_khr_%dx%dx%d_%dx%d", c.Shape.M, c.Shape.N, c.Shape.K, c.Down, c.Across)
	}
	return "_emu", "coopmat_emu"
}

// coopMatModules stand for the modules of each extension in Kernels.
var coopMatModules = []CoopMat{
	{Ext: CoopMatNV, Shape: vk.CooperativeMatrixShape{M: 16, N: 16, K: 16}, Down: 2, Across: 2},
	{Ext: CoopMatKHR, Shape: vk.CooperativeMatrixShape{M: 16, N: 16, K: 16}, Down: 2, Across: 2},
	EmulatedCoopMat,
}

// MatMulCoopMat is the cooperative-matrix variant of GPU-layout prefill
// kernel k (OpMatMulTiled or a GLU op's tile, of any weight type) in
// configuration c: matmul_coopmat_<type> (NV), matmul_coopmat_khr_<type>
// (KHR) or matmul_coopmat_emu_<type> (emulated: the same kernel with the
// matrix products done by plain invocations, the tests' way to run it
// without the extension). W and x are rounded to f16, so its sums are not
// k's (matmul_coopmat.comp). ok is false for a kernel without one (the
// decode and short sizes, the RoPE epilogue, the integer-dot and CPU-layout
// kernels) and for a configuration whose grid does not tile the kernel.
func MatMulCoopMat(k Kernel, c CoopMat) (Kernel, bool) {
	f := k.Source()
	if _, gpu := k.SpecValue(6); !gpu || k.Dot || k.Shuffles || k.CoopMat != CoopMatNone || strings.HasPrefix(f, "matmul_rope_") ||
		!strings.HasPrefix(f, "matmul_") || strings.HasPrefix(f, "matmul_coopmat") || !strings.HasSuffix(k.Name, "_tiled") ||
		(c.Ext != CoopMatNone && !c.fits(CoopMatTile, CoopMatTile)) {
		return k, false
	}
	typ := strings.TrimPrefix(f, "matmul_")
	spec := []vk.SpecConstant{{ID: 1, Value: CoopMatTile}, {ID: 2, Value: CoopMatTile}}
	if glu, ok := k.SpecValue(5); ok {
		spec = append(spec, vk.SpecConstant{ID: 5, Value: glu})
	}
	module, variant := c.suffix()
	k.Spec = append(spec, c.spec()...)
	k.Half = true
	k.File, k.Name, k.CoopMat = "matmul_coopmat"+module+"_"+typ, k.Name+"/"+variant, c.Ext
	return k, true
}

// AttentionCoopMat is the prefill attention on cooperative matrices
// (attention_coopmat.glsl: tiles of 32 query rows of one head, keys and
// values staged in shared memory, Q·Kᵀ and P·V on cooperative matrices)
// over a ring of f16 (or f32) at head dim headDim (specialization constant
// 1) in configuration c: swa_coopmat[_f16] (NV), swa_coopmat_khr[_f16]
// (KHR) or swa_coopmat_emu[_f16] (emulated). Its bindings and push
// constants are SWAF32's less the partials, for rings without sinks. All
// run at CoopMatWG and need shaderFloat16. ok is false for a head dim it
// does not take (a multiple of 32 up to 256 that c's grid tiles).
func AttentionCoopMat(f16 bool, headDim uint32, c CoopMat) (Kernel, bool) {
	if headDim == 0 || headDim%32 != 0 || headDim > 256 {
		return Kernel{}, false
	}
	if c.Ext != CoopMatNone && (!c.fits(coopMatQ, coopMatQ) || !c.fits(coopMatQ, headDim) || headDim%c.Shape.K != 0) {
		return Kernel{}, false
	}
	module, variant := c.suffix()
	file := "swa_coopmat" + module
	if f16 {
		file += "_f16"
	}
	name := fmt.Sprintf("%s_hd%d", file, headDim)
	if c.Ext != CoopMatNone {
		name += "/" + variant
	}
	return Kernel{Name: name, File: file, Bindings: attnAccess, Params: reflect.TypeFor[AttentionParams](),
		Spec: append([]vk.SpecConstant{{ID: 1, Value: headDim}}, c.spec()...), CoopMat: c.Ext, Half: true}, true
}

// AttentionCoopMatSharedBytes is the shared memory of AttentionCoopMat's
// kernels at head dim headDim: keys and values (f16; past 128 the values
// take the keys' place), S (f32, which O's columns pass through at the
// end), P (f16) and the rows' partial maxima.
func AttentionCoopMatSharedBytes(headDim uint32) uint32 {
	staged := uint32(2)
	if headDim > 128 {
		staged = 1
	}
	return staged*32*(headDim+8)*2 + 32*36*4 + 32*40*2 + 32*4*4
}

func attentionCoopMatKernels() []Kernel {
	var ks []Kernel
	for _, f16 := range []bool{false, true} {
		for _, c := range coopMatModules {
			k, _ := AttentionCoopMat(f16, 64, c)
			ks = append(ks, k)
		}
	}
	return ks
}
