package engine

import (
	"fmt"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/vk"
)

// LayerCache is the shape of one layer's KV cache. What a query attends to
// (Window) and what the layer keeps (Slots) are separate numbers, so that
// each layer's memory is sized by its own: a local layer is a ring of W
// slots, a global layer a linear cache of as many slots as the context.
type LayerCache struct {
	// Window is the keys a query at position i attends to: max(0, i−W+1)…i
	// for a local layer, every key from position 0 when 0 (a global layer).
	Window int
	// Slots is the positions the layer retains in its ring or linear
	// cache: position p ≥ Sinks lives in slot p mod Slots.
	Slots int
	// Sinks is the first positions of the sequence, kept beside a local
	// layer's ring for good (attention sinks, Options.Keep): every query
	// attends to them as well as to its band. 0 for a global layer.
	Sinks int
}

// Rows is the cache's rows of K and of V: the sinks and the slots.
func (c LayerCache) Rows() int { return c.Sinks + c.Slots }

// Local reports whether the layer slides a window.
func (c LayerCache) Local() bool { return c.Window > 0 }

func (c LayerCache) String() string {
	if c.Local() && c.Sinks > 0 {
		return fmt.Sprintf("ring of %d (window %d) and %d sinks", c.Slots, c.Window, c.Sinks)
	}
	if c.Local() {
		return fmt.Sprintf("ring of %d (window %d)", c.Slots, c.Window)
	}
	return fmt.Sprintf("linear of %d (global)", c.Slots)
}

// KVBytes is the device memory of a KV cache of this layout:
// Σ_l (sinks_l + slots_l) · kvDim · 2 (K and V) · the element size.
func KVBytes(layout []LayerCache, kvDim int, t ops.KVType) uint64 {
	var n uint64
	for _, c := range layout {
		n += 2 * ops.RingBytes(t, c.Rows(), kvDim)
	}
	return n
}

// KVCache is one sequence's keys and values: a ring or a linear cache per
// layer, each in device memory, sized once and never grown. The forward
// pass asks each layer's cache for its ring and never looks at its kind.
type KVCache struct {
	// Layout is each layer's window and slots.
	Layout []LayerCache
	Type   ops.KVType
	KVDim  int // KV heads × head dim

	rings []ops.Ring   // per layer: K and V, (Slots, KVDim) of Type each
	bufs  []*vk.Buffer // K then V per layer
}

// newKVCache allocates a cache of the given layout on d. On failure it
// frees what it allocated.
func newKVCache(d *vk.Device, layout []LayerCache, kvDim int, t ops.KVType) (*KVCache, error) {
	c := &KVCache{Layout: layout, Type: t, KVDim: kvDim}
	for l, lc := range layout {
		n := ops.RingBytes(t, lc.Rows(), kvDim)
		k, err := d.NewBuffer(fmt.Sprintf("blk.%d.k cache", l), n, vk.DeviceMemory)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.bufs = append(c.bufs, k)
		v, err := d.NewBuffer(fmt.Sprintf("blk.%d.v cache", l), n, vk.DeviceMemory)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.bufs = append(c.bufs, v)
		c.rings = append(c.rings, ops.Ring{K: k, V: v, Window: lc.Window, Slots: lc.Slots, Sinks: lc.Sinks, KVDim: kvDim, Type: t})
	}
	return c, nil
}

// Layer is layer l's cache as the attention kernels bind it.
func (c *KVCache) Layer(l int) ops.Ring { return c.rings[l] }

// Bytes is the cache's device memory (KVBytes of its layout).
func (c *KVCache) Bytes() uint64 { return KVBytes(c.Layout, c.KVDim, c.Type) }

// Close frees the cache's device memory. Idempotent.
func (c *KVCache) Close() {
	for _, b := range c.bufs {
		b.Close()
	}
	c.bufs, c.rings = nil, nil
}

// band is the most keys one query attends: the window and the sinks, or
// every slot of a global layer (ops.Ring.Keys).
func (c LayerCache) band() int {
	if c.Window > 0 {
		return c.Window + c.Sinks
	}
	return c.Slots
}
