package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// maxCoopMatCheckNMSE bounds the cooperative-matrix kernels' NMSE against
// their emulated modules on checkCoopMat's products. Both round to f16 and
// add in f32; only the order of a 16-column product's sums differs (the
// emulated kernels agree with float64 of the rounded values at 1e-13 and
// below, TestMatMulCoopMat). A wrong layout, a stride or a missed barrier
// gives an NMSE near 1, or NaN.
const maxCoopMatCheckNMSE = 1e-9

// checkCoopMat runs one prefill product and one prefill attention of two
// chunks (the second reads the ring the first wrote) as the library is set
// (on the device's cooperative-matrix kernels, when it is choosing them)
// and on the emulated modules, which CI checks on lavapipe, and returns
// the NMSE of the first against the second, the product's then the
// attention's: the matrix calls and the
// device's support of them are the part that no test without such a device
// runs. The library's choice is back as it was on return, and the check's
// kernel picks are forgotten.
func (l *Library) checkCoopMat() ([]float64, error) {
	const rows, cols, ntok = 70, 96, 70 // two tiles of rows and of tokens, three column steps
	const heads, headDim, chunk = 2, 64, 40
	s := uint64(0x9e3779b97f4a7c15)
	rnd := func(n int) []float32 { // uniform values in [-1, 1): xorshift64
		v := make([]float32, n)
		for i := range v {
			s ^= s << 13
			s ^= s >> 7
			s ^= s << 17
			v[i] = float32(s>>40)/float32(1<<23) - 1
		}
		return v
	}
	steps := make([]float32, 2)
	steps[1] = math.Float32frombits(chunk) // the second chunk's pos0, as a u32
	in := map[string][]float32{"W": rnd(rows * cols), "x": rnd(ntok * cols), "q": rnd(2 * chunk * heads * headDim),
		"k": rnd(2 * chunk * headDim), "v": rnd(2 * chunk * headDim), "steps": steps}
	return l.coopmatRuns(in, []int{ntok * rows, 2 * chunk * heads * headDim}, func(p *Plan, b map[string]Tensor, out []Tensor) {
		p.MatMul(Weight{Buf: b["W"].Buf, Type: loader.F32, Rows: rows, Cols: cols}, b["x"], out[0], ntok, false)
		ring := Ring{K: b["ring K"].Buf, V: b["ring V"].Buf, Slots: 2 * chunk, KVDim: headDim, Type: KVF16}
		for c := range uint64(2) {
			q, kv := heads*headDim*uint64(chunk), uint64(headDim*chunk)
			step := b["steps"].Sub(c, 1)
			p.Attention(b["q"].Sub(c*q, q), b["k"].Sub(c*kv, kv), b["v"].Sub(c*kv, kv), ring, step, out[1].Sub(c*q, q), chunk, heads, 1, headDim, AttentionOpts{})
			p.StoreKV(b["k"].Sub(c*kv, kv), b["v"].Sub(c*kv, kv), ring, step, chunk)
		}
	}, RingBytes(KVF16, 2*chunk, headDim))
}

// coopmatRuns uploads in, makes two f16 rings of ringBytes ("ring K" and
// "ring V") and outputs of outs elements, records record into one
// submission twice, as the library is set and on the emulated modules
// (each run with rings and outputs of its own), and returns the NMSE of
// each of the first run's outputs against the second's.
func (l *Library) coopmatRuns(in map[string][]float32, outs []int, record func(p *Plan, b map[string]Tensor, out []Tensor), ringBytes uint64) ([]float64, error) {
	d := l.Device
	var bufs []*vk.Buffer
	defer func() {
		for _, b := range bufs {
			b.Close()
		}
	}()
	alloc := func(name string, size uint64) (*vk.Buffer, error) {
		b, err := d.NewBuffer("coopmat check "+name, size, vk.DeviceMemory)
		if err == nil {
			bufs = append(bufs, b)
		}
		return b, err
	}
	b := map[string]Tensor{}
	for name, v := range in {
		buf, err := alloc(name, uint64(4*len(v)))
		if err != nil {
			return nil, err
		}
		if err := d.Upload(buf, 0, f32Bytes(v)); err != nil {
			return nil, err
		}
		b[name] = F32(buf)
	}
	seq, err := d.NewSequence(vk.SequenceOptions{OneTime: true})
	if err != nil {
		return nil, err
	}
	defer seq.Close()
	if err := seq.Begin(); err != nil {
		return nil, err
	}
	p := l.NewPlan(seq)
	defer p.Close()
	var results [2][]*vk.Buffer
	on, at := l.coopmat, l.coopmatAt
	for run := range 2 {
		for _, name := range []string{"ring K", "ring V"} {
			buf, err := alloc(name, ringBytes)
			if err != nil {
				return nil, err
			}
			b[name] = Tensor{Buf: buf, Len: ringBytes / 4}
		}
		var out []Tensor
		for _, n := range outs {
			buf, err := alloc("out", uint64(4*n))
			if err != nil {
				return nil, err
			}
			out = append(out, F32(buf))
			results[run] = append(results[run], buf)
		}
		if run == 1 {
			l.coopmat, l.coopmatAt = true, shaders.EmulatedCoopMat
		}
		record(p, b, out)
	}
	l.coopmat, l.coopmatAt = on, at
	l.mu.Lock()
	clear(l.picks)
	l.mu.Unlock()
	if err := p.Err(); err != nil {
		return nil, err
	}
	if err := seq.End(); err != nil {
		return nil, err
	}
	if err := seq.Run(time.Minute); err != nil {
		return nil, err
	}
	var nmse []float64
	for i := range outs {
		got, want := make([]byte, 4*outs[i]), make([]byte, 4*outs[i])
		if err := d.Download(results[0][i], 0, got); err != nil {
			return nil, err
		}
		if err := d.Download(results[1][i], 0, want); err != nil {
			return nil, err
		}
		var num, den float64
		for j := 0; j < len(got); j += 4 {
			g := float64(math.Float32frombits(binary.LittleEndian.Uint32(got[j:])))
			e := float64(math.Float32frombits(binary.LittleEndian.Uint32(want[j:])))
			num += (g - e) * (g - e)
			den += e * e
		}
		if den == 0 {
			return nil, fmt.Errorf("output %d of the emulated cooperative-matrix kernels is all zeros", i)
		}
		nmse = append(nmse, num/den)
	}
	return nmse, nil
}

// f32Bytes is v in little-endian bytes.
func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
