// q8.glsl: the rounding of f32 values to q8 blocks (32 values, one scale)
// that the integer-dot matmul reads, shared by quantize_q8.comp and the
// norms that write their output in q8 as well (rmsnorm.comp with NORM_Q8),
// so that both give the same bits. A block is 12 words: the 32 values
// q_j = roundEven(x_j · 127/m) as int8 (value j in byte j % 4 of word j/4),
// m = max |x_j|, then d = m/127 (f32 bits), Σ q_j (int32) and two zeros.
// Eight invocations make a block, four values and one word each.

// q8_amax is four values' part of a block maximum: a NaN counts as an
// infinite maximum (max may drop a NaN), so the block's d is infinite and
// its q zero, and every product that uses it is NaN (0·∞), as the f32
// product would be NaN or infinite.
float q8_amax(vec4 v) {
	const vec4 a = abs(v);
	const bool nan = isnan(v.x) || isnan(v.y) || isnan(v.z) || isnan(v.w);
	return nan ? uintBitsToFloat(0x7f800000u) : max(max(a.x, a.y), max(a.z, a.w));
}

// q8_word packs four values of a block of maximum m as int8 and returns
// their sum in qsum. A block whose maximum is under 2^-100 (or infinite)
// has q zero: its 127/m could overflow, and its products are below any f32
// sum's ulp. The divisions may be off by Vulkan's 2.5 ulp on some devices,
// so a q_j near a half may round either way there.
uint q8_word(vec4 v, float m, out int qsum) {
	precise float id = m >= uintBitsToFloat(0x0d800000u) && !isinf(m) ? 127.0 / m : 0.0;
	precise vec4 s = v * id;
	const ivec4 qi = id == 0.0 ? ivec4(0) : clamp(ivec4(roundEven(s)), ivec4(-127), ivec4(127));
	qsum = (qi.x + qi.y) + (qi.z + qi.w);
	return (uint(qi.x) & 0xffu) | (uint(qi.y) & 0xffu) << 8 | (uint(qi.z) & 0xffu) << 16 | (uint(qi.w) & 0xffu) << 24;
}

// q8_scale is the scale d of a block of maximum m.
float q8_scale(float m) {
	precise float d = m / 127.0;
	return d;
}
