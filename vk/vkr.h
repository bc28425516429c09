// vkr.h: the C half of package vk. Every Vulkan struct is built here; Go
// passes only handles and scalars (and, for the length of one call, pointers
// to Go memory that holds no Go pointers). C never keeps a Go pointer.
#ifndef VKR_H
#define VKR_H

#define VK_NO_PROTOTYPES 1
// Non-dispatchable handles as uint64_t, so Go holds them as plain integers.
#define VK_USE_64_BIT_PTR_DEFINES 0
#include <vulkan/vulkan.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

// VK_KHR_cooperative_matrix (Vulkan headers 1.3.255 and later). Debian
// bookworm's headers are 1.3.239, so the structures the probe and the device
// need are declared here under their own names, with the registry's values.
#define VKR_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR ((VkStructureType)1000506000)
#define VKR_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR ((VkStructureType)1000506001)
#define VKR_COMPONENT_TYPE_FLOAT16_KHR 0
#define VKR_COMPONENT_TYPE_FLOAT32_KHR 1
#define VKR_SCOPE_SUBGROUP_KHR 3
typedef struct vkr_PhysicalDeviceCooperativeMatrixFeaturesKHR {
	VkStructureType sType;
	void *pNext;
	VkBool32 cooperativeMatrix;
	VkBool32 cooperativeMatrixRobustBufferAccess;
} vkr_PhysicalDeviceCooperativeMatrixFeaturesKHR;
typedef struct vkr_CooperativeMatrixPropertiesKHR {
	VkStructureType sType;
	void *pNext;
	uint32_t MSize, NSize, KSize;
	int32_t AType, BType, CType, ResultType; // VkComponentTypeKHR
	VkBool32 saturatingAccumulation;
	int32_t scope; // VkScopeKHR
} vkr_CooperativeMatrixPropertiesKHR;
typedef VkResult (VKAPI_PTR *PFN_vkr_GetPhysicalDeviceCooperativeMatrixPropertiesKHR)(VkPhysicalDevice, uint32_t *, vkr_CooperativeMatrixPropertiesKHR *);

#define VKR_MAX_COOPMAT_SHAPES 8

// ---- loading ----
int vkr_load(const char *path, char *err, size_t errlen);
uint32_t vkr_loader_version(void);
int vkr_has_instance_layer(const char *name);
int vkr_has_instance_extension(const char *name);

// ---- instance and validation messages ----
typedef struct vkr_msg {
	int severity; // VkDebugUtilsMessageSeverityFlagBitsEXT
	int type;     // VkDebugUtilsMessageTypeFlagsEXT
	char *id;     // pMessageIdName, may be NULL
	char *text;
} vkr_msg;

typedef struct vkr_instance {
	VkInstance instance;
	uint32_t api;
	int owned;
	VkDebugUtilsMessengerEXT messenger;
	pthread_mutex_t mu;
	vkr_msg *msgs;
	int nmsgs, capmsgs;
	int dropped;

	PFN_vkDestroyInstance DestroyInstance;
	PFN_vkEnumeratePhysicalDevices EnumeratePhysicalDevices;
	PFN_vkGetPhysicalDeviceProperties GetPhysicalDeviceProperties;
	PFN_vkGetPhysicalDeviceProperties2 GetPhysicalDeviceProperties2;
	PFN_vkGetPhysicalDeviceFeatures2 GetPhysicalDeviceFeatures2;
	PFN_vkGetPhysicalDeviceMemoryProperties2 GetPhysicalDeviceMemoryProperties2;
	PFN_vkGetPhysicalDeviceQueueFamilyProperties GetPhysicalDeviceQueueFamilyProperties;
	PFN_vkEnumerateDeviceExtensionProperties EnumerateDeviceExtensionProperties;
	PFN_vkCreateDevice CreateDevice;
	PFN_vkGetDeviceProcAddr GetDeviceProcAddr;
	PFN_vkCreateDebugUtilsMessengerEXT CreateDebugUtilsMessengerEXT;
	PFN_vkDestroyDebugUtilsMessengerEXT DestroyDebugUtilsMessengerEXT;
	PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV GetPhysicalDeviceCooperativeMatrixPropertiesNV; // NULL without the extension
	PFN_vkr_GetPhysicalDeviceCooperativeMatrixPropertiesKHR GetPhysicalDeviceCooperativeMatrixPropertiesKHR; // NULL without the extension
} vkr_instance;

VkResult vkr_create_instance(uint32_t api, int validation, int sync_validation, int debug_utils, const char *app, vkr_instance **out, char *err, size_t errlen);
VkResult vkr_wrap_instance(uintptr_t handle, uint32_t api, vkr_instance **out, char *err, size_t errlen);
// vkr_destroy_instance destroys the messenger and the instance (if owned) but
// keeps the struct so messages raised during destruction can still be taken;
// vkr_free_instance frees it.
void vkr_destroy_instance(vkr_instance *in);
void vkr_free_instance(vkr_instance *in);
// vkr_take_messages moves the collected messages to *out (caller frees with
// vkr_free_messages) and returns their count.
int vkr_take_messages(vkr_instance *in, vkr_msg **out, int *dropped);
void vkr_free_messages(vkr_msg *m, int n);

// ---- physical devices ----
#define VKR_MAX_HEAPS 16
#define VKR_MAX_TYPES 32

typedef struct vkr_devinfo {
	char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
	char driver_name[VK_MAX_DRIVER_NAME_SIZE];
	char driver_info[VK_MAX_DRIVER_INFO_SIZE];
	uint32_t vendor_id, device_id, type, api_version, driver_version, driver_id;
	uint8_t device_uuid[VK_UUID_SIZE];
	uint8_t cache_uuid[VK_UUID_SIZE];

	uint32_t nheaps;
	uint64_t heap_size[VKR_MAX_HEAPS];
	uint64_t heap_budget[VKR_MAX_HEAPS];
	uint64_t heap_usage[VKR_MAX_HEAPS];
	uint32_t heap_flags[VKR_MAX_HEAPS];
	int has_budget;
	uint32_t ntypes;
	uint32_t type_flags[VKR_MAX_TYPES];
	uint32_t type_heap[VKR_MAX_TYPES];

	uint32_t subgroup_size, subgroup_stages, subgroup_ops;
	uint32_t min_subgroup_size, max_subgroup_size, required_subgroup_size_stages;
	int subgroup_size_control, compute_full_subgroups;
	int integer_dot, integer_dot_4x8_accelerated;
	// VK_NV_cooperative_matrix and VK_KHR_cooperative_matrix: the feature,
	// and the subgroup shapes M × N × K the device lists with f16 A and B and
	// f32 C and D ({M, N, K} each; at most VKR_MAX_COOPMAT_SHAPES).
	int coopmat_nv, coopmat_khr;
	uint32_t coopmat_nv_count, coopmat_khr_count;
	uint32_t coopmat_nv_shapes[VKR_MAX_COOPMAT_SHAPES][3], coopmat_khr_shapes[VKR_MAX_COOPMAT_SHAPES][3];
	// vulkanMemoryModel, which the cooperative-matrix modules declare.
	int vulkan_memory_model;
	int shader_float16, shader_int8, shader_int16, shader_int64;
	int storage16, uniform_storage16, push16;
	int storage8, uniform_storage8, push8;

	uint64_t max_storage_buffer_range, max_memory_allocation_size;
	uint32_t max_memory_allocation_count, max_compute_shared_memory_size;
	uint32_t max_workgroup_count[3], max_workgroup_size[3], max_workgroup_invocations;
	uint32_t max_push_constants_size, max_bound_descriptor_sets;
	uint64_t min_storage_buffer_offset_alignment, non_coherent_atom_size;
	float timestamp_period;

	int32_t compute_family;   // -1 when none
	uint32_t compute_queue_flags;
	uint32_t timestamp_valid_bits;
} vkr_devinfo;

// vkr_enumerate_devices writes up to *count physical-device handles to out.
VkResult vkr_enumerate_devices(vkr_instance *in, uint32_t *count, uintptr_t *out);
void vkr_device_info(vkr_instance *in, uintptr_t pd, vkr_devinfo *info);
// vkr_heap_budget refreshes the budget and usage of every heap (needs VK_EXT_memory_budget).
void vkr_heap_budget(vkr_instance *in, uintptr_t pd, vkr_devinfo *info);

// ---- logical device ----
typedef struct vkr_device {
	vkr_instance *in;
	VkPhysicalDevice phys;
	VkDevice device;
	VkQueue queue;
	uint32_t family;
	int owned;

	PFN_vkDestroyDevice DestroyDevice;
	PFN_vkGetDeviceQueue GetDeviceQueue;
	PFN_vkDeviceWaitIdle DeviceWaitIdle;
	PFN_vkAllocateMemory AllocateMemory;
	PFN_vkFreeMemory FreeMemory;
	PFN_vkMapMemory MapMemory;
	PFN_vkUnmapMemory UnmapMemory;
	PFN_vkCreateBuffer CreateBuffer;
	PFN_vkDestroyBuffer DestroyBuffer;
	PFN_vkGetBufferMemoryRequirements GetBufferMemoryRequirements;
	PFN_vkBindBufferMemory BindBufferMemory;
	PFN_vkCreateShaderModule CreateShaderModule;
	PFN_vkDestroyShaderModule DestroyShaderModule;
	PFN_vkCreatePipelineCache CreatePipelineCache;
	PFN_vkDestroyPipelineCache DestroyPipelineCache;
	PFN_vkGetPipelineCacheData GetPipelineCacheData;
	PFN_vkCreateDescriptorSetLayout CreateDescriptorSetLayout;
	PFN_vkDestroyDescriptorSetLayout DestroyDescriptorSetLayout;
	PFN_vkCreatePipelineLayout CreatePipelineLayout;
	PFN_vkDestroyPipelineLayout DestroyPipelineLayout;
	PFN_vkCreateComputePipelines CreateComputePipelines;
	PFN_vkDestroyPipeline DestroyPipeline;
	PFN_vkCreateDescriptorPool CreateDescriptorPool;
	PFN_vkDestroyDescriptorPool DestroyDescriptorPool;
	PFN_vkAllocateDescriptorSets AllocateDescriptorSets;
	PFN_vkFreeDescriptorSets FreeDescriptorSets;
	PFN_vkUpdateDescriptorSets UpdateDescriptorSets;
	PFN_vkCreateCommandPool CreateCommandPool;
	PFN_vkDestroyCommandPool DestroyCommandPool;
	PFN_vkAllocateCommandBuffers AllocateCommandBuffers;
	PFN_vkResetCommandBuffer ResetCommandBuffer;
	PFN_vkBeginCommandBuffer BeginCommandBuffer;
	PFN_vkEndCommandBuffer EndCommandBuffer;
	PFN_vkCmdBindPipeline CmdBindPipeline;
	PFN_vkCmdBindDescriptorSets CmdBindDescriptorSets;
	PFN_vkCmdPushConstants CmdPushConstants;
	PFN_vkCmdDispatch CmdDispatch;
	PFN_vkCmdPipelineBarrier CmdPipelineBarrier;
	PFN_vkCmdCopyBuffer CmdCopyBuffer;
	PFN_vkCmdFillBuffer CmdFillBuffer;
	PFN_vkCmdWriteTimestamp CmdWriteTimestamp;
	PFN_vkCmdResetQueryPool CmdResetQueryPool;
	PFN_vkCreateQueryPool CreateQueryPool;
	PFN_vkDestroyQueryPool DestroyQueryPool;
	PFN_vkGetQueryPoolResults GetQueryPoolResults;
	PFN_vkCreateFence CreateFence;
	PFN_vkDestroyFence DestroyFence;
	PFN_vkResetFences ResetFences;
	PFN_vkWaitForFences WaitForFences;
	PFN_vkGetFenceStatus GetFenceStatus;
	PFN_vkQueueSubmit QueueSubmit;
} vkr_device;

typedef struct vkr_features {
	int shader_float16, shader_int8, shader_int16;
	int storage16, uniform_storage16;
	int storage8, uniform_storage8;
	int subgroup_size_control, compute_full_subgroups;
	int integer_dot;
	int coopmat_nv, coopmat_khr, vulkan_memory_model;
} vkr_features;

VkResult vkr_create_device(vkr_instance *in, uintptr_t pd, uint32_t family, const vkr_features *f, vkr_device **out, char *err, size_t errlen);
VkResult vkr_wrap_device(vkr_instance *in, uintptr_t phys, uintptr_t device, uintptr_t queue, uint32_t family, vkr_device **out, char *err, size_t errlen);
void vkr_destroy_device(vkr_device *d);
VkResult vkr_device_wait_idle(vkr_device *d);
uintptr_t vkr_raw_instance(vkr_instance *in);
uintptr_t vkr_raw_physical(vkr_device *d);
uintptr_t vkr_raw_device(vkr_device *d);
uintptr_t vkr_raw_queue(vkr_device *d);

// ---- memory and buffers ----
VkResult vkr_alloc_memory(vkr_device *d, uint64_t size, uint32_t type_index, int map, VkDeviceMemory *mem, void **mapped);
void vkr_free_memory(vkr_device *d, VkDeviceMemory mem);
VkResult vkr_create_buffer(vkr_device *d, uint64_t size, uint32_t usage, VkBuffer *buf, uint64_t *req_size, uint64_t *req_align, uint32_t *req_types);
VkResult vkr_bind_buffer(vkr_device *d, VkBuffer buf, VkDeviceMemory mem, uint64_t offset);
void vkr_destroy_buffer(vkr_device *d, VkBuffer buf);

// ---- pipelines and descriptors ----
VkResult vkr_create_pipeline_cache(vkr_device *d, const void *data, size_t len, VkPipelineCache *out);
void vkr_destroy_pipeline_cache(vkr_device *d, VkPipelineCache c);
// vkr_pipeline_cache_data writes up to *len bytes to data (NULL to query the size).
VkResult vkr_pipeline_cache_data(vkr_device *d, VkPipelineCache c, size_t *len, void *data);

VkResult vkr_create_pipeline(vkr_device *d, VkPipelineCache cache,
	const uint32_t *code, size_t code_bytes,
	uint32_t nbindings, const uint32_t *binding_types,
	uint32_t push_bytes,
	uint32_t nspec, const uint32_t *spec_ids, const uint32_t *spec_values,
	uint32_t required_subgroup_size, int full_subgroups,
	VkDescriptorSetLayout *dsl, VkPipelineLayout *layout, VkPipeline *pipeline);
void vkr_destroy_pipeline(vkr_device *d, VkDescriptorSetLayout dsl, VkPipelineLayout layout, VkPipeline pipeline);

VkResult vkr_create_descriptor_pool(vkr_device *d, uint32_t max_sets, uint32_t storage, uint32_t uniform, VkDescriptorPool *out);
void vkr_destroy_descriptor_pool(vkr_device *d, VkDescriptorPool p);
VkResult vkr_allocate_set(vkr_device *d, VkDescriptorPool p, VkDescriptorSetLayout dsl, VkDescriptorSet *out);
VkResult vkr_free_set(vkr_device *d, VkDescriptorPool p, VkDescriptorSet s);
// vkr_write_set points binding i of set at buffers[i] [offsets[i], offsets[i]+ranges[i]).
void vkr_write_set(vkr_device *d, VkDescriptorSet s, uint32_t n, const uint32_t *types, const uint64_t *buffers, const uint64_t *offsets, const uint64_t *ranges);

// ---- commands and sync ----
enum {
	VKR_OP_DISPATCH = 1,  // pipeline, layout, set, push_bytes, x, y, z, push words...
	VKR_OP_BARRIER = 2,   // src_stage, dst_stage, src_access, dst_access
	VKR_OP_COPY = 3,      // src, dst, src_off, dst_off, size
	VKR_OP_FILL = 4,      // buf, off, size, value
	VKR_OP_TIMESTAMP = 5, // stage, query
	VKR_OP_RESET_QUERIES = 6, // first, count
};

typedef struct vkr_cmd {
	VkCommandPool pool;
	VkCommandBuffer cmd;
	VkFence fence;
	VkQueryPool queries;
} vkr_cmd;

VkResult vkr_create_cmd(vkr_device *d, uint32_t nqueries, vkr_cmd *out);
void vkr_destroy_cmd(vkr_device *d, vkr_cmd *c);
// vkr_record records the op stream into c's command buffer (begin..end). On a
// malformed stream it returns VK_ERROR_UNKNOWN and sets *bad to the word index.
VkResult vkr_record(vkr_device *d, vkr_cmd *c, const uint64_t *ops, size_t n, int one_time, size_t *bad);
VkResult vkr_submit(vkr_device *d, vkr_cmd *c);
VkResult vkr_wait(vkr_device *d, vkr_cmd *c, uint64_t timeout_ns);
VkResult vkr_fence_status(vkr_device *d, vkr_cmd *c);
VkResult vkr_query_results(vkr_device *d, vkr_cmd *c, uint32_t first, uint32_t count, uint64_t *out);

#endif
