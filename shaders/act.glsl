// act.glsl: activations and soft-capping, written so that no finite input
// makes an intermediate overflow (no NaN from inf/inf, no inf·0).
//
// Some drivers evaluate GLSL's tanh as (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ), which is
// inf/inf = NaN once eˣ overflows (|x| ≳ 44 in f32). Nothing here calls
// tanh: every exp is of a non-positive argument, so it lies in [0, 1].

// sigmoid is 1/(1 + e⁻ᵛ) from e = exp(−|v|), so 1 + e stays in [1, 2]; a
// NaN v stays NaN.
float sigmoid(float v) {
	const float e = exp(-abs(v));
	const float s = 1.0 / (1.0 + e);
	return v >= 0.0 ? s : e * s; // e/(1+e) for v < 0
}

// silu is v·σ(v).
float silu(float v) {
	return v * sigmoid(v);
}

// gelu_tanh is GELU's tanh approximation 0.5·v·(1 + tanh(u)), u =
// √(2/π)·(v + 0.044715·v³), computed as v·σ(2u): the two are equal, since
// 0.5·(1 + tanh(u)) = 1/(1 + e⁻²ᵘ), and σ has no cancellation in the
// negative tail where 1 + tanh(u) does. 2u ≤ −88 gives −0: the true value
// is below 1e-36 there (|v| ≥ 10, |v|·e⁻²ᵘ), and v·σ(−88) would not be
// for a huge |v|. 2u is capped at 88 (σ(88) is 1 in f32) so that exp never
// sees ±inf, which v³ reaches for |v| ≳ 1e13.
float gelu_tanh(float v) {
	const float k = 1.5957691216057308; // 2·√(2/π)
	const float z = k * v * (1.0 + 0.044715 * v * v);
	if (z <= -88.0) {
		return -0.0;
	}
	return v * sigmoid(min(z, 88.0)); // a NaN v stays NaN
}

// tanh_safe is tanh(z) for every float z: an odd Taylor polynomial for
// |z| < 0.125 (its first omitted term is below 3e-9 of the value), else
// (1 − e)/(1 + e) with e = exp(−2|z|) in [0, 1]. A NaN z stays NaN.
float tanh_safe(float z) {
	const float a = abs(z);
	if (a < 0.125) {
		const float z2 = z * z;
		// z − z³/3 + 2z⁵/15 − 17z⁷/315 + 62z⁹/2835
		return z * (1.0 + z2 * (-1.0 / 3.0 + z2 * (2.0 / 15.0 + z2 * (-17.0 / 315.0 + z2 * (62.0 / 2835.0)))));
	}
	const float e = exp(-2.0 * a);
	const float t = (1.0 - e) / (1.0 + e);
	return z < 0.0 ? -t : t;
}
