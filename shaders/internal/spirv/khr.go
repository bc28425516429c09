// Package spirv rewrites SPIR-V modules written on VK_NV_cooperative_matrix
// into the same modules on VK_KHR_cooperative_matrix (CoopMatKHR).
//
// glslang 11 (Debian bookworm's glslc) compiles GL_NV_cooperative_matrix
// but not GL_KHR_cooperative_matrix, and the KHR extension is the one AMD,
// Intel, Mesa and NVIDIA all offer. The two extensions have the same
// execution model (subgroup-scope matrices loaded from and stored to memory
// with a stride, and a multiply-add); they differ in encoding:
//
//   - the capability (CooperativeMatrixNV 5357, CooperativeMatrixKHR 6022)
//     and the SPIR-V extension's name;
//   - OpTypeCooperativeMatrixKHR (4456) takes a fifth operand, the matrix's
//     Use: A, B or accumulator. An NV type serves all three;
//   - OpCooperativeMatrixLoadKHR (4457) and StoreKHR (4458) take the layout
//     (RowMajorKHR 0, ColumnMajorKHR 1) as an id before the stride, where NV
//     takes a boolean "column major" id after it;
//   - MulAdd (4459) and Length (4460) have new opcodes and the same operands
//     (no CooperativeMatrixOperands: the products are of floats).
//
// The Use of each matrix type comes from the convention of
// shaders/coopmat.glsl: the types' dimensions are the specialization
// constants CM_M (SpecId 8), CM_N (7) and CM_K (9); f16 CM_M × CM_K is A,
// f16 CM_K × CM_N is B and f32 CM_M × CM_N is the accumulator. Any other
// cooperative-matrix type, or an NV instruction this package does not know,
// is an error, never a guess.
package spirv

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const magic = 0x07230203

// Opcodes and operands used here (the SPIR-V registry's values).
const (
	opExtension         = 10
	opTypeInt           = 21
	opTypeFloat         = 22
	opConstantTrue      = 41
	opConstantFalse     = 42
	opConstant          = 43
	opSpecConstant      = 50
	opDecorate          = 71
	opCapability        = 17
	decorationSpecID    = 1
	capCoopMatNV        = 5357
	capCoopMatKHR       = 6022
	opTypeCoopMatNV     = 5358
	opCoopMatLoadNV     = 5359
	opCoopMatStoreNV    = 5360
	opCoopMatMulAddNV   = 5361
	opCoopMatLengthNV   = 5362
	opTypeCoopMatKHR    = 4456
	opCoopMatLoadKHR    = 4457
	opCoopMatStoreKHR   = 4458
	opCoopMatMulAddKHR  = 4459
	opCoopMatLengthKHR  = 4460
	useA, useB, useAcc  = 0, 1, 2
	rowMajor, colMajor  = 0, 1
	specM, specN, specK = 8, 7, 9
)

// Uses of the three operand types by their (component width, rows' SpecId,
// columns' SpecId).
var uses = map[[3]uint32]uint32{
	{16, specM, specK}: useA,
	{16, specK, specN}: useB,
	{32, specM, specN}: useAcc,
}

type inst struct {
	op    uint32
	words []uint32 // the operands, after the first word
}

// CoopMatKHR returns the module code, written on VK_NV_cooperative_matrix,
// rewritten on VK_KHR_cooperative_matrix. The result is deterministic: the
// same input gives the same bytes.
func CoopMatKHR(code []byte) ([]byte, error) {
	if len(code)%4 != 0 || len(code) < 20 {
		return nil, errors.New("spirv: not a SPIR-V module (length)")
	}
	w := make([]uint32, len(code)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(code[4*i:])
	}
	if w[0] != magic {
		return nil, errors.New("spirv: not a little-endian SPIR-V module")
	}
	header := append([]uint32(nil), w[:5]...)
	var insts []inst
	for i := 5; i < len(w); {
		n, op := int(w[i]>>16), w[i]&0xffff
		if n == 0 || i+n > len(w) {
			return nil, fmt.Errorf("spirv: instruction at word %d has length %d", i, n)
		}
		insts = append(insts, inst{op: op, words: w[i+1 : i+n]})
		i += n
	}

	// The operands each instruction the rewrite reads must have.
	least := map[uint32]int{opCapability: 1, opTypeFloat: 2, opTypeInt: 3, opConstantTrue: 2, opConstantFalse: 2,
		opTypeCoopMatNV: 5, opCoopMatLoadNV: 5, opCoopMatStoreNV: 4, opCoopMatMulAddNV: 5, opCoopMatLengthNV: 3}
	for _, in := range insts {
		if n, ok := least[in.op]; ok && len(in.words) < n {
			return nil, fmt.Errorf("spirv: opcode %d has %d operands, fewer than %d", in.op, len(in.words), n)
		}
	}

	// What the rewrite needs to know: spec ids, float widths, booleans.
	specOf := map[uint32]uint32{}
	floatWidth := map[uint32]uint32{}
	boolean := map[uint32]uint32{}
	uintType := uint32(0)
	hasNV := false
	for _, in := range insts {
		switch in.op {
		case opDecorate:
			if len(in.words) == 3 && in.words[1] == decorationSpecID {
				specOf[in.words[0]] = in.words[2]
			}
		case opTypeFloat:
			floatWidth[in.words[0]] = in.words[1]
		case opTypeInt:
			if in.words[1] == 32 && in.words[2] == 0 && uintType == 0 {
				uintType = in.words[0]
			}
		case opConstantTrue:
			boolean[in.words[1]] = colMajor
		case opConstantFalse:
			boolean[in.words[1]] = rowMajor
		case opCapability:
			hasNV = hasNV || in.words[0] == capCoopMatNV
		}
	}
	if !hasNV {
		return nil, errors.New("spirv: the module does not declare CooperativeMatrixNV")
	}
	if uintType == 0 {
		return nil, errors.New("spirv: the module has no 32-bit unsigned integer type for the KHR operands")
	}
	bound := header[3]
	if bound == 0 || bound+3 > 4194303 { // SPIR-V's universal limit on the id bound
		return nil, fmt.Errorf("spirv: an id bound of %d", bound)
	}
	constID := [3]uint32{bound, bound + 1, bound + 2} // the uint constants 0, 1, 2
	header[3] = bound + 3

	layout := func(id uint32) (uint32, error) {
		v, ok := boolean[id]
		if !ok {
			return 0, fmt.Errorf("spirv: a cooperative-matrix load or store's column-major operand %%%d is not a boolean constant", id)
		}
		return constID[v], nil
	}
	out := append([]uint32(nil), header...)
	emit := func(op uint32, words ...uint32) {
		out = append(out, uint32(len(words)+1)<<16|op)
		out = append(out, words...)
	}
	for _, in := range insts {
		o := in.words
		switch in.op {
		case opCapability:
			if o[0] == capCoopMatNV {
				emit(opCapability, capCoopMatKHR)
				continue
			}
		case opExtension:
			if s, ok := literalString(o); ok && s == "SPV_NV_cooperative_matrix" {
				emit(opExtension, stringWords("SPV_KHR_cooperative_matrix")...)
				continue
			}
		case opTypeInt:
			emit(in.op, o...)
			if o[0] == uintType {
				for v, id := range constID {
					emit(opConstant, uintType, id, uint32(v))
				}
			}
			continue
		case opTypeCoopMatNV: // result, component type, scope, rows, columns
			if len(o) != 5 {
				return nil, fmt.Errorf("spirv: OpTypeCooperativeMatrixNV %%%d has %d operands", o[0], len(o))
			}
			rows, rok := specOf[o[3]]
			cols, cok := specOf[o[4]]
			use, ok := uses[[3]uint32{floatWidth[o[1]], rows, cols}]
			if !rok || !cok || !ok {
				return nil, fmt.Errorf("spirv: cooperative-matrix type %%%d is none of coopmat.glsl's CM_A, CM_B and CM_C (component width %d, dimensions' SpecIds %d and %d)", o[0], floatWidth[o[1]], rows, cols)
			}
			emit(opTypeCoopMatKHR, o[0], o[1], o[2], o[3], o[4], constID[use])
			continue
		case opCoopMatLoadNV: // type, result, pointer, stride, column major, memory access…
			l, err := layout(o[4])
			if err != nil {
				return nil, err
			}
			emit(opCoopMatLoadKHR, append([]uint32{o[0], o[1], o[2], l, o[3]}, o[5:]...)...)
			continue
		case opCoopMatStoreNV: // pointer, object, stride, column major, memory access…
			l, err := layout(o[3])
			if err != nil {
				return nil, err
			}
			emit(opCoopMatStoreKHR, append([]uint32{o[0], o[1], l, o[2]}, o[4:]...)...)
			continue
		case opCoopMatMulAddNV:
			emit(opCoopMatMulAddKHR, o...)
			continue
		case opCoopMatLengthNV:
			emit(opCoopMatLengthKHR, o...)
			continue
		}
		emit(in.op, o...)
	}
	b := make([]byte, 4*len(out))
	for i, x := range out {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b, nil
}

// literalString decodes a nul-terminated literal string from words.
func literalString(words []uint32) (string, bool) {
	var b []byte
	for _, x := range words {
		for i := 0; i < 4; i++ {
			c := byte(x >> (8 * i))
			if c == 0 {
				return string(b), true
			}
			b = append(b, c)
		}
	}
	return "", false
}

// stringWords encodes s as a nul-terminated literal string.
func stringWords(s string) []uint32 {
	b := append([]byte(s), 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	w := make([]uint32, len(b)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}
