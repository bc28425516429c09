package loader

// K-quants: 256-element super-blocks made of sub-blocks, each sub-block with
// its own small integer scale (and minimum) that multiplies the super-block's
// f16 scale d (and dmin).

// scaleMinK4 unpacks the 6-bit scale and minimum of sub-block j (0..7) from
// the 12 packed bytes q of a Q4_K or Q5_K block:
//
//	j < 4:  scale = q[j]   & 63,  min = q[j+4] & 63
//	j >= 4: scale = q[j+4] & 15 | (q[j−4] >> 6) << 4
//	        min   = q[j+4] >> 4 | (q[j]   >> 6) << 4
//
// so bytes 0..3 carry scales 0..3 plus the top bits of scales 4..7, bytes
// 4..7 carry mins 0..3 plus the top bits of mins 4..7, and bytes 8..11 carry
// the low nibbles of scales 4..7 (low) and mins 4..7 (high).
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q4_K, 144 bytes per 256 elements (8 sub-blocks of 32):
//
//	[0:2]     d    f16 super-block scale
//	[2:4]     dmin f16 super-block minimum scale
//	[4:16]    scales: 8 six-bit scales and 8 six-bit mins (see scaleMinK4)
//	[16:144]  qs: four 32-byte groups; group g holds sub-block 2g in the low
//	          nibbles and sub-block 2g+1 in the high nibbles
//
// Element l of sub-block s is d·sc[s]·q − dmin·m[s].
func dequantQ4_K(b []byte, y []float32) {
	d, dmin := f16(b), f16(b[2:])
	scales := b[4:16]
	qs := b[16:144]
	for g := 0; g < 4; g++ {
		sc1, m1 := scaleMinK4(2*g, scales)
		sc2, m2 := scaleMinK4(2*g+1, scales)
		d1, min1 := d*float32(sc1), dmin*float32(m1)
		d2, min2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*g : 32*g+32]
		out := y[64*g : 64*g+64]
		for l := 0; l < 32; l++ {
			out[l] = float32(d1*float32(q[l]&0xf)) - min1
			out[l+32] = float32(d2*float32(q[l]>>4)) - min2
		}
	}
}

// Q5_K, 176 bytes per 256 elements (8 sub-blocks of 32):
//
//	[0:2]     d    f16
//	[2:4]     dmin f16
//	[4:16]    scales and mins, as in Q4_K
//	[16:48]   qh: bit s of byte l is the 5th bit of element l of sub-block s
//	[48:176]  qs: low 4 bits, laid out as Q4_K's qs
//
// Element l of sub-block s is d·sc[s]·q − dmin·m[s], q = 0..31.
func dequantQ5_K(b []byte, y []float32) {
	d, dmin := f16(b), f16(b[2:])
	scales := b[4:16]
	qh := b[16:48]
	qs := b[48:176]
	for g := 0; g < 4; g++ {
		sc1, m1 := scaleMinK4(2*g, scales)
		sc2, m2 := scaleMinK4(2*g+1, scales)
		d1, min1 := d*float32(sc1), dmin*float32(m1)
		d2, min2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*g : 32*g+32]
		out := y[64*g : 64*g+64]
		for l := 0; l < 32; l++ {
			lo := q[l]&0xf | (qh[l]>>(2*g)&1)<<4
			hi := q[l]>>4 | (qh[l]>>(2*g+1)&1)<<4
			out[l] = float32(d1*float32(lo)) - min1
			out[l+32] = float32(d2*float32(hi)) - min2
		}
	}
}

// Q6_K, 210 bytes per 256 elements (16 sub-blocks of 16):
//
//	[0:128]    ql: low 4 bits
//	[128:192]  qh: high 2 bits
//	[192:208]  scales int8[16], one per 16 elements
//	[208:210]  d f16
//
// The block is two halves of 128 elements; half h uses ql[64h:64h+64],
// qh[32h:32h+32] and scales[8h:8h+8]. Within a half, for l in 0..31:
//
//	element l      = ql[l]    & 15 | (qh[l] >> 0 & 3) << 4
//	element l + 32 = ql[l+32] & 15 | (qh[l] >> 2 & 3) << 4
//	element l + 64 = ql[l]    >> 4 | (qh[l] >> 4 & 3) << 4
//	element l + 96 = ql[l+32] >> 4 | (qh[l] >> 6 & 3) << 4
//
// and the value is d·scale·(q − 32), with scale index l/16 + 0, 2, 4, 6.
func dequantQ6_K(b []byte, y []float32) {
	d := f16(b[208:])
	for h := 0; h < 2; h++ {
		ql := b[64*h : 64*h+64]
		qh := b[128+32*h : 128+32*h+32]
		sc := b[192+8*h : 192+8*h+8]
		out := y[128*h : 128*h+128]
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(ql[l]&0xf|(qh[l]&3)<<4) - 32
			q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
			q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			out[l] = d * float32(int8(sc[is])) * float32(q1)
			out[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			out[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			out[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
	}
}

// Q2_K, 84 bytes per 256 elements (16 sub-blocks of 16):
//
//	[0:16]   scales: byte s belongs to sub-block s; its low nibble is the
//	         4-bit scale sc[s], its high nibble the 4-bit minimum m[s]
//	[16:80]  qs: two 32-byte groups, one per half of 128 elements; element
//	         128h + 32j + l (j = 0..3, l = 0..31) is bits 2j..2j+1 of
//	         qs[32h + l]
//	[80:82]  d    f16 super-block scale
//	[82:84]  dmin f16 super-block minimum scale
//
// Element i is d·sc[i/16]·q − dmin·m[i/16], q = 0..3.
func dequantQ2_K(b []byte, y []float32) {
	d, dmin := f16(b[80:]), f16(b[82:])
	qs := b[16:80]
	for s := 0; s < 16; s++ {
		sc := b[s]
		dl, ml := d*float32(sc&0xf), dmin*float32(sc>>4)
		// Sub-block s is half s/8, 2-bit plane (s%8)/2, bytes 16·(s%2)…+16.
		q := qs[32*(s/8)+16*(s%2):][:16]
		shift := 2 * ((s % 8) / 2)
		out := y[16*s : 16*s+16]
		for l := 0; l < 16; l++ {
			out[l] = float32(dl*float32(q[l]>>shift&3)) - ml
		}
	}
}

// scaleK3 unpacks the 6-bit scale of sub-block j (0..15) from the 12 packed
// bytes q of a Q3_K block, as a signed value −32..31:
//
//	low 4 bits:  j < 8: q[j] & 15;  j >= 8: q[j−8] >> 4
//	high 2 bits: bits 2·(j/4)..2·(j/4)+1 of q[8 + j%4]
//
// so bytes 0..7 carry the low nibbles (sub-blocks 0..7 low, 8..15 high) and
// bytes 8..11 the top bits, four sub-blocks a byte.
func scaleK3(j int, q []byte) int {
	var lo byte
	if j < 8 {
		lo = q[j] & 0xf
	} else {
		lo = q[j-8] >> 4
	}
	hi := q[8+j%4] >> (2 * (j / 4)) & 3
	return int(lo|hi<<4) - 32
}

// Q3_K, 110 bytes per 256 elements (16 sub-blocks of 16):
//
//	[0:32]     hmask: bit k of byte l is the third (high) bit of element
//	           32k + l
//	[32:96]    qs: the two low bits, laid out as Q2_K's qs
//	[96:108]   scales: 16 six-bit signed scales (see scaleK3)
//	[108:110]  d f16 super-block scale
//
// Element i is d·sc[i/16]·(q − 4), q = 0..7 the three bits together; that
// is, ggml subtracts 4 from the two low bits when the high bit is clear.
func dequantQ3_K(b []byte, y []float32) {
	hm := b[0:32]
	qs := b[32:96]
	scales := b[96:108]
	d := f16(b[108:])
	for s := 0; s < 16; s++ {
		dl := d * float32(scaleK3(s, scales))
		half, plane, off := s/8, (s%8)/2, 16*(s%2)
		q := qs[32*half+off:][:16]
		h := hm[off:][:16]
		shift := uint(2 * plane)
		hbit := uint(4*half + plane) // element 16s+l has index 32·hbit + off + l
		out := y[16*s : 16*s+16]
		for l := 0; l < 16; l++ {
			v := int(q[l]>>shift&3) - 4 + 4*int(h[l]>>hbit&1)
			out[l] = dl * float32(v)
		}
	}
}
