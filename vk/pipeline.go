package vk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Access is how a kernel uses a binding; the recorder derives barriers from it.
type Access int

const (
	Read Access = 1 << iota
	Write
	ReadWrite = Read | Write
)

// SpecConstant sets one specialization constant (layout(constant_id = ID)).
type SpecConstant struct {
	ID    uint32
	Value uint32 // bit pattern: use math.Float32bits for floats
}

// PipelineDesc declares a compute kernel: its SPIR-V, its storage-buffer
// bindings (0, 1, … in one descriptor set), its push-constant size, and
// specialization constants.
type PipelineDesc struct {
	Name             string
	SPIRV            []byte
	Bindings         []Access
	PushConstantSize uint32
	Spec             []SpecConstant
	// RequiredSubgroupSize, when non-zero, needs Features.SubgroupSizeControl.
	RequiredSubgroupSize uint32
	// FullSubgroups makes every subgroup of a workgroup full
	// (VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT): it needs
	// Features.ComputeFullSubgroups, and a workgroup width that is a
	// multiple of the required subgroup size, or else of the largest one.
	FullSubgroups bool
}

// Pipeline is a compute pipeline with its descriptor-set and pipeline layouts.
type Pipeline struct {
	Name     string
	Bindings []Access
	PushSize uint32

	d                     *Device
	dsl, layout, pipeline uint64
	closed                bool
}

const spirvMagic = 0x07230203

// NewPipeline builds a compute pipeline, through the device's pipeline cache.
func (d *Device) NewPipeline(desc PipelineDesc) (*Pipeline, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	if len(desc.SPIRV) < 20 || len(desc.SPIRV)%4 != 0 || binary.LittleEndian.Uint32(desc.SPIRV) != spirvMagic {
		return nil, fmt.Errorf("vk: pipeline %s: not SPIR-V (%d bytes)", desc.Name, len(desc.SPIRV))
	}
	if len(desc.Bindings) > 32 {
		return nil, fmt.Errorf("vk: pipeline %s: %d bindings (max 32)", desc.Name, len(desc.Bindings))
	}
	if len(desc.Spec) > 16 {
		return nil, fmt.Errorf("vk: pipeline %s: %d specialization constants (max 16)", desc.Name, len(desc.Spec))
	}
	if desc.PushConstantSize%4 != 0 || desc.PushConstantSize > d.Info.MaxPushConstantsSize {
		return nil, fmt.Errorf("vk: pipeline %s: push constants of %d bytes (must be a multiple of 4, at most %d)", desc.Name, desc.PushConstantSize, d.Info.MaxPushConstantsSize)
	}
	if desc.RequiredSubgroupSize != 0 && !d.Features.SubgroupSizeControl {
		return nil, fmt.Errorf("vk: pipeline %s: needs subgroup size %d but subgroup size control is off on %s", desc.Name, desc.RequiredSubgroupSize, d.Info.Name)
	}
	if desc.FullSubgroups && !d.Features.ComputeFullSubgroups {
		return nil, fmt.Errorf("vk: pipeline %s: needs full subgroups, which %s does not offer", desc.Name, d.Info.Name)
	}
	code := make([]uint32, len(desc.SPIRV)/4)
	for i := range code {
		code[i] = binary.LittleEndian.Uint32(desc.SPIRV[4*i:])
	}
	types := make([]uint32, len(desc.Bindings))
	for i, a := range desc.Bindings {
		if a&ReadWrite == 0 || a&^ReadWrite != 0 {
			return nil, fmt.Errorf("vk: pipeline %s: binding %d has bad access %d", desc.Name, i, a)
		}
		types[i] = cStorageBuffer
	}
	ids := make([]uint32, len(desc.Spec))
	vals := make([]uint32, len(desc.Spec))
	for i, s := range desc.Spec {
		ids[i], vals[i] = s.ID, s.Value
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dsl, layout, pipe, r := cCreatePipeline(d.c, d.cache.handle, code, types, desc.PushConstantSize, ids, vals, desc.RequiredSubgroupSize, desc.FullSubgroups)
	if r != Success {
		return nil, d.fail("vkCreateComputePipelines", r, desc.Name)
	}
	d.cache.dirty = true
	p := &Pipeline{Name: desc.Name, Bindings: append([]Access(nil), desc.Bindings...), PushSize: desc.PushConstantSize,
		d: d, dsl: dsl, layout: layout, pipeline: pipe}
	d.pipelines[p] = struct{}{}
	return p, nil
}

// Close destroys the pipeline. The GPU must be done with it, and descriptor
// sets made for it must not be used afterwards.
func (p *Pipeline) Close() error {
	if p == nil {
		return nil
	}
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	p.destroyLocked()
	return nil
}

func (p *Pipeline) destroyLocked() {
	if p.closed {
		return
	}
	p.closed = true
	cDestroyPipeline(p.d.c, p.dsl, p.layout, p.pipeline)
	delete(p.d.pipelines, p)
}

// descPool is one VkDescriptorPool; the device grows a list of them.
type descPool struct {
	handle uint64
	live   int
}

const (
	poolSets        = 512
	poolDescriptors = 4096
)

// DescriptorSet binds buffer ranges to a pipeline's bindings.
type DescriptorSet struct {
	Pipeline *Pipeline
	Ranges   []Range

	d      *Device
	pool   *descPool
	handle uint64
	closed bool
}

// NewDescriptorSet binds ranges, in order, to p's bindings. Each range's
// offset must be a multiple of minStorageBufferOffsetAlignment and its size at
// most maxStorageBufferRange; bind a big tensor in several ranges.
func (d *Device) NewDescriptorSet(p *Pipeline, ranges ...Range) (*DescriptorSet, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	if p == nil || p.closed {
		return nil, fmt.Errorf("vk: descriptor set: pipeline is nil or closed")
	}
	if len(ranges) != len(p.Bindings) {
		return nil, fmt.Errorf("vk: descriptor set for %s: %d ranges for %d bindings", p.Name, len(ranges), len(p.Bindings))
	}
	types := make([]uint32, len(ranges))
	bufs := make([]uint64, len(ranges))
	offs := make([]uint64, len(ranges))
	sizes := make([]uint64, len(ranges))
	for i, r := range ranges {
		what := fmt.Sprintf("descriptor set for %s binding %d", p.Name, i)
		if err := r.check(what); err != nil {
			return nil, err
		}
		if r.Buffer.d != d {
			return nil, fmt.Errorf("vk: %s: buffer %s belongs to another device", what, r.Buffer.Name)
		}
		if a := d.Info.MinStorageBufferOffsetAlignment; a > 1 && r.Offset%a != 0 {
			return nil, fmt.Errorf("vk: %s: offset %d of %s is not a multiple of minStorageBufferOffsetAlignment %d", what, r.Offset, r.Buffer.Name, a)
		}
		if m := d.Info.MaxStorageBufferRange; r.Size > m {
			return nil, fmt.Errorf("vk: %s: range of %d bytes of %s exceeds maxStorageBufferRange %d; bind it in parts: %w", what, r.Size, r.Buffer.Name, m, ErrTooLarge)
		}
		types[i], bufs[i], offs[i], sizes[i] = cStorageBuffer, r.Buffer.handle, r.Offset, r.Size
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var pool *descPool
	var set uint64
	for _, pl := range d.pools {
		s, r := cAllocateSet(d.c, pl.handle, p.dsl)
		if r == Success {
			pool, set = pl, s
			break
		}
		if r != ErrorOutOfPoolMemory && r != ErrorFragmentedPool {
			return nil, d.fail("vkAllocateDescriptorSets", r, p.Name)
		}
	}
	if pool == nil {
		h, r := cCreateDescriptorPool(d.c, poolSets, poolDescriptors, 0)
		if r != Success {
			return nil, d.fail("vkCreateDescriptorPool", r, p.Name)
		}
		pool = &descPool{handle: h}
		d.pools = append(d.pools, pool)
		s, r := cAllocateSet(d.c, h, p.dsl)
		if r != Success {
			return nil, d.fail("vkAllocateDescriptorSets", r, p.Name)
		}
		set = s
	}
	cWriteSet(d.c, set, types, bufs, offs, sizes)
	pool.live++
	s := &DescriptorSet{Pipeline: p, Ranges: append([]Range(nil), ranges...), d: d, pool: pool, handle: set}
	d.sets[s] = struct{}{}
	return s, nil
}

// Close frees the descriptor set. The GPU must be done with it.
func (s *DescriptorSet) Close() error {
	if s == nil {
		return nil
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.destroyLocked()
	return nil
}

func (s *DescriptorSet) destroyLocked() {
	if s.closed {
		return
	}
	s.closed = true
	cFreeSet(s.d.c, s.pool.handle, s.handle)
	s.pool.live--
	delete(s.d.sets, s)
}

// pipelineCache is a VkPipelineCache persisted to disk so that the second
// start skips shader compilation.
type pipelineCache struct {
	d      *Device
	handle uint64
	path   string
	dirty  bool
}

// CacheDirEnv overrides the pipeline cache directory.
const CacheDirEnv = "VKRUN_CACHE_DIR"

func (c *pipelineCache) open(d *Device, dir string) {
	c.d = d
	if dir == "" {
		dir = os.Getenv(CacheDirEnv)
	}
	if dir == "" {
		if base, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(base, "vkrun")
		}
	}
	var data []byte
	if dir != "" && dir != "off" {
		info := &d.Info
		c.path = filepath.Join(dir, fmt.Sprintf("pipelines-%04x-%04x-%x.bin", info.VendorID, info.DeviceID, info.PipelineCacheUUID))
		if b, err := os.ReadFile(c.path); err == nil && validCacheHeader(b, info) {
			data = b
		}
	}
	h, r := cCreatePipelineCache(d.c, data)
	if r != Success && len(data) > 0 {
		h, r = cCreatePipelineCache(d.c, nil) // the driver rejected the file: start empty
	}
	if r == Success {
		c.handle = h
	}
}

// validCacheHeader checks VkPipelineCacheHeaderVersionOne against the device,
// so a stale or foreign file never reaches the driver.
func validCacheHeader(b []byte, info *DeviceInfo) bool {
	if len(b) < 32 {
		return false
	}
	hdrLen := binary.LittleEndian.Uint32(b[0:])
	version := binary.LittleEndian.Uint32(b[4:])
	return hdrLen >= 32 && int(hdrLen) <= len(b) && version == 1 &&
		binary.LittleEndian.Uint32(b[8:]) == info.VendorID &&
		binary.LittleEndian.Uint32(b[12:]) == info.DeviceID &&
		bytes.Equal(b[16:32], info.PipelineCacheUUID[:])
}

// close saves the cache when pipelines were made, then destroys it. A cache
// that cannot be written is not an error worth failing Close for, except
// when the directory exists and the write itself failed.
func (c *pipelineCache) close() error {
	if c.handle == 0 {
		return nil
	}
	var err error
	if c.dirty && c.path != "" && !c.d.lost.Load() {
		if data, r := cPipelineCacheData(c.d.c, c.handle); r == Success && len(data) > 0 {
			err = writeFileAtomic(c.path, data)
			if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
				err = nil // a read-only or missing home: run without a disk cache
			}
		}
	}
	cDestroyPipelineCache(c.d.c, c.handle)
	c.handle = 0
	return err
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pipelines-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("vk: saving pipeline cache: %w", err)
	}
	return nil
}

// PipelineCachePath is where the device's pipeline cache is saved ("" if none).
func (d *Device) PipelineCachePath() string { return d.cache.path }
