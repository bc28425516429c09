package vk

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Features are the optional device features vkrun turned on. Kernels choose
// variants by them; every kernel keeps a path that needs none.
type Features struct {
	Float16             bool // shaderFloat16
	Int8                bool // shaderInt8
	Int16               bool // shaderInt16
	Storage16           bool // storageBuffer16BitAccess
	Storage8            bool // storageBuffer8BitAccess
	SubgroupSizeControl bool
	// ComputeFullSubgroups: a pipeline can require full subgroups
	// (PipelineDesc.FullSubgroups).
	ComputeFullSubgroups bool
	SubgroupArithmetic   bool // subgroup add/min/max in compute shaders (a property, not a feature)
	SubgroupShuffle      bool // subgroup shuffles in compute shaders (a property, not a feature)
	// IntegerDotProduct: shaders may use SPIR-V's integer dot products
	// (shaderIntegerDotProduct, enabled at device creation).
	IntegerDotProduct bool
	// IntegerDot4x8Accelerated: the packed 4×int8 signed dot product is
	// accelerated (a property, DeviceInfo.IntegerDot4x8Accelerated).
	IntegerDot4x8Accelerated bool
	// CooperativeMatrixNV and CooperativeMatrixKHR: shaders may use
	// VK_NV_cooperative_matrix and VK_KHR_cooperative_matrix (enabled at
	// device creation) in the shapes DeviceInfo lists. Each comes with
	// shaderFloat16 (Float16) for the f16 operands and vulkanMemoryModel,
	// which the cooperative-matrix modules are written on.
	CooperativeMatrixNV  bool
	CooperativeMatrixKHR bool
}

// DeviceOptions configure NewDevice.
type DeviceOptions struct {
	// PipelineCacheDir holds the on-disk pipeline cache. "" means the user's
	// cache dir (os.UserCacheDir()/vkrun, or $VKRUN_CACHE_DIR); "off" disables it.
	PipelineCacheDir string
	// NoOptionalFeatures turns on no optional feature, to exercise the
	// baseline path that every Vulkan 1.1 device supports.
	NoOptionalFeatures bool
	// ForceStaging routes uploads and downloads through the staging ring even
	// when device memory is host-visible (lavapipe, integrated GPUs).
	ForceStaging bool
	// BlockSize is the size of the arena's device-memory blocks (0: 256 MiB,
	// capped by maxMemoryAllocationSize).
	BlockSize uint64
	// MemoryLimit caps the memory vkrun allocates on the device, all kinds
	// together (0: no cap beyond the heaps' budgets). Exceeding it fails with
	// ErrOutOfDeviceMemory, as the driver would.
	MemoryLimit uint64
}

// Device is a logical VkDevice with one compute queue. Its methods are safe
// for concurrent use; the objects it makes are not, unless they say so.
type Device struct {
	Info     DeviceInfo
	Features Features

	in    *Instance
	c     unsafe.Pointer // *C.vkr_device
	owned bool
	opts  DeviceOptions

	lost   atomic.Bool
	closed atomic.Bool

	queueMu sync.Mutex // vkQueueSubmit needs external synchronisation

	mu        sync.Mutex // guards everything below
	arena     arena
	buffers   map[*Buffer]struct{}
	pipelines map[*Pipeline]struct{}
	sets      map[*DescriptorSet]struct{}
	seqs      map[*Sequence]struct{}
	pools     []*descPool
	cache     pipelineCache

	stagingMu sync.Mutex
	staging   *stagingRing
}

// NewDevice creates a logical device on the physical device info describes
// (from Devices, usually via Choose).
func (in *Instance) NewDevice(info DeviceInfo, opts DeviceOptions) (*Device, error) {
	in.mu.Lock()
	closed := in.closed
	in.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if why := info.Usable(); why != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrNoDevice, info.Name, why)
	}
	var f Features
	var cf cFeatures
	if !opts.NoOptionalFeatures {
		f = Features{
			Float16:                  info.Float16,
			Int8:                     info.Int8,
			Int16:                    info.Int16,
			Storage16:                info.Storage16,
			Storage8:                 info.Storage8,
			SubgroupSizeControl:      info.SubgroupSizeControl,
			ComputeFullSubgroups:     info.ComputeFullSubgroups,
			SubgroupArithmetic:       info.SubgroupInCompute && info.SubgroupOps&SubgroupArithmetic != 0,
			SubgroupShuffle:          info.SubgroupInCompute && info.SubgroupOps&SubgroupShuffle != 0,
			IntegerDotProduct:        info.IntegerDotProduct,
			IntegerDot4x8Accelerated: info.IntegerDotProduct && info.IntegerDot4x8Accelerated,
			CooperativeMatrixNV:      info.CooperativeMatrixNV && info.Float16 && info.VulkanMemoryModel,
			CooperativeMatrixKHR:     info.CooperativeMatrixKHR && info.Float16 && info.VulkanMemoryModel,
		}
		cf = cFeatures{
			Float16: info.Float16, Int8: info.Int8, Int16: info.Int16,
			Storage16: info.Storage16, UniformStorage16: info.UniformStorage16,
			Storage8: info.Storage8, UniformStorage8: info.UniformStorage8,
			SubgroupSizeControl: info.SubgroupSizeControl, ComputeFullSubgroups: info.ComputeFullSubgroups,
			IntegerDotProduct:    info.IntegerDotProduct,
			CooperativeMatrixNV:  f.CooperativeMatrixNV,
			CooperativeMatrixKHR: f.CooperativeMatrixKHR,
			VulkanMemoryModel:    f.CooperativeMatrixNV || f.CooperativeMatrixKHR,
		}
	}
	c, r, msg := cCreateDevice(in.c, info.handle, uint32(info.ComputeQueueFamily), cf)
	if r != Success {
		return nil, &CallError{Call: "vkCreateDevice", Result: r, Detail: msg}
	}
	d := newDevice(in, info, f, c, true, opts)
	return d, nil
}

// ExternalDevice names a device that the caller created and keeps owning:
// vkrun uses it and never destroys it. Features lists the optional features
// the caller enabled at creation (vkrun only uses those).
type ExternalDevice struct {
	PhysicalDevice uintptr // VkPhysicalDevice
	Device         uintptr // VkDevice
	Queue          uintptr // VkQueue, of a family with VK_QUEUE_COMPUTE_BIT
	QueueFamily    uint32
	Features       Features
}

// WrapDevice adopts a caller's VkDevice. Close releases vkrun's objects on it
// but leaves the device, its queue and the instance alive. The caller must not
// submit to the same queue concurrently with vkrun unless it serialises submits.
func (in *Instance) WrapDevice(ext ExternalDevice, opts DeviceOptions) (*Device, error) {
	if ext.PhysicalDevice == 0 || ext.Device == 0 || ext.Queue == 0 {
		return nil, fmt.Errorf("vk: WrapDevice: null handle (physical %#x, device %#x, queue %#x)", ext.PhysicalDevice, ext.Device, ext.Queue)
	}
	in.mu.Lock()
	closed := in.closed
	in.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	info := cDeviceInfo(in.c, ext.PhysicalDevice)
	info.Index = -1
	info.ComputeQueueFamily = int(ext.QueueFamily)
	c, r, msg := cWrapDevice(in.c, ext.PhysicalDevice, ext.Device, ext.Queue, ext.QueueFamily)
	if r != Success {
		return nil, &CallError{Call: "vkGetDeviceProcAddr", Result: r, Detail: msg}
	}
	return newDevice(in, info, ext.Features, c, false, opts), nil
}

func newDevice(in *Instance, info DeviceInfo, f Features, c unsafe.Pointer, owned bool, opts DeviceOptions) *Device {
	d := &Device{
		Info: info, Features: f, in: in, c: c, owned: owned, opts: opts,
		buffers:   map[*Buffer]struct{}{},
		pipelines: map[*Pipeline]struct{}{},
		sets:      map[*DescriptorSet]struct{}{},
		seqs:      map[*Sequence]struct{}{},
	}
	d.arena.init(d, opts.BlockSize)
	d.cache.open(d, opts.PipelineCacheDir)
	in.mu.Lock()
	if in.devices == nil {
		in.devices = map[*Device]struct{}{}
	}
	in.devices[d] = struct{}{}
	in.mu.Unlock()
	return d
}

// Instance returns the instance the device belongs to.
func (d *Device) Instance() *Instance { return d.in }

// Handles returns the raw VkPhysicalDevice, VkDevice and VkQueue.
func (d *Device) Handles() (physical, device, queue uintptr) {
	if d.closed.Load() {
		return 0, 0, 0
	}
	return cRawDevice(d.c)
}

// QueueFamily is the index of the compute queue's family.
func (d *Device) QueueFamily() uint32 { return uint32(d.Info.ComputeQueueFamily) }

// Lost reports whether the device was lost; every later call fails with ErrDeviceLost.
func (d *Device) Lost() bool { return d.lost.Load() }

// usable returns an error if the device can no longer be used.
func (d *Device) usable() error {
	if d.closed.Load() {
		return ErrClosed
	}
	if d.lost.Load() {
		return fmt.Errorf("vk: %s: %w", d.Info.Name, ErrDeviceLost)
	}
	return nil
}

// fail wraps a failed call, and marks the device lost on VK_ERROR_DEVICE_LOST.
func (d *Device) fail(call string, r Result, detail string) error {
	if r == ErrorDeviceLost {
		d.lost.Store(true)
	}
	return &CallError{Call: call, Result: r, Detail: detail}
}

// WaitIdle waits until the device has finished all submitted work.
func (d *Device) WaitIdle() error {
	if err := d.usable(); err != nil {
		return err
	}
	d.queueMu.Lock()
	r := cDeviceWaitIdle(d.c)
	d.queueMu.Unlock()
	if r != Success {
		return d.fail("vkDeviceWaitIdle", r, "")
	}
	return nil
}

// AllocatedBytes is the device memory vkrun holds, by memory kind.
func (d *Device) AllocatedBytes() (device, host uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.arena.allocated[DeviceMemory], d.arena.allocated[HostMemory]
}

// FreeBytes is about how much more memory of kind vkrun could allocate:
// the free space in its blocks of that kind plus what the heap of the
// kind's memory type has left (the driver's budget where
// VK_EXT_memory_budget reports one), within DeviceOptions.MemoryLimit.
// Callers use it to refuse a request up front with a clear message; an
// allocation can still fail if the memory is fragmented.
func (d *Device) FreeBytes(kind MemoryKind) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := &d.arena
	ti, err := a.memoryType(kind, ^uint32(0))
	if err != nil {
		return 0
	}
	free := a.heapFree(d.Info.MemoryTypes[ti].Heap)
	if lim := d.opts.MemoryLimit; lim > 0 {
		held := a.allocated[DeviceMemory] + a.allocated[HostMemory]
		free = min(free, lim-min(lim, held))
	}
	for _, b := range a.blocks {
		if b.kind == kind && !b.dedicated {
			for _, sp := range b.free {
				free += sp.size
			}
		}
	}
	return free
}

// BufferBytes is the sum of live buffer sizes, by memory kind.
func (d *Device) BufferBytes() (device, host uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for b := range d.buffers {
		if b.Kind == DeviceMemory {
			device += b.Size
		} else {
			host += b.Size
		}
	}
	return device, host
}

// Close waits for the device to go idle, destroys every object vkrun made on
// it (sequences, descriptor sets, pipelines, buffers, memory) children first,
// saves the pipeline cache, and destroys the device if vkrun created it.
// Close is idempotent.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if !d.lost.Load() {
		d.queueMu.Lock()
		cDeviceWaitIdle(d.c) // a failure here is a lost device: destruction proceeds
		d.queueMu.Unlock()
	}
	d.stagingMu.Lock()
	d.staging = nil // its buffer and sequences are among the children below
	d.stagingMu.Unlock()

	d.mu.Lock()
	for s := range d.seqs {
		s.destroyLocked()
	}
	for s := range d.sets {
		s.destroyLocked()
	}
	for _, p := range d.pools {
		cDestroyDescriptorPool(d.c, p.handle)
	}
	d.pools = nil
	for p := range d.pipelines {
		p.destroyLocked()
	}
	for b := range d.buffers {
		b.destroyLocked()
	}
	d.arena.freeAll()
	cacheErr := d.cache.close()
	d.mu.Unlock()
	cDestroyDevice(d.c) // frees the wrapper; destroys the VkDevice only if owned
	d.c = nil
	d.in.mu.Lock()
	delete(d.in.devices, d)
	d.in.mu.Unlock()
	return cacheErr
}
