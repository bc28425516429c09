package vk

// This is the one file of vkrun that imports "C". Its functions take and
// return Go scalars: dispatchable handles travel as unsafe.Pointer to the C
// wrapper structs, non-dispatchable handles as uint64. Go memory passed in is
// only read or written during the call and holds no Go pointers.

/*
#cgo linux LDFLAGS: -ldl
#cgo CFLAGS: -O2 -Wall -Wno-unused-function
#include <stdlib.h>
#include "vkr.h"
*/
import "C"

import (
	"unsafe"
)

const errBufLen = 512

func cErr(buf []C.char) string { return C.GoString(&buf[0]) }

func cLoad(path string) (bool, string) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var e [errBufLen]C.char
	ok := C.vkr_load(cp, &e[0], errBufLen) != 0
	return ok, cErr(e[:])
}

func cLoaderVersion() uint32 { return uint32(C.vkr_loader_version()) }

func cHasLayer(name string) bool {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return C.vkr_has_instance_layer(cn) != 0
}

func cHasInstanceExtension(name string) bool {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return C.vkr_has_instance_extension(cn) != 0
}

func cCreateInstance(api uint32, validation, syncValidation, debugUtils bool, app string) (unsafe.Pointer, Result, string) {
	ca := C.CString(app)
	defer C.free(unsafe.Pointer(ca))
	var e [errBufLen]C.char
	var out *C.vkr_instance
	r := C.vkr_create_instance(C.uint32_t(api), cbool(validation), cbool(syncValidation), cbool(debugUtils), ca, &out, &e[0], errBufLen)
	return unsafe.Pointer(out), Result(r), cErr(e[:])
}

func cWrapInstance(handle uintptr, api uint32) (unsafe.Pointer, Result, string) {
	var e [errBufLen]C.char
	var out *C.vkr_instance
	r := C.vkr_wrap_instance(C.uintptr_t(handle), C.uint32_t(api), &out, &e[0], errBufLen)
	return unsafe.Pointer(out), Result(r), cErr(e[:])
}

// cDestroyInstanceTake destroys the instance, hands the messages raised up to
// and during destruction to take, and frees vkrun's state.
func cDestroyInstanceTake(in unsafe.Pointer, take func([]Message, int)) {
	ci := (*C.vkr_instance)(in)
	C.vkr_destroy_instance(ci)
	take(cTakeMessages(in))
	C.vkr_free_instance(ci)
}

func cRawInstance(in unsafe.Pointer) uintptr {
	return uintptr(C.vkr_raw_instance((*C.vkr_instance)(in)))
}

func cTakeMessages(in unsafe.Pointer) (msgs []Message, dropped int) {
	var m *C.vkr_msg
	var d C.int
	n := int(C.vkr_take_messages((*C.vkr_instance)(in), &m, &d))
	if n > 0 {
		for _, cm := range unsafe.Slice(m, n) {
			msg := Message{Severity: Severity(cm.severity), Type: MessageType(cm._type), Text: C.GoString(cm.text)}
			if cm.id != nil {
				msg.ID = C.GoString(cm.id)
			}
			msgs = append(msgs, msg)
		}
	}
	C.vkr_free_messages(m, C.int(n))
	return msgs, int(d)
}

func cEnumerateDevices(in unsafe.Pointer) ([]uintptr, Result) {
	ci := (*C.vkr_instance)(in)
	var n C.uint32_t
	if r := Result(C.vkr_enumerate_devices(ci, &n, nil)); r != Success {
		return nil, r
	}
	if n == 0 {
		return nil, Success
	}
	out := make([]uintptr, int(n))
	r := Result(C.vkr_enumerate_devices(ci, &n, (*C.uintptr_t)(unsafe.Pointer(&out[0]))))
	if r != Success && r != Incomplete {
		return nil, r
	}
	return out[:int(n)], Success
}

// coopmatShapes is the first n of the probe's {M, N, K} shapes.
func coopmatShapes(s *[C.VKR_MAX_COOPMAT_SHAPES][3]C.uint32_t, n C.uint32_t) []CooperativeMatrixShape {
	var out []CooperativeMatrixShape
	for i := 0; i < int(n) && i < len(s); i++ {
		out = append(out, CooperativeMatrixShape{M: uint32(s[i][0]), N: uint32(s[i][1]), K: uint32(s[i][2])})
	}
	return out
}

// cDeviceInfo fills a DeviceInfo from the driver's properties and features.
func cDeviceInfo(in unsafe.Pointer, pd uintptr) DeviceInfo {
	var c C.vkr_devinfo
	C.vkr_device_info((*C.vkr_instance)(in), C.uintptr_t(pd), &c)
	d := DeviceInfo{
		Name:                            C.GoString(&c.name[0]),
		DriverName:                      C.GoString(&c.driver_name[0]),
		DriverInfo:                      C.GoString(&c.driver_info[0]),
		VendorID:                        uint32(c.vendor_id),
		DeviceID:                        uint32(c.device_id),
		Type:                            DeviceType(c._type),
		APIVersion:                      Version(c.api_version),
		DriverVersion:                   uint32(c.driver_version),
		SubgroupSize:                    uint32(c.subgroup_size),
		MinSubgroupSize:                 uint32(c.min_subgroup_size),
		MaxSubgroupSize:                 uint32(c.max_subgroup_size),
		RequiredSubgroupSizeInCompute:   c.required_subgroup_size_stages&C.VK_SHADER_STAGE_COMPUTE_BIT != 0,
		SubgroupOps:                     SubgroupFeatures(c.subgroup_ops),
		SubgroupInCompute:               c.subgroup_stages&C.VK_SHADER_STAGE_COMPUTE_BIT != 0,
		SubgroupSizeControl:             c.subgroup_size_control != 0,
		ComputeFullSubgroups:            c.compute_full_subgroups != 0,
		IntegerDotProduct:               c.integer_dot != 0,
		IntegerDot4x8Accelerated:        c.integer_dot_4x8_accelerated != 0,
		CooperativeMatrixNV:             c.coopmat_nv != 0,
		CooperativeMatrixNVShapes:       coopmatShapes(&c.coopmat_nv_shapes, c.coopmat_nv_count),
		CooperativeMatrixKHR:            c.coopmat_khr != 0,
		CooperativeMatrixKHRShapes:      coopmatShapes(&c.coopmat_khr_shapes, c.coopmat_khr_count),
		VulkanMemoryModel:               c.vulkan_memory_model != 0,
		Float16:                         c.shader_float16 != 0,
		Int8:                            c.shader_int8 != 0,
		Int16:                           c.shader_int16 != 0,
		Int64:                           c.shader_int64 != 0,
		Storage16:                       c.storage16 != 0,
		UniformStorage16:                c.uniform_storage16 != 0,
		Storage8:                        c.storage8 != 0,
		UniformStorage8:                 c.uniform_storage8 != 0,
		MaxStorageBufferRange:           uint64(c.max_storage_buffer_range),
		MaxMemoryAllocationSize:         uint64(c.max_memory_allocation_size),
		MaxMemoryAllocationCount:        uint32(c.max_memory_allocation_count),
		MaxComputeSharedMemorySize:      uint32(c.max_compute_shared_memory_size),
		MaxWorkgroupInvocations:         uint32(c.max_workgroup_invocations),
		MaxPushConstantsSize:            uint32(c.max_push_constants_size),
		MinStorageBufferOffsetAlignment: uint64(c.min_storage_buffer_offset_alignment),
		TimestampPeriod:                 float64(c.timestamp_period),
		ComputeQueueFamily:              int(c.compute_family),
		TimestampValidBits:              uint32(c.timestamp_valid_bits),
		HasMemoryBudget:                 c.has_budget != 0,
		handle:                          pd,
	}
	for i := 0; i < 3; i++ {
		d.MaxWorkgroupCount[i] = uint32(c.max_workgroup_count[i])
		d.MaxWorkgroupSize[i] = uint32(c.max_workgroup_size[i])
	}
	copy(d.DeviceUUID[:], C.GoBytes(unsafe.Pointer(&c.device_uuid[0]), C.VK_UUID_SIZE))
	copy(d.PipelineCacheUUID[:], C.GoBytes(unsafe.Pointer(&c.cache_uuid[0]), C.VK_UUID_SIZE))
	d.Heaps, d.MemoryTypes = heapsFromC(&c)
	return d
}

func heapsFromC(c *C.vkr_devinfo) ([]MemoryHeap, []MemoryType) {
	heaps := make([]MemoryHeap, int(c.nheaps))
	for i := range heaps {
		heaps[i] = MemoryHeap{
			Size:        uint64(c.heap_size[i]),
			Budget:      uint64(c.heap_budget[i]),
			Usage:       uint64(c.heap_usage[i]),
			DeviceLocal: c.heap_flags[i]&C.VK_MEMORY_HEAP_DEVICE_LOCAL_BIT != 0,
		}
	}
	types := make([]MemoryType, int(c.ntypes))
	for i := range types {
		types[i] = MemoryType{Flags: MemoryProperty(c.type_flags[i]), Heap: int(c.type_heap[i])}
	}
	return heaps, types
}

// cHeapBudget re-reads each heap's budget and usage (VK_EXT_memory_budget).
func cHeapBudget(in unsafe.Pointer, pd uintptr, hasBudget bool) []MemoryHeap {
	var c C.vkr_devinfo
	c.has_budget = cbool(hasBudget)
	C.vkr_heap_budget((*C.vkr_instance)(in), C.uintptr_t(pd), &c)
	heaps, _ := heapsFromC(&c)
	return heaps
}

type cFeatures struct {
	Float16, Int8, Int16, Storage16, UniformStorage16, Storage8, UniformStorage8 bool
	SubgroupSizeControl, ComputeFullSubgroups                                    bool
	IntegerDotProduct                                                            bool
	CooperativeMatrixNV, CooperativeMatrixKHR, VulkanMemoryModel                 bool
}

func cCreateDevice(in unsafe.Pointer, pd uintptr, family uint32, f cFeatures) (unsafe.Pointer, Result, string) {
	cf := C.vkr_features{
		shader_float16:         cbool(f.Float16),
		shader_int8:            cbool(f.Int8),
		shader_int16:           cbool(f.Int16),
		storage16:              cbool(f.Storage16),
		uniform_storage16:      cbool(f.UniformStorage16),
		storage8:               cbool(f.Storage8),
		uniform_storage8:       cbool(f.UniformStorage8),
		subgroup_size_control:  cbool(f.SubgroupSizeControl),
		compute_full_subgroups: cbool(f.ComputeFullSubgroups),
		integer_dot:            cbool(f.IntegerDotProduct),
		coopmat_nv:             cbool(f.CooperativeMatrixNV),
		coopmat_khr:            cbool(f.CooperativeMatrixKHR),
		vulkan_memory_model:    cbool(f.VulkanMemoryModel),
	}
	var e [errBufLen]C.char
	var out *C.vkr_device
	r := C.vkr_create_device((*C.vkr_instance)(in), C.uintptr_t(pd), C.uint32_t(family), &cf, &out, &e[0], errBufLen)
	return unsafe.Pointer(out), Result(r), cErr(e[:])
}

func cWrapDevice(in unsafe.Pointer, pd, dev, queue uintptr, family uint32) (unsafe.Pointer, Result, string) {
	var e [errBufLen]C.char
	var out *C.vkr_device
	r := C.vkr_wrap_device((*C.vkr_instance)(in), C.uintptr_t(pd), C.uintptr_t(dev), C.uintptr_t(queue), C.uint32_t(family), &out, &e[0], errBufLen)
	return unsafe.Pointer(out), Result(r), cErr(e[:])
}

func cDestroyDevice(d unsafe.Pointer) { C.vkr_destroy_device((*C.vkr_device)(d)) }
func cDeviceWaitIdle(d unsafe.Pointer) Result {
	return Result(C.vkr_device_wait_idle((*C.vkr_device)(d)))
}
func cRawDevice(d unsafe.Pointer) (phys, dev, queue uintptr) {
	cd := (*C.vkr_device)(d)
	return uintptr(C.vkr_raw_physical(cd)), uintptr(C.vkr_raw_device(cd)), uintptr(C.vkr_raw_queue(cd))
}

func cAllocMemory(d unsafe.Pointer, size uint64, typeIndex uint32, mapIt bool) (uint64, unsafe.Pointer, Result) {
	var mem C.VkDeviceMemory
	var mapped unsafe.Pointer
	r := C.vkr_alloc_memory((*C.vkr_device)(d), C.uint64_t(size), C.uint32_t(typeIndex), cbool(mapIt), &mem, &mapped)
	return uint64(mem), mapped, Result(r)
}

func cFreeMemory(d unsafe.Pointer, mem uint64) {
	C.vkr_free_memory((*C.vkr_device)(d), C.VkDeviceMemory(mem))
}

func cCreateBuffer(d unsafe.Pointer, size uint64, usage uint32) (buf, reqSize, reqAlign uint64, reqTypes uint32, r Result) {
	var b C.VkBuffer
	var rs, ra C.uint64_t
	var rt C.uint32_t
	r = Result(C.vkr_create_buffer((*C.vkr_device)(d), C.uint64_t(size), C.uint32_t(usage), &b, &rs, &ra, &rt))
	return uint64(b), uint64(rs), uint64(ra), uint32(rt), r
}

func cBindBuffer(d unsafe.Pointer, buf, mem, off uint64) Result {
	return Result(C.vkr_bind_buffer((*C.vkr_device)(d), C.VkBuffer(buf), C.VkDeviceMemory(mem), C.uint64_t(off)))
}

func cDestroyBuffer(d unsafe.Pointer, buf uint64) {
	C.vkr_destroy_buffer((*C.vkr_device)(d), C.VkBuffer(buf))
}

func cCreatePipelineCache(d unsafe.Pointer, data []byte) (uint64, Result) {
	var c C.VkPipelineCache
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	r := C.vkr_create_pipeline_cache((*C.vkr_device)(d), p, C.size_t(len(data)), &c)
	return uint64(c), Result(r)
}

func cDestroyPipelineCache(d unsafe.Pointer, c uint64) {
	C.vkr_destroy_pipeline_cache((*C.vkr_device)(d), C.VkPipelineCache(c))
}

func cPipelineCacheData(d unsafe.Pointer, c uint64) ([]byte, Result) {
	var n C.size_t
	if r := Result(C.vkr_pipeline_cache_data((*C.vkr_device)(d), C.VkPipelineCache(c), &n, nil)); r != Success {
		return nil, r
	}
	if n == 0 {
		return nil, Success
	}
	buf := make([]byte, int(n))
	r := Result(C.vkr_pipeline_cache_data((*C.vkr_device)(d), C.VkPipelineCache(c), &n, unsafe.Pointer(&buf[0])))
	if r != Success && r != Incomplete {
		return nil, r
	}
	return buf[:int(n)], Success
}

func cCreatePipeline(d unsafe.Pointer, cache uint64, code []uint32, bindingTypes []uint32, pushBytes uint32,
	specIDs, specValues []uint32, requiredSubgroupSize uint32, fullSubgroups bool) (dsl, layout, pipeline uint64, r Result) {
	var cdsl C.VkDescriptorSetLayout
	var clayout C.VkPipelineLayout
	var cpipe C.VkPipeline
	var bt, si, sv *C.uint32_t
	if len(bindingTypes) > 0 {
		bt = (*C.uint32_t)(unsafe.Pointer(&bindingTypes[0]))
	}
	if len(specIDs) > 0 {
		si = (*C.uint32_t)(unsafe.Pointer(&specIDs[0]))
		sv = (*C.uint32_t)(unsafe.Pointer(&specValues[0]))
	}
	r = Result(C.vkr_create_pipeline((*C.vkr_device)(d), C.VkPipelineCache(cache),
		(*C.uint32_t)(unsafe.Pointer(&code[0])), C.size_t(len(code)*4),
		C.uint32_t(len(bindingTypes)), bt, C.uint32_t(pushBytes),
		C.uint32_t(len(specIDs)), si, sv,
		C.uint32_t(requiredSubgroupSize), cbool(fullSubgroups),
		&cdsl, &clayout, &cpipe))
	return uint64(cdsl), uint64(clayout), uint64(cpipe), r
}

func cDestroyPipeline(d unsafe.Pointer, dsl, layout, pipeline uint64) {
	C.vkr_destroy_pipeline((*C.vkr_device)(d), C.VkDescriptorSetLayout(dsl), C.VkPipelineLayout(layout), C.VkPipeline(pipeline))
}

func cCreateDescriptorPool(d unsafe.Pointer, maxSets, storage, uniform uint32) (uint64, Result) {
	var p C.VkDescriptorPool
	r := C.vkr_create_descriptor_pool((*C.vkr_device)(d), C.uint32_t(maxSets), C.uint32_t(storage), C.uint32_t(uniform), &p)
	return uint64(p), Result(r)
}

func cDestroyDescriptorPool(d unsafe.Pointer, p uint64) {
	C.vkr_destroy_descriptor_pool((*C.vkr_device)(d), C.VkDescriptorPool(p))
}

func cAllocateSet(d unsafe.Pointer, pool, dsl uint64) (uint64, Result) {
	var s C.VkDescriptorSet
	r := C.vkr_allocate_set((*C.vkr_device)(d), C.VkDescriptorPool(pool), C.VkDescriptorSetLayout(dsl), &s)
	return uint64(s), Result(r)
}

func cFreeSet(d unsafe.Pointer, pool, set uint64) Result {
	return Result(C.vkr_free_set((*C.vkr_device)(d), C.VkDescriptorPool(pool), C.VkDescriptorSet(set)))
}

func cWriteSet(d unsafe.Pointer, set uint64, types []uint32, bufs, offs, ranges []uint64) {
	if len(types) == 0 {
		return
	}
	C.vkr_write_set((*C.vkr_device)(d), C.VkDescriptorSet(set), C.uint32_t(len(types)),
		(*C.uint32_t)(unsafe.Pointer(&types[0])),
		(*C.uint64_t)(unsafe.Pointer(&bufs[0])),
		(*C.uint64_t)(unsafe.Pointer(&offs[0])),
		(*C.uint64_t)(unsafe.Pointer(&ranges[0])))
}

// cCreateCmd makes a command pool, one command buffer, a fence and an optional
// timestamp query pool, held in C memory.
func cCreateCmd(d unsafe.Pointer, nqueries uint32) (unsafe.Pointer, Result) {
	c := (*C.vkr_cmd)(C.calloc(1, C.size_t(unsafe.Sizeof(C.vkr_cmd{}))))
	if c == nil {
		return nil, ErrorOutOfHostMemory
	}
	r := Result(C.vkr_create_cmd((*C.vkr_device)(d), C.uint32_t(nqueries), c))
	if r != Success {
		C.free(unsafe.Pointer(c))
		return nil, r
	}
	return unsafe.Pointer(c), Success
}

func cDestroyCmd(d, c unsafe.Pointer) {
	C.vkr_destroy_cmd((*C.vkr_device)(d), (*C.vkr_cmd)(c))
	C.free(c)
}

func cRecord(d, c unsafe.Pointer, ops []uint64, oneTime bool) (Result, int) {
	var bad C.size_t
	var p *C.uint64_t
	if len(ops) > 0 {
		p = (*C.uint64_t)(unsafe.Pointer(&ops[0]))
	}
	r := C.vkr_record((*C.vkr_device)(d), (*C.vkr_cmd)(c), p, C.size_t(len(ops)), cbool(oneTime), &bad)
	return Result(r), int(bad)
}

func cSubmit(d, c unsafe.Pointer) Result {
	return Result(C.vkr_submit((*C.vkr_device)(d), (*C.vkr_cmd)(c)))
}

func cWait(d, c unsafe.Pointer, timeoutNS uint64) Result {
	return Result(C.vkr_wait((*C.vkr_device)(d), (*C.vkr_cmd)(c), C.uint64_t(timeoutNS)))
}

func cFenceStatus(d, c unsafe.Pointer) Result {
	return Result(C.vkr_fence_status((*C.vkr_device)(d), (*C.vkr_cmd)(c)))
}

func cQueryResults(d, c unsafe.Pointer, first uint32, out []uint64) Result {
	if len(out) == 0 {
		return Success
	}
	return Result(C.vkr_query_results((*C.vkr_device)(d), (*C.vkr_cmd)(c), C.uint32_t(first), C.uint32_t(len(out)),
		(*C.uint64_t)(unsafe.Pointer(&out[0]))))
}

// Constants mirrored from the headers, checked against them in a test.
const (
	cStorageBuffer = uint32(C.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER)
	cUniformBuffer = uint32(C.VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER)

	cOpDispatch   = uint64(C.VKR_OP_DISPATCH)
	cOpBarrier    = uint64(C.VKR_OP_BARRIER)
	cOpCopy       = uint64(C.VKR_OP_COPY)
	cOpFill       = uint64(C.VKR_OP_FILL)
	cOpTimestamp  = uint64(C.VKR_OP_TIMESTAMP)
	cOpResetQuery = uint64(C.VKR_OP_RESET_QUERIES)

	cStageCompute  = uint64(C.VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT)
	cStageTransfer = uint64(C.VK_PIPELINE_STAGE_TRANSFER_BIT)
	cStageTop      = uint64(C.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT)
	cStageBottom   = uint64(C.VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT)
	cStageHost     = uint64(C.VK_PIPELINE_STAGE_HOST_BIT)

	cAccessShaderRead    = uint64(C.VK_ACCESS_SHADER_READ_BIT)
	cAccessShaderWrite   = uint64(C.VK_ACCESS_SHADER_WRITE_BIT)
	cAccessTransferRead  = uint64(C.VK_ACCESS_TRANSFER_READ_BIT)
	cAccessTransferWrite = uint64(C.VK_ACCESS_TRANSFER_WRITE_BIT)
	cAccessHostRead      = uint64(C.VK_ACCESS_HOST_READ_BIT)
	cAccessHostWrite     = uint64(C.VK_ACCESS_HOST_WRITE_BIT)

	cBufferUsage = uint32(C.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | C.VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
		C.VK_BUFFER_USAGE_TRANSFER_DST_BIT | C.VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT)
)

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
