package shaders

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// sh is the shape M × N × K.
func sh(m, n, k uint32) vk.CooperativeMatrixShape { return vk.CooperativeMatrixShape{M: m, N: n, K: k} }

// TestChooseCoopMat: the shape and grid of subgroups the kernels take from
// a device's list: the most products a call that tiles both kernels, then
// the squarest grid; nothing where no shape fits.
func TestChooseCoopMat(t *testing.T) {
	for _, c := range []struct {
		name         string
		shapes       []vk.CooperativeMatrixShape
		subgroup     uint32
		ok           bool
		want         vk.CooperativeMatrixShape
		down, across uint32
	}{
		{"NVIDIA", []vk.CooperativeMatrixShape{sh(16, 8, 16), sh(16, 16, 16), sh(16, 8, 8)}, 32, true, sh(16, 16, 16), 2, 2},
		{"16x8x16 only", []vk.CooperativeMatrixShape{sh(16, 8, 16)}, 32, true, sh(16, 8, 16), 2, 2},
		{"lavapipe", []vk.CooperativeMatrixShape{sh(8, 8, 8)}, 8, true, sh(8, 8, 8), 4, 4},
		{"wave64", []vk.CooperativeMatrixShape{sh(16, 16, 16)}, 64, true, sh(16, 16, 16), 2, 1},
		{"8 subgroups", []vk.CooperativeMatrixShape{sh(8, 16, 16)}, 16, true, sh(8, 16, 16), 4, 2},
		{"one subgroup", []vk.CooperativeMatrixShape{sh(16, 16, 16)}, 128, true, sh(16, 16, 16), 1, 1},
		{"M too tall for the attention tile", []vk.CooperativeMatrixShape{sh(32, 8, 16)}, 32, false, vk.CooperativeMatrixShape{}, 0, 0},
		{"a later, smaller shape that fits", []vk.CooperativeMatrixShape{sh(32, 8, 16), sh(16, 8, 16)}, 32, true, sh(16, 8, 16), 2, 2},
		{"K past a step", []vk.CooperativeMatrixShape{sh(16, 16, 64)}, 32, false, vk.CooperativeMatrixShape{}, 0, 0},
		{"no shapes", nil, 32, false, vk.CooperativeMatrixShape{}, 0, 0},
		{"no subgroup size", []vk.CooperativeMatrixShape{sh(16, 16, 16)}, 0, false, vk.CooperativeMatrixShape{}, 0, 0},
		{"a size that does not divide the workgroup", []vk.CooperativeMatrixShape{sh(16, 16, 16)}, 48, false, vk.CooperativeMatrixShape{}, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ChooseCoopMat(CoopMatKHR, c.shapes, c.subgroup)
			require.Equal(t, c.ok, ok, "%v", got)
			if !ok {
				return
			}
			assert.Equal(t, CoopMat{Ext: CoopMatKHR, Shape: c.want, Down: c.down, Across: c.across}, got)
			assert.Equal(t, c.subgroup, got.Subgroup())
		})
	}
	_, ok := ChooseCoopMat(CoopMatNone, []vk.CooperativeMatrixShape{sh(16, 16, 16)}, 32)
	assert.False(t, ok, "the emulated modules take no shape")
}

// TestCoopMatKernels: each configuration's modules, names and
// specialization constants, and the head dims attention takes in it.
func TestCoopMatKernels(t *testing.T) {
	tile, _ := WeightKernel(OpMatMulTiled, loader.Q4_K, GPULayout)
	nv := CoopMat{Ext: CoopMatNV, Shape: vk.CooperativeMatrixShape{M: 16, N: 8, K: 16}, Down: 2, Across: 2}
	khr := CoopMat{Ext: CoopMatKHR, Shape: vk.CooperativeMatrixShape{M: 8, N: 8, K: 8}, Down: 4, Across: 4}
	for _, c := range []struct {
		at           CoopMat
		file, name   string
		attn, attnHD string
	}{
		{nv, "matmul_coopmat_q4_k", "matmul_q4_k_tiled/coopmat_nv_16x8x16_2x2", "swa_coopmat_f16", "swa_coopmat_f16_hd64/coopmat_nv_16x8x16_2x2"},
		{khr, "matmul_coopmat_khr_q4_k", "matmul_q4_k_tiled/coopmat_khr_8x8x8_4x4", "swa_coopmat_khr_f16", "swa_coopmat_khr_f16_hd64/coopmat_khr_8x8x8_4x4"},
		{EmulatedCoopMat, "matmul_coopmat_emu_q4_k", "matmul_q4_k_tiled/coopmat_emu", "swa_coopmat_emu_f16", "swa_coopmat_emu_f16_hd64"},
	} {
		k, ok := MatMulCoopMat(tile, c.at)
		require.True(t, ok)
		assert.Equal(t, c.file, k.File)
		assert.Equal(t, c.name, k.Name)
		assert.Equal(t, c.at.Ext, k.CoopMat)
		assert.True(t, k.Half)
		a, ok := AttentionCoopMat(true, 64, c.at)
		require.True(t, ok)
		assert.Equal(t, c.attn, a.File)
		assert.Equal(t, c.attnHD, a.Name)
		assert.Equal(t, c.at.Ext, a.CoopMat)
		for _, spec := range [][]vk.SpecConstant{k.Spec, a.Spec} {
			for id, want := range map[uint32]uint32{7: c.at.Shape.N, 8: c.at.Shape.M, 9: c.at.Shape.K, 10: c.at.Down, 11: c.at.Across} {
				got, ok := Kernel{Spec: spec}.SpecValue(id)
				if c.at.Ext == CoopMatNone {
					assert.False(t, ok, "the emulated modules have no constant %d", id)
					continue
				}
				assert.True(t, ok, "constant %d", id)
				assert.Equal(t, want, got, "constant %d", id)
			}
		}
		assert.Equal(t, c.at.Subgroup(), k.CoopMatSubgroup())
		assert.Equal(t, c.at.Subgroup(), a.CoopMatSubgroup())
		_, ok = MatMulCoopMat(k, c.at)
		assert.False(t, ok, "a cooperative-matrix kernel has no variant of its own")
	}
	// Head dims: multiples of 32 up to 256 that the grid's columns tile.
	for hd, want := range map[uint32]bool{32: true, 64: true, 96: true, 128: true, 160: true, 256: true, 0: false, 48: false, 288: false} {
		_, ok := AttentionCoopMat(false, hd, nv)
		assert.Equal(t, want, ok, "head dim %d", hd)
	}
	wide := CoopMat{Ext: CoopMatKHR, Shape: vk.CooperativeMatrixShape{M: 16, N: 16, K: 16}, Down: 1, Across: 4}
	_, ok := AttentionCoopMat(false, 32, wide)
	assert.False(t, ok, "4 subgroups across of 16 columns do not tile 32")
	_, ok = MatMulCoopMat(tile, wide)
	assert.True(t, ok, "they do tile the product's 64")
}
