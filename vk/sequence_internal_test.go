package vk

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDevice has the limits the recorder checks, and no Vulkan behind it.
func fakeDevice() *Device {
	return &Device{Info: DeviceInfo{Name: "fake", MaxWorkgroupCount: [3]uint32{65535, 65535, 65535}}}
}

func countBarriers(ops []uint64) int {
	n := 0
	for i := 0; i < len(ops); {
		switch ops[i] {
		case cOpDispatch:
			n0 := (ops[i+4] + 7) / 8
			i += 8 + int(n0)
		case cOpBarrier:
			n++
			i += 5
		case cOpCopy:
			i += 6
		case cOpFill:
			i += 5
		default:
			i += 3
		}
	}
	return n
}

// TestBarriersOnlyWhereRangesConflict checks the recorder's hazard tracking:
// a barrier before a dispatch that reads what an earlier one wrote (RAW), or
// writes what an earlier one read or wrote (WAR, WAW), and none otherwise.
func TestBarriersOnlyWhereRangesConflict(t *testing.T) {
	d := fakeDevice()
	a := &Buffer{Name: "a", Size: 1024, d: d}
	b := &Buffer{Name: "b", Size: 1024, d: d}
	p := &Pipeline{Name: "k", Bindings: []Access{Read, Write}, PushSize: 0, dsl: 1}
	set := func(in, out Range) *DescriptorSet {
		return &DescriptorSet{Pipeline: p, Ranges: []Range{in, out}}
	}
	tests := []struct {
		name  string
		steps [][2]Range // (read, write) per dispatch
		want  int        // barriers after Begin's leading one
	}{
		{"independent halves", [][2]Range{{a.Slice(0, 512), b.Slice(0, 512)}, {a.Slice(512, 512), b.Slice(512, 512)}}, 0},
		{"read after write", [][2]Range{{a.Slice(0, 512), b.Slice(0, 512)}, {b.Slice(0, 512), a.Slice(512, 512)}}, 1},
		{"read after write, partial overlap", [][2]Range{{a.Slice(0, 64), b.Slice(0, 100)}, {b.Slice(96, 8), a.Slice(512, 4)}}, 1},
		{"adjacent ranges do not conflict", [][2]Range{{a.Slice(0, 64), b.Slice(0, 100)}, {b.Slice(100, 8), a.Slice(512, 4)}}, 0},
		{"write after read", [][2]Range{{a.Slice(0, 64), b.Slice(0, 64)}, {b.Slice(512, 64), a.Slice(0, 64)}}, 1},
		{"write after write", [][2]Range{{a.Slice(0, 64), b.Slice(0, 64)}, {a.Slice(128, 64), b.Slice(32, 8)}}, 1},
		{"read after read", [][2]Range{{a.Slice(0, 64), b.Slice(0, 64)}, {a.Slice(0, 64), b.Slice(64, 64)}}, 0},
		{"chain of three", [][2]Range{{a.All(), b.Slice(0, 4)}, {b.Slice(0, 4), b.Slice(4, 4)}, {b.Slice(4, 4), b.Slice(8, 4)}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Sequence{d: d}
			require.NoError(t, s.Begin())
			lead := countBarriers(s.ops)
			for _, st := range tt.steps {
				s.Dispatch(p, set(st[0], st[1]), [3]uint32{1, 1, 1}, nil)
			}
			require.NoError(t, s.err)
			assert.Equal(t, tt.want, countBarriers(s.ops)-lead)
		})
	}
}
