// reduce.glsl: workgroup sum through shared memory. It needs no optional
// feature (subgroup arithmetic is not guaranteed on every Vulkan 1.1 device).
// Every invocation of the workgroup must call it, with WG a power of two.
shared float red_tmp[WG];

float workgroup_sum(float v) {
	const uint t = gl_LocalInvocationID.x;
	red_tmp[t] = v;
	barrier();
	[[unroll]] for (uint s = WG / 2; s > 0; s >>= 1) {
		if (t < s) {
			red_tmp[t] += red_tmp[t + s];
		}
		barrier();
	}
	const float r = red_tmp[0];
	barrier(); // red_tmp may be reused by the caller's next reduction
	return r;
}
