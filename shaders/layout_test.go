package shaders

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders/internal/spirv"
	"github.com/vkrun/vkrun/vk"
)

// pushMember is one member of a push-constant block as SPIR-V lays it out.
type pushMember struct {
	kind   string // "uint", "int" or "float"
	offset uint32
}

// spirvPushConstants reads the push-constant block's members (type and
// Offset decoration) from a SPIR-V module. glslc -O strips member names, so
// names come from the GLSL source.
func spirvPushConstants(code []byte) ([]pushMember, error) {
	if len(code)%4 != 0 || len(code) < 20 {
		return nil, fmt.Errorf("not SPIR-V")
	}
	words := make([]uint32, len(code)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(code[4*i:])
	}
	const (
		opTypeInt, opTypeFloat, opTypeStruct, opTypePointer = 21, 22, 30, 32
		opVariable, opMemberDecorate                        = 59, 72
		decOffset, scPushConstant                           = 35, 9
	)
	scalars := map[uint32]string{}
	structs := map[uint32][]uint32{}
	pointers := map[uint32]uint32{}
	offsets := map[[2]uint32]uint32{}
	var pushPtr uint32
	for i := 5; i < len(words); {
		n := int(words[i] >> 16)
		op := words[i] & 0xffff
		if n == 0 || i+n > len(words) {
			return nil, fmt.Errorf("bad instruction at word %d", i)
		}
		a := words[i+1 : i+n]
		switch op {
		case opTypeInt:
			if a[1] == 32 {
				scalars[a[0]] = map[uint32]string{0: "uint", 1: "int"}[a[2]]
			}
		case opTypeFloat:
			if a[1] == 32 {
				scalars[a[0]] = "float"
			}
		case opTypeStruct:
			structs[a[0]] = append([]uint32(nil), a[1:]...)
		case opTypePointer:
			if a[1] == scPushConstant {
				pointers[a[0]] = a[2]
			}
		case opVariable:
			if a[2] == scPushConstant {
				pushPtr = a[0]
			}
		case opMemberDecorate:
			if a[2] == decOffset {
				offsets[[2]uint32{a[0], a[1]}] = a[3]
			}
		}
		i += n
	}
	if pushPtr == 0 {
		return nil, nil
	}
	st, ok := pointers[pushPtr]
	if !ok {
		return nil, fmt.Errorf("push-constant variable has no pointer type")
	}
	var out []pushMember
	for i, ty := range structs[st] {
		k, ok := scalars[ty]
		if !ok {
			return nil, fmt.Errorf("member %d is not a 32-bit scalar", i)
		}
		out = append(out, pushMember{kind: k, offset: offsets[[2]uint32{st, uint32(i)}]})
	}
	return out, nil
}

var (
	includeRE = regexp.MustCompile(`(?m)^#include "([^"]+)"`)
	pushRE    = regexp.MustCompile(`(?s)layout\(push_constant\)\s*uniform\s+\w+\s*\{(.*?)\}`)
	memberRE  = regexp.MustCompile(`(?m)^\s*(uint|int|float)\s+(\w+)\s*;`)
)

// glslSource returns a .comp file with its includes expanded.
func glslSource(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return includeRE.ReplaceAllStringFunc(string(b), func(m string) string {
		return glslSource(t, includeRE.FindStringSubmatch(m)[1])
	})
}

func normalise(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }

// TestPushConstantLayouts checks every kernel's Go Params struct against its
// shader: same member names in the same order, same types, same offsets.
func TestPushConstantLayouts(t *testing.T) {
	for _, k := range Kernels {
		t.Run(k.Name, func(t *testing.T) {
			code, err := k.SPIRV()
			require.NoError(t, err)
			members, err := spirvPushConstants(code)
			require.NoError(t, err)
			comp := sourceOf(k.Source()).Comp
			src := glslSource(t, comp+".comp")
			block := pushRE.FindStringSubmatch(src)
			require.NotNil(t, block, "no push-constant block in %s.comp", comp)
			names := memberRE.FindAllStringSubmatch(block[1], -1)
			require.Equal(t, len(names), len(members), "GLSL members vs SPIR-V members")
			require.Equal(t, k.Params.NumField(), len(members), "Go fields vs shader members")
			goKinds := map[reflect.Kind]string{reflect.Uint32: "uint", reflect.Int32: "int", reflect.Float32: "float"}
			for i, m := range members {
				f := k.Params.Field(i)
				assert.Equal(t, names[i][1], m.kind, "GLSL type of %s", names[i][2])
				assert.Equal(t, normalise(names[i][2]), normalise(f.Name), "member %d name", i)
				assert.Equal(t, m.kind, goKinds[f.Type.Kind()], "member %d (%s) type", i, f.Name)
				assert.EqualValues(t, m.offset, f.Offset, "member %d (%s) offset", i, f.Name)
			}
			assert.EqualValues(t, k.Params.Size(), members[len(members)-1].offset+4, "struct size")
		})
	}
}

// TestEveryShaderIsAKernel keeps the table and the sources in step: every
// .comp builds some kernel's module, and every module's .comp exists.
func TestEveryShaderIsAKernel(t *testing.T) {
	comps, err := filepath.Glob("*.comp")
	require.NoError(t, err)
	var names []string
	for _, c := range comps {
		names = append(names, strings.TrimSuffix(c, ".comp"))
	}
	used := map[string]bool{}
	for _, s := range Sources() {
		used[s.Comp] = true
	}
	var table []string
	for c := range used {
		table = append(table, c)
	}
	assert.ElementsMatch(t, names, table)
	seen := map[string]bool{}
	for _, k := range Kernels {
		assert.False(t, seen[k.Name], "kernel name %s used twice", k.Name)
		seen[k.Name] = true
	}
	spvs, err := filepath.Glob("spv/*.spv")
	require.NoError(t, err)
	assert.Len(t, spvs, len(Sources()), "spv/ holds exactly the modules of Sources (make shaders removes others)")
}

// TestCompiledShadersMatchSources recompiles every module with the
// Makefile's flags and compares it with the committed .spv.
func TestCompiledShadersMatchSources(t *testing.T) {
	glslc, err := exec.LookPath("glslc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("glslc must be installed under CI (scripts/setup.sh)")
		}
		t.Skip("glslc not installed")
	}
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	flags := regexp.MustCompile(`(?m)^GLSLC_FLAGS := (.*)$`).FindSubmatch(mk)
	require.NotNil(t, flags, "GLSLC_FLAGS in Makefile")
	dir := t.TempDir()
	for _, s := range Sources() {
		out := filepath.Join(dir, s.Name+".spv")
		msg, err := exec.Command(glslc, s.GlslcArgs(strings.Fields(string(flags[1])), out)...).CombinedOutput()
		require.NoError(t, err, "glslc %s: %s", s.Name, msg)
		want, err := os.ReadFile(out)
		require.NoError(t, err)
		if s.KHR {
			want, err = spirv.CoopMatKHR(want)
			require.NoError(t, err, s.Name)
		}
		got, err := Kernel{Name: s.Name}.SPIRV()
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "spv/%s.spv is stale: run make shaders", s.Name)
	}
}

// TestMatMulSizes: the token counts pick the three product sizes, and at
// the default workgroup of 128 every GPU-layout size fits the 16 KiB of
// shared memory that Vulkan guarantees, with the rows a workgroup the
// RATIONALE gives (twice as many for the 4-lane wide tiles).
func TestMatMulSizes(t *testing.T) {
	for n, want := range map[uint64]Op{1: OpMatMul1, 2: OpMatMul, 15: OpMatMul, 16: OpMatMulTiled, 512: OpMatMulTiled} {
		assert.Equal(t, want, MatMulOp(n), "%d tokens", n)
	}
	for _, typ := range WeightTypes {
		for op, rows := range map[Op]uint32{OpMatMul1: 16, OpMatMul: 32, OpMatMulTiled: 64} {
			k, ok := WeightKernel(op, typ, GPULayout)
			require.True(t, ok)
			if weightInfos[typ].wide {
				rows *= 2
			}
			assert.Equal(t, rows, MatMulRowsPerGroup(k, 128), "%s %s", op, typ)
			assert.LessOrEqual(t, MatMulSharedBytes(k, typ, 128), uint32(16<<10), "%s %s", op, typ)
			cpu, _ := WeightKernel(op, typ, CPULayout)
			assert.Zero(t, MatMulSharedBytes(cpu, typ, 128), "%s %s in the CPU layout", op, typ)
			// The shuffle variant: the same sizes, less shared memory (no
			// tree), its own module; the CPU layout has none.
			sh, ok := MatMulShuffled(k)
			require.True(t, ok, "%s %s", op, typ)
			assert.True(t, sh.Shuffles)
			assert.Equal(t, "matmul_shuffle_"+typeName(typ), sh.Source())
			assert.Equal(t, k.Spec, sh.Spec)
			assert.Equal(t, MatMulRowsPerGroup(k, 128), MatMulRowsPerGroup(sh, 128))
			tokens, _ := k.SpecValue(1)
			slotRows, _ := k.SpecValue(2)
			tree := min(slotRows*tokens, 8) // the tree's sums at a time
			assert.Equal(t, MatMulSharedBytes(k, typ, 128)-tree*128*4, MatMulSharedBytes(sh, typ, 128), "%s %s", op, typ)
			_, ok = MatMulShuffled(cpu)
			assert.False(t, ok, "%s %s in the CPU layout", op, typ)
			_, ok = MatMulShuffled(sh)
			assert.False(t, ok, "a shuffle variant has none of its own")
		}
		for _, op := range []Op{OpMatMul1, OpMatMul, OpMatMulTiled} {
			glu, _ := GLUOp(loader.ActSiLU, op)
			k, _ := WeightKernel(glu, typ, GPULayout)
			rows, _ := k.SpecValue(2)
			assert.Zero(t, rows%2, "%s %s: whole (gate, up) pairs per row slot", glu, typ)
		}
	}
	tiled, _ := WeightKernel(OpMatMulTiled, loader.Q4_K, CPULayout)
	batch, _ := WeightKernel(OpMatMul, loader.Q4_K, CPULayout)
	assert.Equal(t, batch, tiled, "the CPU layout serves the prefill tile with its batch kernel")
}

// TestMatMulDot: the integer-dot variants exist for DotTypes alone, in the
// GPU layout, for every size and GLU op: their own module, the same sizes,
// shuffles for the lanes' sums, and the q8 x tile within the guaranteed
// 16 KiB of shared memory.
func TestMatMulDot(t *testing.T) {
	isDot := map[loader.DType]bool{}
	for _, typ := range DotTypes {
		isDot[typ] = true
	}
	for _, typ := range WeightTypes {
		for _, op := range []Op{OpMatMul1, OpMatMul, OpMatMulTiled} {
			glu, _ := GLUOp(loader.ActGELUTanh, op)
			for _, o := range []Op{op, glu} {
				k, _ := WeightKernel(o, typ, GPULayout)
				dk, ok := MatMulDot(k)
				require.Equal(t, isDot[typ], ok, "%s %s", o, typ)
				cpu, _ := WeightKernel(o, typ, CPULayout)
				if _, ok := MatMulDot(cpu); ok {
					t.Errorf("%s %s: a CPU-layout kernel has no integer-dot variant", o, typ)
				}
				if !ok {
					continue
				}
				assert.True(t, dk.Dot && dk.Shuffles, "%s %s", o, typ)
				assert.Equal(t, "matmul_dot_"+typeName(typ), dk.Source())
				assert.Equal(t, k.Name+"/dot", dk.Name)
				assert.Equal(t, k.Spec, dk.Spec)
				assert.Equal(t, MatMulRowsPerGroup(k, 128), MatMulRowsPerGroup(dk, 128))
				tokens, _ := k.SpecValue(1)
				assert.Equal(t, tokens*256/32*4*Q8BlockWords, MatMulSharedBytes(dk, typ, 128), "%s %s", o, typ)
				_, again := MatMulDot(dk)
				assert.False(t, again, "a dot variant has none of its own")
				sh, _ := MatMulShuffled(k)
				_, fromShuffle := MatMulDot(sh)
				assert.False(t, fromShuffle, "the variant is of the table's kernel")
			}
		}
	}
	src := sourceOf("matmul_dot_q4_0")
	assert.Equal(t, Source{Name: "matmul_dot_q4_0", Comp: "matmul", Defines: []string{"WEIGHT_Q4_0", "MATMUL_SHUFFLE", "MATMUL_DOT"}}, src)
	assert.EqualValues(t, 3*Q8BlockWords, Q8RowWords(96))
}

// TestMatMulRoPEKernels: every type has the RoPE-epilogue product in the
// GPU layout alone, at every size: its own module (with shuffles), whole
// (2i, 2i+1) pairs per row slot, the RoPE table bound after y, and an
// integer-dot variant for DotTypes.
func TestMatMulRoPEKernels(t *testing.T) {
	isDot := map[loader.DType]bool{}
	for _, typ := range DotTypes {
		isDot[typ] = true
	}
	for _, typ := range WeightTypes {
		for _, size := range []Op{OpMatMul1, OpMatMul, OpMatMulTiled} {
			op := RoPEOp(size)
			k, ok := WeightKernel(op, typ, GPULayout)
			require.True(t, ok, "%s %s", op, typ)
			_, cpu := WeightKernel(op, typ, CPULayout)
			assert.False(t, cpu, "%s %s in the CPU layout", op, typ)
			plain, _ := WeightKernel(size, typ, GPULayout)
			assert.True(t, k.Shuffles)
			assert.Equal(t, "matmul_rope_"+typeName(typ), k.Source())
			assert.Equal(t, append(append([]vk.Access(nil), plain.Bindings...), vk.Read), k.Bindings)
			rows, _ := k.SpecValue(2)
			assert.Zero(t, rows%2, "%s %s: whole pairs per row slot", op, typ)
			glu, _ := GLUOp(loader.ActSiLU, size)
			gk, _ := WeightKernel(glu, typ, GPULayout)
			assert.Equal(t, MatMulRowsPerGroup(gk, 128), MatMulRowsPerGroup(k, 128), "%s %s: the GLU kernel's shape", op, typ)
			dk, ok := MatMulDot(k)
			require.Equal(t, isDot[typ], ok, "%s %s", op, typ)
			if ok {
				assert.Equal(t, "matmul_rope_dot_"+typeName(typ), dk.Source())
				assert.Equal(t, k.Name+"/dot", dk.Name)
				assert.True(t, dk.Dot && dk.Shuffles)
			}
		}
	}
	assert.Equal(t, Source{Name: "matmul_rope_q8_0", Comp: "matmul", Defines: []string{"WEIGHT_Q8_0", "MATMUL_SHUFFLE", "MATMUL_ROPE"}}, sourceOf("matmul_rope_q8_0"))
	assert.Equal(t, Source{Name: "matmul_rope_dot_q4_0", Comp: "matmul", Defines: []string{"WEIGHT_Q4_0", "MATMUL_SHUFFLE", "MATMUL_DOT", "MATMUL_ROPE"}}, sourceOf("matmul_rope_dot_q4_0"))
}
