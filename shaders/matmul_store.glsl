// matmul_store.glsl: how a GPU-layout matmul module writes a finished sum
// (matmul.comp, matmul_coopmat.comp), with the GLU epilogue's constant GLU
// and act.glsl declared by the including file.

// y_store writes the sum v of (row, token t), or, with the GLU epilogue,
// h of the pair whose gate sum is v and up sum u (row even).
void y_store(uint t, uint row, float v, float u) {
	if (GLU != 0) {
		const float h = GLU == 2 ? gelu_tanh(v) : silu(v);
		y[p.y_off + t * p.y_stride + row / 2] = h * u;
	} else {
		const uint yi = p.y_off + t * p.y_stride + row;
		if (p.accumulate != 0) {
			v = y[yi] + v;
		}
		y[yi] = v;
	}
}
