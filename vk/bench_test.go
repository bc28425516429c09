package vk_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// dispatchBench records n tiny add dispatches. chained makes each read what
// the previous wrote (a barrier between every pair, like a model's layers);
// otherwise they touch disjoint ranges and need no barriers.
func dispatchBench(b *testing.B, d *vk.Device, n int, chained bool) (*vk.Sequence, func()) {
	p := addPipeline(b, d)
	const elems = 64
	buf, err := d.NewBuffer("bench", uint64(4*elems*(n+1)), vk.DeviceMemory)
	require.NoError(b, err)
	seq, err := d.NewSequence(vk.SequenceOptions{})
	require.NoError(b, err)
	var sets []*vk.DescriptorSet
	require.NoError(b, seq.Begin())
	for i := range n {
		src := buf.Slice(0, 4*elems)
		if chained {
			src = buf.Slice(uint64(4*elems*i), 4*elems)
		}
		dst := buf.Slice(uint64(4*elems*(i+1)), 4*elems)
		set, err := d.NewDescriptorSet(p, src, src, dst)
		require.NoError(b, err)
		sets = append(sets, set)
		pc := shaders.AddParams{N: elems}
		seq.Dispatch(p, set, [3]uint32{1, 1, 1}, shaders.Push(&pc))
	}
	require.NoError(b, seq.End())
	return seq, func() {
		seq.Close()
		for _, s := range sets {
			s.Close()
		}
		buf.Close()
		p.Close()
	}
}

// BenchmarkDispatch reports the GPU-side cost of one small dispatch inside a
// submit of 1000 (µs/dispatch), with and without a barrier before each.
func BenchmarkDispatch(b *testing.B) {
	for _, chained := range []bool{false, true} {
		b.Run(fmt.Sprintf("barriers=%v", chained), func(b *testing.B) {
			d := vktest.Device(b, vk.DeviceOptions{})
			const n = 1000
			seq, done := dispatchBench(b, d, n, chained)
			defer done()
			b.ResetTimer()
			for b.Loop() {
				if err := seq.Run(time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/dispatch")
		})
	}
}

// BenchmarkSubmitWait reports one submit plus fence wait of a single dispatch.
func BenchmarkSubmitWait(b *testing.B) {
	d := vktest.Device(b, vk.DeviceOptions{})
	seq, done := dispatchBench(b, d, 1, false)
	defer done()
	b.ResetTimer()
	for b.Loop() {
		if err := seq.Run(time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/submit")
}

// BenchmarkRecord reports the host cost of recording 1000 dispatches
// (Begin, Dispatch×1000, End), with allocations.
func BenchmarkRecord(b *testing.B) {
	d := vktest.Device(b, vk.DeviceOptions{})
	p := addPipeline(b, d)
	buf, err := d.NewBuffer("rec", 4096, vk.DeviceMemory)
	require.NoError(b, err)
	set, err := d.NewDescriptorSet(p, buf.Slice(0, 1024), buf.Slice(1024, 1024), buf.Slice(2048, 1024))
	require.NoError(b, err)
	seq, err := d.NewSequence(vk.SequenceOptions{})
	require.NoError(b, err)
	pc := shaders.AddParams{N: 256}
	push := shaders.Push(&pc)
	b.ReportAllocs()
	for b.Loop() {
		if err := seq.Begin(); err != nil {
			b.Fatal(err)
		}
		for range 1000 {
			seq.Dispatch(p, set, [3]uint32{4, 1, 1}, push)
		}
		if err := seq.End(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/dispatch")
}
