package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// maxCoopMatCheckNMSE bounds the cooperative-matrix kernel's NMSE against
// its emulated module on checkCoopMat's product. Both round W and x to f16
// and add in f32; only the order of a 16-column product's sums differs
// (the emulated kernels agree with float64 of the rounded values at 1e-13
// and below, TestMatMulCoopMat). A wrong layout, a stride or a missed
// barrier gives an NMSE near 1 or NaN.
const maxCoopMatCheckNMSE = 1e-9

// checkCoopMat runs one prefill product as the library is set (on the
// device's cooperative-matrix kernels, when it is choosing them) and on
// the emulated modules, which CI checks on lavapipe, and returns the NMSE
// of the first against the second: the matrix calls and the device's
// support of them are the part that no test without such a device runs.
// The library's choice is back as it was on return, and the check's kernel
// picks are forgotten.
func (l *Library) checkCoopMat() (float64, error) {
	const rows, cols, ntok = 70, 96, 70 // two tiles of rows and of tokens, three column steps
	d := l.Device
	w := make([]float32, rows*cols)
	x := make([]float32, ntok*cols)
	s := uint64(0x9e3779b97f4a7c15)
	next := func() float32 { // a uniform value in [-1, 1): xorshift64
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		return float32(s>>40)/float32(1<<23) - 1
	}
	for i := range w {
		w[i] = next()
	}
	for i := range x {
		x[i] = next()
	}
	bufs := map[string][]float32{"W": w, "x": x, "y": make([]float32, ntok*rows), "y emulated": make([]float32, ntok*rows)}
	bs := map[string]*vk.Buffer{}
	defer func() {
		for _, b := range bs {
			b.Close()
		}
	}()
	for _, name := range []string{"W", "x", "y", "y emulated"} {
		v := bufs[name]
		b, err := d.NewBuffer("coopmat check "+name, uint64(4*len(v)), vk.DeviceMemory)
		if err != nil {
			return 0, err
		}
		bs[name] = b
		if err := d.Upload(b, 0, f32Bytes(v)); err != nil {
			return 0, err
		}
	}
	wt := Weight{Buf: bs["W"], Type: loader.F32, Rows: rows, Cols: cols}
	seq, err := d.NewSequence(vk.SequenceOptions{OneTime: true})
	if err != nil {
		return 0, err
	}
	defer seq.Close()
	if err := seq.Begin(); err != nil {
		return 0, err
	}
	p := l.NewPlan(seq)
	defer p.Close()
	p.MatMul(wt, F32(bs["x"]), F32(bs["y"]), ntok, false)
	on, emu, n := l.coopmat, l.coopmatEmu, l.coopmatN
	l.coopmat, l.coopmatEmu, l.coopmatN = true, true, 16
	p.MatMul(wt, F32(bs["x"]), F32(bs["y emulated"]), ntok, false)
	l.coopmat, l.coopmatEmu, l.coopmatN = on, emu, n
	l.mu.Lock()
	clear(l.picks)
	l.mu.Unlock()
	if err := p.Err(); err != nil {
		return 0, err
	}
	if err := seq.End(); err != nil {
		return 0, err
	}
	if err := seq.Run(time.Minute); err != nil {
		return 0, err
	}
	got, want := make([]byte, 4*ntok*rows), make([]byte, 4*ntok*rows)
	if err := d.Download(bs["y"], 0, got); err != nil {
		return 0, err
	}
	if err := d.Download(bs["y emulated"], 0, want); err != nil {
		return 0, err
	}
	var num, den float64
	for i := 0; i < len(got); i += 4 {
		g := float64(math.Float32frombits(binary.LittleEndian.Uint32(got[i:])))
		e := float64(math.Float32frombits(binary.LittleEndian.Uint32(want[i:])))
		num += (g - e) * (g - e)
		den += e * e
	}
	if den == 0 {
		return 0, fmt.Errorf("the emulated cooperative-matrix product is all zeros")
	}
	return num / den, nil
}

// f32Bytes is v in little-endian bytes.
func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
