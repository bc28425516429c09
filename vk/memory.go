package vk

import (
	"fmt"
	"sort"
	"unsafe"
)

// MemoryKind says where a buffer lives.
type MemoryKind int

const (
	// DeviceMemory is device-local: weights, activations, the KV cache. On
	// UMA devices and lavapipe it is also host-visible and mapped.
	DeviceMemory MemoryKind = iota
	// HostMemory is host-visible, coherent memory (cached when available):
	// staging, readback, small per-step parameters.
	HostMemory
	numMemoryKinds
)

func (k MemoryKind) String() string {
	if k == HostMemory {
		return "host"
	}
	return "device"
}

const (
	defaultDeviceBlock = 256 << 20
	defaultHostBlock   = 64 << 20
)

// memBlock is one VkDeviceMemory allocation that buffers are suballocated from.
type memBlock struct {
	mem       uint64
	size      uint64
	typeIndex uint32
	heap      int
	kind      MemoryKind
	mapped    unsafe.Pointer // persistent mapping, or nil
	dedicated bool
	free      []span // sorted by offset, coalesced
	live      int    // buffers in this block
}

type span struct{ off, size uint64 }

// arena suballocates buffers from large blocks so that a model with hundreds
// of tensors needs a handful of VkDeviceMemory objects, respecting
// maxMemoryAllocationSize and maxMemoryAllocationCount.
type arena struct {
	d         *Device
	blockSize [numMemoryKinds]uint64
	blocks    []*memBlock
	allocated [numMemoryKinds]uint64 // bytes of VkDeviceMemory held
	heapUsed  []uint64               // bytes held per heap
}

func (a *arena) init(d *Device, blockSize uint64) {
	a.d = d
	if blockSize == 0 {
		blockSize = defaultDeviceBlock
	}
	a.blockSize[DeviceMemory] = blockSize
	a.blockSize[HostMemory] = min(blockSize, defaultHostBlock)
	for k := range a.blockSize {
		if m := d.Info.MaxMemoryAllocationSize; m > 0 && a.blockSize[k] > m {
			a.blockSize[k] = m
		}
	}
	a.heapUsed = make([]uint64, len(d.Info.Heaps))
}

// memoryType picks a memory type index for kind among the allowed typeBits.
// Vulkan orders types so that, among those with the wanted flags, earlier
// ones have fewer extra properties, so the first match is the best.
func (a *arena) memoryType(kind MemoryKind, typeBits uint32) (int, error) {
	types := a.d.Info.MemoryTypes
	find := func(want MemoryProperty) int {
		for i, t := range types {
			if typeBits&(1<<uint(i)) != 0 && t.Flags&want == want {
				return i
			}
		}
		return -1
	}
	var i int
	switch kind {
	case DeviceMemory:
		if i = find(MemoryDeviceLocal); i < 0 {
			i = find(0)
		}
	case HostMemory:
		if i = find(MemoryHostVisible | MemoryHostCoherent | MemoryHostCached); i < 0 {
			i = find(MemoryHostVisible | MemoryHostCoherent)
		}
	}
	if i < 0 {
		return -1, fmt.Errorf("vk: no %s memory type among %#x on %s", kind, typeBits, a.d.Info.Name)
	}
	return i, nil
}

// alloc finds aligned space of size bytes for kind within typeBits.
func (a *arena) alloc(name string, kind MemoryKind, size, align uint64, typeBits uint32) (*memBlock, uint64, error) {
	ti, err := a.memoryType(kind, typeBits)
	if err != nil {
		return nil, 0, err
	}
	if align == 0 {
		align = 1
	}
	dedicated := size > a.blockSize[kind]/2
	if !dedicated {
		for _, b := range a.blocks {
			if b.dedicated || b.typeIndex != uint32(ti) || b.kind != kind {
				continue
			}
			if off, ok := b.take(size, align); ok {
				b.live++
				return b, off, nil
			}
		}
	}
	bsize := a.blockSize[kind]
	if dedicated {
		bsize = size
	}
	b, err := a.newBlock(name, kind, uint32(ti), bsize, size, dedicated)
	if err != nil {
		return nil, 0, err
	}
	off, ok := b.take(size, align)
	if !ok { // cannot happen: a fresh block of at least size bytes at offset 0
		a.freeBlock(b)
		return nil, 0, fmt.Errorf("vk: allocating %s: %d bytes do not fit a fresh block of %d", name, size, b.size)
	}
	b.live++
	return b, off, nil
}

func (a *arena) newBlock(name string, kind MemoryKind, ti uint32, bsize, need uint64, dedicated bool) (*memBlock, error) {
	info := &a.d.Info
	if m := info.MaxMemoryAllocationSize; m > 0 && need > m {
		return nil, fmt.Errorf("vk: allocating %s: %d bytes exceed maxMemoryAllocationSize %d on %s: %w", name, need, m, info.Name, ErrTooLarge)
	}
	if m := info.MaxMemoryAllocationCount; m > 0 && uint32(len(a.blocks)) >= m {
		return nil, fmt.Errorf("vk: allocating %s: %d allocations reach maxMemoryAllocationCount on %s: %w", name, len(a.blocks), info.Name, ErrTooLarge)
	}
	heap := info.MemoryTypes[ti].Heap
	free := a.heapFree(heap)
	if lim := a.d.opts.MemoryLimit; lim > 0 {
		held := a.allocated[DeviceMemory] + a.allocated[HostMemory]
		free = min(free, lim-min(lim, held))
	}
	if bsize > free && need <= free {
		bsize = need // a smaller block still fits: better than failing
	}
	if need > free {
		return nil, fmt.Errorf("vk: allocating %s: needed %s, free %s (heap %d of %s) on %s: %w",
			name, fmtBytes(need), fmtBytes(free), heap, fmtBytes(info.Heaps[heap].Size), info.Name, ErrOutOfDeviceMemory)
	}
	flags := info.MemoryTypes[ti].Flags
	mapIt := flags&(MemoryHostVisible|MemoryHostCoherent) == MemoryHostVisible|MemoryHostCoherent
	mem, mapped, r := cAllocMemory(a.d.c, bsize, ti, mapIt)
	if r != Success {
		err := a.d.fail("vkAllocateMemory", r, fmt.Sprintf("%s: %s of %s memory, %s free on %s", name, fmtBytes(bsize), kind, fmtBytes(free), info.Name))
		return nil, err
	}
	b := &memBlock{mem: mem, size: bsize, typeIndex: ti, heap: heap, kind: kind, mapped: mapped, dedicated: dedicated,
		free: []span{{0, bsize}}}
	a.blocks = append(a.blocks, b)
	a.allocated[kind] += bsize
	a.heapUsed[heap] += bsize
	return b, nil
}

// heapFree is what may still be allocated from heap: the driver's budget
// when VK_EXT_memory_budget is present, else the heap size less what vkrun holds.
func (a *arena) heapFree(heap int) uint64 {
	info := &a.d.Info
	if info.HasMemoryBudget {
		heaps := cHeapBudget(a.d.in.c, info.handle, true)
		if heap < len(heaps) && heaps[heap].Budget > heaps[heap].Usage {
			return heaps[heap].Budget - heaps[heap].Usage
		} else if heap < len(heaps) {
			return 0
		}
	}
	size := info.Heaps[heap].Size
	if a.heapUsed[heap] >= size {
		return 0
	}
	return size - a.heapUsed[heap]
}

func (a *arena) release(b *memBlock, off, size uint64) {
	b.give(off, size)
	b.live--
	if b.live == 0 {
		a.freeBlock(b)
	}
}

func (a *arena) freeBlock(b *memBlock) {
	for i, x := range a.blocks {
		if x == b {
			a.blocks = append(a.blocks[:i], a.blocks[i+1:]...)
			break
		}
	}
	cFreeMemory(a.d.c, b.mem)
	a.allocated[b.kind] -= b.size
	a.heapUsed[b.heap] -= b.size
}

func (a *arena) freeAll() {
	for _, b := range a.blocks {
		cFreeMemory(a.d.c, b.mem)
	}
	a.blocks = nil
	a.allocated = [numMemoryKinds]uint64{}
	for i := range a.heapUsed {
		a.heapUsed[i] = 0
	}
}

// take carves size bytes aligned to align from the first free span that fits.
func (b *memBlock) take(size, align uint64) (uint64, bool) {
	for i, s := range b.free {
		off := alignUp(s.off, align)
		if off < s.off || off-s.off > s.size || s.size-(off-s.off) < size {
			continue
		}
		end := off + size
		var repl []span
		if off > s.off {
			repl = append(repl, span{s.off, off - s.off})
		}
		if end < s.off+s.size {
			repl = append(repl, span{end, s.off + s.size - end})
		}
		b.free = append(b.free[:i], append(repl, b.free[i+1:]...)...)
		return off, true
	}
	return 0, false
}

// give returns [off, off+size) to the free list, merging neighbours.
func (b *memBlock) give(off, size uint64) {
	i := sort.Search(len(b.free), func(i int) bool { return b.free[i].off > off })
	b.free = append(b.free, span{})
	copy(b.free[i+1:], b.free[i:])
	b.free[i] = span{off, size}
	if i+1 < len(b.free) && b.free[i].off+b.free[i].size == b.free[i+1].off {
		b.free[i].size += b.free[i+1].size
		b.free = append(b.free[:i+1], b.free[i+2:]...)
	}
	if i > 0 && b.free[i-1].off+b.free[i-1].size == b.free[i].off {
		b.free[i-1].size += b.free[i].size
		b.free = append(b.free[:i], b.free[i+1:]...)
	}
}

func alignUp(x, a uint64) uint64 {
	if a <= 1 {
		return x
	}
	return (x + a - 1) / a * a
}

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Buffer is a VkBuffer bound to a range of an arena block. It is not safe
// for concurrent Close.
type Buffer struct {
	Name string
	Size uint64
	Kind MemoryKind

	d      *Device
	handle uint64
	block  *memBlock
	off    uint64 // within block
	alloc  uint64 // bytes taken from the block
	closed bool
}

// NewBuffer allocates a storage buffer of size bytes. name appears in errors
// ("allocating blk.3.attn_q.weight: ...").
func (d *Device) NewBuffer(name string, size uint64, kind MemoryKind) (*Buffer, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, fmt.Errorf("vk: allocating %s: zero-sized buffer", name)
	}
	if kind < 0 || kind >= numMemoryKinds {
		return nil, fmt.Errorf("vk: allocating %s: bad memory kind %d", name, kind)
	}
	if m := d.Info.MaxMemoryAllocationSize; m > 0 && size > m {
		return nil, fmt.Errorf("vk: allocating %s: %d bytes exceed maxMemoryAllocationSize %d on %s; split the tensor: %w", name, size, m, d.Info.Name, ErrTooLarge)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h, reqSize, reqAlign, reqTypes, r := cCreateBuffer(d.c, size, cBufferUsage)
	if r != Success {
		return nil, d.fail("vkCreateBuffer", r, name)
	}
	block, off, err := d.arena.alloc(name, kind, reqSize, reqAlign, reqTypes)
	if err != nil {
		cDestroyBuffer(d.c, h)
		return nil, err
	}
	if r := cBindBuffer(d.c, h, block.mem, off); r != Success {
		cDestroyBuffer(d.c, h)
		d.arena.release(block, off, reqSize)
		return nil, d.fail("vkBindBufferMemory", r, name)
	}
	b := &Buffer{Name: name, Size: size, Kind: kind, d: d, handle: h, block: block, off: off, alloc: reqSize}
	d.buffers[b] = struct{}{}
	return b, nil
}

// Mapped returns the buffer's bytes in host memory when its memory is
// host-visible, else nil. Writes are visible to the next submission; reads
// see GPU writes after a Wait on the sequence that made them.
func (b *Buffer) Mapped() []byte {
	if b.closed || b.block.mapped == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(b.block.mapped, b.off)), b.Size)
}

// All is the whole buffer as a Range.
func (b *Buffer) All() Range { return Range{Buffer: b, Offset: 0, Size: b.Size} }

// Slice is [off, off+size) of the buffer as a Range.
func (b *Buffer) Slice(off, size uint64) Range { return Range{Buffer: b, Offset: off, Size: size} }

// Close frees the buffer. The GPU must be done with it.
func (b *Buffer) Close() error {
	if b == nil {
		return nil
	}
	b.d.mu.Lock()
	defer b.d.mu.Unlock()
	b.destroyLocked()
	return nil
}

func (b *Buffer) destroyLocked() {
	if b.closed {
		return
	}
	b.closed = true
	cDestroyBuffer(b.d.c, b.handle)
	b.d.arena.release(b.block, b.off, b.alloc)
	delete(b.d.buffers, b)
}

// Range is a byte range of a buffer, as bound to a descriptor or copied.
type Range struct {
	Buffer       *Buffer
	Offset, Size uint64
}

func (r Range) check(what string) error {
	if r.Buffer == nil {
		return fmt.Errorf("vk: %s: nil buffer", what)
	}
	if r.Buffer.closed {
		return fmt.Errorf("vk: %s: buffer %s: %w", what, r.Buffer.Name, ErrClosed)
	}
	if r.Size == 0 || r.Offset > r.Buffer.Size || r.Size > r.Buffer.Size-r.Offset {
		return fmt.Errorf("vk: %s: range [%d, %d+%d) outside buffer %s of %d bytes", what, r.Offset, r.Offset, r.Size, r.Buffer.Name, r.Buffer.Size)
	}
	return nil
}

func (r Range) overlaps(o Range) bool {
	return r.Buffer == o.Buffer && r.Offset < o.Offset+o.Size && o.Offset < r.Offset+r.Size
}
