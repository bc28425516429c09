package spirv

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/shaders"
)

// words is code as SPIR-V words.
func words(code []byte) []uint32 {
	w := make([]uint32, len(code)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(code[4*i:])
	}
	return w
}

// instructions is code's instructions after the header, as (opcode,
// operands).
func instructions(t *testing.T, code []byte) []inst {
	t.Helper()
	w := words(code)
	var out []inst
	for i := 5; i < len(w); {
		n := int(w[i] >> 16)
		require.NotZero(t, n)
		out = append(out, inst{op: w[i] & 0xffff, words: w[i+1 : i+n]})
		i += n
	}
	return out
}

func spv(t *testing.T, name string) []byte {
	t.Helper()
	b, err := shaders.Kernel{Name: name}.SPIRV()
	require.NoError(t, err)
	return b
}

// TestCoopMatKHR: the rewrite of the NV modules the kernels use. Every NV
// instruction becomes its KHR one: the capability and extension; each
// matrix type takes the Use its dimensions give (A, B or accumulator, and
// every one of the three occurs); each load and store takes the layout its
// NV boolean said, before the stride; nothing else changes, and the result
// is the committed _khr module.
func TestCoopMatKHR(t *testing.T) {
	for _, m := range []struct{ nv, khr string }{
		{"matmul_coopmat_q4_k", "matmul_coopmat_khr_q4_k"},
		{"matmul_coopmat_f32", "matmul_coopmat_khr_f32"},
		{"swa_coopmat_f16", "swa_coopmat_khr_f16"},
	} {
		t.Run(m.nv, func(t *testing.T) {
			nv := spv(t, m.nv)
			khr, err := CoopMatKHR(nv)
			require.NoError(t, err)
			require.Equal(t, spv(t, m.khr), khr, "the committed module")
			again, _ := CoopMatKHR(nv)
			require.Equal(t, khr, again, "deterministic")
			require.Equal(t, words(nv)[3]+3, words(khr)[3], "three new ids: the constants 0, 1 and 2")

			in, out := instructions(t, nv), instructions(t, khr)
			require.Len(t, out, len(in)+3)
			consts := map[uint32]uint32{}
			bools := map[uint32]uint32{}
			for _, x := range out {
				switch x.op {
				case opConstant:
					consts[x.words[1]] = x.words[2]
				case opConstantTrue:
					bools[x.words[1]] = colMajor
				case opConstantFalse:
					bools[x.words[1]] = rowMajor
				}
			}
			seen := map[uint32]int{}
			j := 0
			for _, x := range in {
				y := out[j]
				j++
				if y.op == opConstant && x.op != opConstant {
					j += 2 // the three new constants follow the uint type
					y = out[j]
					j++
				}
				switch x.op {
				case opCapability:
					if x.words[0] == capCoopMatNV {
						require.Equal(t, []uint32{capCoopMatKHR}, y.words)
						seen[opCapability]++
						continue
					}
				case opExtension:
					if s, _ := literalString(x.words); s == "SPV_NV_cooperative_matrix" {
						s, _ := literalString(y.words)
						require.Equal(t, "SPV_KHR_cooperative_matrix", s)
						seen[opExtension]++
						continue
					}
				case opTypeCoopMatNV:
					require.Equal(t, uint32(opTypeCoopMatKHR), y.op)
					require.Equal(t, x.words, y.words[:5])
					seen[100+consts[y.words[5]]]++
					continue
				case opCoopMatLoadNV:
					require.Equal(t, uint32(opCoopMatLoadKHR), y.op)
					require.Equal(t, x.words[:3], y.words[:3])
					require.Equal(t, bools[x.words[4]], consts[y.words[3]], "layout")
					require.Equal(t, x.words[3], y.words[4], "stride")
					require.Equal(t, x.words[5:], y.words[5:], "memory operands")
					seen[x.op]++
					continue
				case opCoopMatStoreNV:
					require.Equal(t, uint32(opCoopMatStoreKHR), y.op)
					require.Equal(t, x.words[:2], y.words[:2])
					require.Equal(t, bools[x.words[3]], consts[y.words[2]], "layout")
					require.Equal(t, x.words[2], y.words[3], "stride")
					require.Equal(t, x.words[4:], y.words[4:], "memory operands")
					seen[x.op]++
					continue
				case opCoopMatMulAddNV:
					require.Equal(t, uint32(opCoopMatMulAddKHR), y.op)
					require.Equal(t, x.words, y.words)
					seen[x.op]++
					continue
				}
				require.Equal(t, x, y, "an instruction the rewrite leaves alone")
			}
			require.Equal(t, len(out), j)
			for _, k := range []uint32{opCapability, opExtension, opCoopMatLoadNV, opCoopMatStoreNV, opCoopMatMulAddNV, 100 + useA, 100 + useB, 100 + useAcc} {
				require.NotZero(t, seen[k], "rewrote no %d", k)
			}
		})
	}
}

// TestCoopMatKHRErrors: what the rewrite refuses, with an error and no
// panic: bytes that are no module, a module without the NV capability,
// and a matrix type whose dimensions are not coopmat.glsl's.
func TestCoopMatKHRErrors(t *testing.T) {
	_, err := CoopMatKHR([]byte("not spir-v at all"))
	require.ErrorContains(t, err, "not a")
	_, err = CoopMatKHR(spv(t, "add"))
	require.ErrorContains(t, err, "does not declare CooperativeMatrixNV")

	// Swap the SpecIds of CM_M and CM_K: the A type is then K × M.
	b := bytes.Clone(spv(t, "matmul_coopmat_f32"))
	w := words(b)
	for i := 5; i < len(w); i += int(w[i] >> 16) {
		if w[i]&0xffff == opDecorate && w[i]>>16 == 4 && w[i+2] == decorationSpecID {
			switch w[i+3] {
			case specM:
				binary.LittleEndian.PutUint32(b[4*(i+3):], specK)
			case specK:
				binary.LittleEndian.PutUint32(b[4*(i+3):], specM)
			}
		}
	}
	_, err = CoopMatKHR(b)
	require.ErrorContains(t, err, "none of coopmat.glsl's CM_A, CM_B and CM_C")

	// A truncated instruction.
	_, err = CoopMatKHR(spv(t, "matmul_coopmat_f32")[:4*7])
	require.Error(t, err)
}

// FuzzCoopMatKHR: no input makes the rewrite panic, and what it accepts
// is a whole number of words with the magic number.
func FuzzCoopMatKHR(f *testing.F) {
	nv, err := shaders.Kernel{Name: "swa_coopmat"}.SPIRV()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(nv)
	f.Add(nv[:64])
	f.Add([]byte{0x03, 0x02, 0x23, 0x07})
	f.Fuzz(func(t *testing.T, code []byte) {
		out, err := CoopMatKHR(code)
		if err != nil {
			return
		}
		if len(out)%4 != 0 || binary.LittleEndian.Uint32(out) != magic {
			t.Fatalf("accepted and wrote %d bytes without the magic number", len(out))
		}
	})
}
