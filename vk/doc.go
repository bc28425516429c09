// Package vk is vkrun's thin Vulkan compute layer: the only package in vkrun
// that uses cgo.
//
// It loads libvulkan.so.1 at run time (so programs build and start without
// it), creates an instance with optional validation, enumerates and chooses
// devices, and gives four nouns for compute:
//
//   - Device: a VkDevice with one compute queue, a memory arena, a descriptor
//     pool list and an on-disk pipeline cache.
//   - Buffer: a storage buffer suballocated from the arena, in DeviceMemory or
//     HostMemory; a Range is a byte range of one, as bound or copied.
//   - Pipeline: a compute pipeline from SPIR-V, with declared bindings (and how
//     each is accessed), push constants and specialization constants; a
//     DescriptorSet binds Ranges to it.
//   - Sequence: a recording of dispatches, copies and fills with the barriers
//     their bindings need, submitted with one vkQueueSubmit and waited on
//     with a timeout, reusable across submits, with optional GPU timestamps.
//
// Every Vulkan struct is built in C (vkr.c); Go passes handles and scalars.
// Every failed call returns an error that names the call and the VkResult
// ("vk: vkQueueSubmit: VK_ERROR_DEVICE_LOST"); ErrDeviceLost and
// ErrOutOfDeviceMemory match with errors.Is. Close is idempotent everywhere,
// Device.Close destroys whatever its children left, and no finalizer frees
// GPU memory.
package vk
