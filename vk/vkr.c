// vkr.c: the C half of package vk. See vkr.h.
#include "vkr.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *lib;
static PFN_vkGetInstanceProcAddr gipa;
static PFN_vkEnumerateInstanceVersion enum_version;
static PFN_vkEnumerateInstanceLayerProperties enum_layers;
static PFN_vkEnumerateInstanceExtensionProperties enum_inst_exts;
static PFN_vkCreateInstance create_instance;

int vkr_load(const char *path, char *err, size_t errlen) {
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
		return 0;
	}
	gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
	if (!gipa) {
		snprintf(err, errlen, "%s has no vkGetInstanceProcAddr", path);
		dlclose(lib);
		lib = NULL;
		return 0;
	}
	enum_version = (PFN_vkEnumerateInstanceVersion)gipa(NULL, "vkEnumerateInstanceVersion");
	enum_layers = (PFN_vkEnumerateInstanceLayerProperties)gipa(NULL, "vkEnumerateInstanceLayerProperties");
	enum_inst_exts = (PFN_vkEnumerateInstanceExtensionProperties)gipa(NULL, "vkEnumerateInstanceExtensionProperties");
	create_instance = (PFN_vkCreateInstance)gipa(NULL, "vkCreateInstance");
	if (!enum_layers || !enum_inst_exts || !create_instance) {
		snprintf(err, errlen, "%s lacks global Vulkan entry points", path);
		return 0;
	}
	return 1;
}

uint32_t vkr_loader_version(void) {
	uint32_t v = VK_API_VERSION_1_0;
	if (enum_version && enum_version(&v) != VK_SUCCESS) v = VK_API_VERSION_1_0;
	return v;
}

int vkr_has_instance_layer(const char *name) {
	uint32_t n = 0;
	if (enum_layers(&n, NULL) != VK_SUCCESS || n == 0) return 0;
	VkLayerProperties *p = calloc(n, sizeof *p);
	if (!p) return 0;
	int found = 0;
	if (enum_layers(&n, p) >= 0) {
		for (uint32_t i = 0; i < n; i++) if (strcmp(p[i].layerName, name) == 0) found = 1;
	}
	free(p);
	return found;
}

int vkr_has_instance_extension(const char *name) {
	uint32_t n = 0;
	if (enum_inst_exts(NULL, &n, NULL) != VK_SUCCESS || n == 0) return 0;
	VkExtensionProperties *p = calloc(n, sizeof *p);
	if (!p) return 0;
	int found = 0;
	if (enum_inst_exts(NULL, &n, p) >= 0) {
		for (uint32_t i = 0; i < n; i++) if (strcmp(p[i].extensionName, name) == 0) found = 1;
	}
	free(p);
	return found;
}

// ---- validation messages ----

static char *dupstr(const char *s) {
	if (!s) return NULL;
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (d) memcpy(d, s, n + 1);
	return d;
}

#define VKR_MAX_MSGS 4096

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(
	VkDebugUtilsMessageSeverityFlagBitsEXT severity,
	VkDebugUtilsMessageTypeFlagsEXT type,
	const VkDebugUtilsMessengerCallbackDataEXT *data,
	void *user) {
	vkr_instance *in = user;
	pthread_mutex_lock(&in->mu);
	if (in->nmsgs >= VKR_MAX_MSGS) {
		in->dropped++;
	} else {
		if (in->nmsgs == in->capmsgs) {
			int nc = in->capmsgs ? in->capmsgs * 2 : 16;
			vkr_msg *m = realloc(in->msgs, (size_t)nc * sizeof *m);
			if (!m) {
				in->dropped++;
				pthread_mutex_unlock(&in->mu);
				return VK_FALSE;
			}
			in->msgs = m;
			in->capmsgs = nc;
		}
		vkr_msg *m = &in->msgs[in->nmsgs++];
		m->severity = (int)severity;
		m->type = (int)type;
		m->id = dupstr(data ? data->pMessageIdName : NULL);
		m->text = dupstr(data && data->pMessage ? data->pMessage : "");
	}
	pthread_mutex_unlock(&in->mu);
	return VK_FALSE;
}

int vkr_take_messages(vkr_instance *in, vkr_msg **out, int *dropped) {
	pthread_mutex_lock(&in->mu);
	int n = in->nmsgs;
	*out = in->msgs;
	*dropped = in->dropped;
	in->msgs = NULL;
	in->nmsgs = in->capmsgs = in->dropped = 0;
	pthread_mutex_unlock(&in->mu);
	return n;
}

void vkr_free_messages(vkr_msg *m, int n) {
	for (int i = 0; i < n; i++) {
		free(m[i].id);
		free(m[i].text);
	}
	free(m);
}

// ---- instance ----

#define IPROC(in, name) in->name = (PFN_vk##name)gipa(in->instance, "vk" #name)

static int load_instance_procs(vkr_instance *in, char *err, size_t errlen) {
	IPROC(in, DestroyInstance);
	IPROC(in, EnumeratePhysicalDevices);
	IPROC(in, GetPhysicalDeviceProperties);
	IPROC(in, GetPhysicalDeviceProperties2);
	IPROC(in, GetPhysicalDeviceFeatures2);
	IPROC(in, GetPhysicalDeviceMemoryProperties2);
	IPROC(in, GetPhysicalDeviceQueueFamilyProperties);
	IPROC(in, EnumerateDeviceExtensionProperties);
	IPROC(in, CreateDevice);
	IPROC(in, GetDeviceProcAddr);
	IPROC(in, CreateDebugUtilsMessengerEXT);
	IPROC(in, DestroyDebugUtilsMessengerEXT);
	IPROC(in, GetPhysicalDeviceCooperativeMatrixPropertiesNV);
	in->GetPhysicalDeviceCooperativeMatrixPropertiesKHR = (PFN_vkr_GetPhysicalDeviceCooperativeMatrixPropertiesKHR)
		gipa(in->instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
#define REQ(f) if (!in->f) { snprintf(err, errlen, "missing instance function vk" #f); return 0; }
	REQ(DestroyInstance) REQ(EnumeratePhysicalDevices) REQ(GetPhysicalDeviceProperties)
	REQ(GetPhysicalDeviceProperties2) REQ(GetPhysicalDeviceFeatures2) REQ(GetPhysicalDeviceMemoryProperties2)
	REQ(GetPhysicalDeviceQueueFamilyProperties) REQ(EnumerateDeviceExtensionProperties)
	REQ(CreateDevice) REQ(GetDeviceProcAddr)
#undef REQ
	return 1;
}

static VkDebugUtilsMessengerCreateInfoEXT messenger_info(vkr_instance *in) {
	VkDebugUtilsMessengerCreateInfoEXT ci = {0};
	ci.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
	ci.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
	ci.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
		VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
	ci.pfnUserCallback = on_message;
	ci.pUserData = in;
	return ci;
}

VkResult vkr_create_instance(uint32_t api, int validation, int sync_validation, int debug_utils, const char *app, vkr_instance **out, char *err, size_t errlen) {
	*out = NULL;
	vkr_instance *in = calloc(1, sizeof *in);
	if (!in) return VK_ERROR_OUT_OF_HOST_MEMORY;
	pthread_mutex_init(&in->mu, NULL);
	in->api = api;
	in->owned = 1;

	VkApplicationInfo ai = {0};
	ai.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
	ai.pApplicationName = app;
	ai.pEngineName = "vkrun";
	ai.apiVersion = api;

	const char *layers[1] = {"VK_LAYER_KHRONOS_validation"};
	const char *exts[2];
	uint32_t next = 0;
	if (debug_utils) exts[next++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
	if (validation && sync_validation) exts[next++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;

	VkDebugUtilsMessengerCreateInfoEXT mci = messenger_info(in);
	VkInstanceCreateInfo ci = {0};
	ci.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
	ci.pApplicationInfo = &ai;
	ci.enabledLayerCount = validation ? 1 : 0;
	ci.ppEnabledLayerNames = layers;
	ci.enabledExtensionCount = next;
	ci.ppEnabledExtensionNames = exts;
	if (debug_utils) ci.pNext = &mci; // messages from vkCreateInstance/vkDestroyInstance too
	// Synchronization validation reports hazards such as a missing barrier
	// between a dispatch that writes a buffer and one that reads it.
	VkValidationFeatureEnableEXT enables[1] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
	VkValidationFeaturesEXT vf = {0};
	vf.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT;
	vf.enabledValidationFeatureCount = 1;
	vf.pEnabledValidationFeatures = enables;
	if (validation && sync_validation) {
		vf.pNext = ci.pNext;
		ci.pNext = &vf;
	}

	VkResult r = create_instance(&ci, NULL, &in->instance);
	if (r != VK_SUCCESS) {
		pthread_mutex_destroy(&in->mu);
		free(in);
		return r;
	}
	if (!load_instance_procs(in, err, errlen)) {
		PFN_vkDestroyInstance di = (PFN_vkDestroyInstance)gipa(in->instance, "vkDestroyInstance");
		if (di) di(in->instance, NULL);
		pthread_mutex_destroy(&in->mu);
		free(in);
		return VK_ERROR_INITIALIZATION_FAILED;
	}
	if (debug_utils && in->CreateDebugUtilsMessengerEXT) {
		r = in->CreateDebugUtilsMessengerEXT(in->instance, &mci, NULL, &in->messenger);
		if (r != VK_SUCCESS) {
			snprintf(err, errlen, "vkCreateDebugUtilsMessengerEXT failed");
			in->DestroyInstance(in->instance, NULL);
			pthread_mutex_destroy(&in->mu);
			free(in);
			return r;
		}
	}
	*out = in;
	return VK_SUCCESS;
}

VkResult vkr_wrap_instance(uintptr_t handle, uint32_t api, vkr_instance **out, char *err, size_t errlen) {
	*out = NULL;
	vkr_instance *in = calloc(1, sizeof *in);
	if (!in) return VK_ERROR_OUT_OF_HOST_MEMORY;
	pthread_mutex_init(&in->mu, NULL);
	in->instance = (VkInstance)handle;
	in->api = api;
	in->owned = 0;
	if (!load_instance_procs(in, err, errlen)) {
		pthread_mutex_destroy(&in->mu);
		free(in);
		return VK_ERROR_INITIALIZATION_FAILED;
	}
	*out = in;
	return VK_SUCCESS;
}

void vkr_destroy_instance(vkr_instance *in) {
	if (!in) return;
	if (in->owned) {
		if (in->messenger) in->DestroyDebugUtilsMessengerEXT(in->instance, in->messenger, NULL);
		in->messenger = VK_NULL_HANDLE;
		in->DestroyInstance(in->instance, NULL);
	}
	in->instance = VK_NULL_HANDLE;
}

void vkr_free_instance(vkr_instance *in) {
	if (!in) return;
	vkr_free_messages(in->msgs, in->nmsgs);
	pthread_mutex_destroy(&in->mu);
	free(in);
}

uintptr_t vkr_raw_instance(vkr_instance *in) { return (uintptr_t)in->instance; }

// ---- physical devices ----

VkResult vkr_enumerate_devices(vkr_instance *in, uint32_t *count, uintptr_t *out) {
	if (!out) return in->EnumeratePhysicalDevices(in->instance, count, NULL);
	VkPhysicalDevice *pds = calloc(*count ? *count : 1, sizeof *pds);
	if (!pds) return VK_ERROR_OUT_OF_HOST_MEMORY;
	VkResult r = in->EnumeratePhysicalDevices(in->instance, count, pds);
	if (r >= 0) for (uint32_t i = 0; i < *count; i++) out[i] = (uintptr_t)pds[i];
	free(pds);
	return r;
}

static int has_device_ext(vkr_instance *in, VkPhysicalDevice pd, const char *name) {
	uint32_t n = 0;
	if (in->EnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0) return 0;
	VkExtensionProperties *p = calloc(n, sizeof *p);
	if (!p) return 0;
	int found = 0;
	if (in->EnumerateDeviceExtensionProperties(pd, NULL, &n, p) >= 0) {
		for (uint32_t i = 0; i < n; i++) if (strcmp(p[i].extensionName, name) == 0) found = 1;
	}
	free(p);
	return found;
}

static uint32_t effective_api(vkr_instance *in, VkPhysicalDevice pd) {
	VkPhysicalDeviceProperties p;
	in->GetPhysicalDeviceProperties(pd, &p);
	uint32_t a = p.apiVersion, b = in->api;
	a = VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(a), VK_API_VERSION_MINOR(a), 0);
	b = VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(b), VK_API_VERSION_MINOR(b), 0);
	return a < b ? a : b;
}

void vkr_heap_budget(vkr_instance *in, uintptr_t pdh, vkr_devinfo *info) {
	VkPhysicalDevice pd = (VkPhysicalDevice)pdh;
	VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {0};
	budget.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT;
	VkPhysicalDeviceMemoryProperties2 mp = {0};
	mp.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2;
	if (info->has_budget) mp.pNext = &budget;
	in->GetPhysicalDeviceMemoryProperties2(pd, &mp);
	info->nheaps = mp.memoryProperties.memoryHeapCount;
	if (info->nheaps > VKR_MAX_HEAPS) info->nheaps = VKR_MAX_HEAPS;
	for (uint32_t i = 0; i < info->nheaps; i++) {
		info->heap_size[i] = mp.memoryProperties.memoryHeaps[i].size;
		info->heap_flags[i] = mp.memoryProperties.memoryHeaps[i].flags;
		info->heap_budget[i] = info->has_budget ? budget.heapBudget[i] : mp.memoryProperties.memoryHeaps[i].size;
		info->heap_usage[i] = info->has_budget ? budget.heapUsage[i] : 0;
	}
	info->ntypes = mp.memoryProperties.memoryTypeCount;
	if (info->ntypes > VKR_MAX_TYPES) info->ntypes = VKR_MAX_TYPES;
	for (uint32_t i = 0; i < info->ntypes; i++) {
		info->type_flags[i] = mp.memoryProperties.memoryTypes[i].propertyFlags;
		info->type_heap[i] = mp.memoryProperties.memoryTypes[i].heapIndex;
	}
}

// add_shape records M × N × K in shapes (at most VKR_MAX_COOPMAT_SHAPES,
// once each).
static void add_shape(uint32_t shapes[][3], uint32_t *count, uint32_t m, uint32_t n, uint32_t k) {
	for (uint32_t i = 0; i < *count; i++) {
		if (shapes[i][0] == m && shapes[i][1] == n && shapes[i][2] == k) return;
	}
	if (*count == VKR_MAX_COOPMAT_SHAPES) return;
	shapes[*count][0] = m;
	shapes[*count][1] = n;
	shapes[*count][2] = k;
	(*count)++;
}

// coopmat_shapes_nv records the subgroup-scope shapes of f16 A and B into
// f32 C and D that VK_NV_cooperative_matrix lists.
static void coopmat_shapes_nv(vkr_instance *in, VkPhysicalDevice pd, vkr_devinfo *info) {
	uint32_t n = 0;
	if (in->GetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, NULL) != VK_SUCCESS || n == 0) return;
	VkCooperativeMatrixPropertiesNV *cp = calloc(n, sizeof *cp);
	if (!cp) return;
	for (uint32_t i = 0; i < n; i++) cp[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
	VkResult r = in->GetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, cp);
	if (r == VK_SUCCESS || r == VK_INCOMPLETE) {
		for (uint32_t i = 0; i < n; i++) {
			const VkCooperativeMatrixPropertiesNV *c = &cp[i];
			if (c->scope != VK_SCOPE_SUBGROUP_NV || c->AType != VK_COMPONENT_TYPE_FLOAT16_NV || c->BType != VK_COMPONENT_TYPE_FLOAT16_NV ||
			    c->CType != VK_COMPONENT_TYPE_FLOAT32_NV || c->DType != VK_COMPONENT_TYPE_FLOAT32_NV) continue;
			add_shape(info->coopmat_nv_shapes, &info->coopmat_nv_count, c->MSize, c->NSize, c->KSize);
		}
	}
	free(cp);
	info->coopmat_nv = info->coopmat_nv_count != 0;
}

// coopmat_shapes_khr does the same for VK_KHR_cooperative_matrix (without
// saturating accumulation, which only integer products have).
static void coopmat_shapes_khr(vkr_instance *in, VkPhysicalDevice pd, vkr_devinfo *info) {
	uint32_t n = 0;
	if (in->GetPhysicalDeviceCooperativeMatrixPropertiesKHR(pd, &n, NULL) != VK_SUCCESS || n == 0) return;
	vkr_CooperativeMatrixPropertiesKHR *cp = calloc(n, sizeof *cp);
	if (!cp) return;
	for (uint32_t i = 0; i < n; i++) cp[i].sType = VKR_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
	VkResult r = in->GetPhysicalDeviceCooperativeMatrixPropertiesKHR(pd, &n, cp);
	if (r == VK_SUCCESS || r == VK_INCOMPLETE) {
		for (uint32_t i = 0; i < n; i++) {
			const vkr_CooperativeMatrixPropertiesKHR *c = &cp[i];
			if (c->scope != VKR_SCOPE_SUBGROUP_KHR || c->AType != VKR_COMPONENT_TYPE_FLOAT16_KHR || c->BType != VKR_COMPONENT_TYPE_FLOAT16_KHR ||
			    c->CType != VKR_COMPONENT_TYPE_FLOAT32_KHR || c->ResultType != VKR_COMPONENT_TYPE_FLOAT32_KHR || c->saturatingAccumulation) continue;
			add_shape(info->coopmat_khr_shapes, &info->coopmat_khr_count, c->MSize, c->NSize, c->KSize);
		}
	}
	free(cp);
	info->coopmat_khr = info->coopmat_khr_count != 0;
}

void vkr_device_info(vkr_instance *in, uintptr_t pdh, vkr_devinfo *info) {
	VkPhysicalDevice pd = (VkPhysicalDevice)pdh;
	memset(info, 0, sizeof *info);
	uint32_t api = effective_api(in, pd);
	int v12 = api >= VK_API_VERSION_1_2, v13 = api >= VK_API_VERSION_1_3;
	int has_driver_props = v12 || has_device_ext(in, pd, "VK_KHR_driver_properties");
	int has_sgsc = v13 || has_device_ext(in, pd, "VK_EXT_subgroup_size_control");
	int has_f16i8 = v12 || has_device_ext(in, pd, "VK_KHR_shader_float16_int8");
	int has_8bit = v12 || has_device_ext(in, pd, "VK_KHR_8bit_storage");
	int has_idot = v13 || has_device_ext(in, pd, "VK_KHR_shader_integer_dot_product");
	int has_cm = has_device_ext(in, pd, "VK_NV_cooperative_matrix") && in->GetPhysicalDeviceCooperativeMatrixPropertiesNV;
	int has_cmk = has_device_ext(in, pd, "VK_KHR_cooperative_matrix") && in->GetPhysicalDeviceCooperativeMatrixPropertiesKHR;
	int has_vmm = v12 || has_device_ext(in, pd, "VK_KHR_vulkan_memory_model");
	info->has_budget = has_device_ext(in, pd, "VK_EXT_memory_budget");

	// Properties.
	VkPhysicalDeviceSubgroupProperties sg = {0};
	sg.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
	VkPhysicalDeviceMaintenance3Properties m3 = {0};
	m3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES;
	m3.pNext = &sg;
	VkPhysicalDeviceIDProperties idp = {0};
	idp.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES;
	idp.pNext = &m3;
	VkPhysicalDeviceDriverProperties drv = {0};
	drv.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
	VkPhysicalDeviceSubgroupSizeControlProperties sgsc = {0};
	sgsc.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES;
	VkPhysicalDeviceShaderIntegerDotProductProperties idotp = {0};
	idotp.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES;
	void *chain = &idp;
	if (has_driver_props) { drv.pNext = chain; chain = &drv; }
	if (has_sgsc) { sgsc.pNext = chain; chain = &sgsc; }
	if (has_idot) { idotp.pNext = chain; chain = &idotp; }
	VkPhysicalDeviceProperties2 p2 = {0};
	p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
	p2.pNext = chain;
	in->GetPhysicalDeviceProperties2(pd, &p2);
	VkPhysicalDeviceProperties *p = &p2.properties;

	snprintf(info->name, sizeof info->name, "%s", p->deviceName);
	if (has_driver_props) {
		snprintf(info->driver_name, sizeof info->driver_name, "%s", drv.driverName);
		snprintf(info->driver_info, sizeof info->driver_info, "%s", drv.driverInfo);
		info->driver_id = drv.driverID;
	}
	info->vendor_id = p->vendorID;
	info->device_id = p->deviceID;
	info->type = p->deviceType;
	info->api_version = p->apiVersion;
	info->driver_version = p->driverVersion;
	memcpy(info->device_uuid, idp.deviceUUID, VK_UUID_SIZE);
	memcpy(info->cache_uuid, p->pipelineCacheUUID, VK_UUID_SIZE);
	info->subgroup_size = sg.subgroupSize;
	info->subgroup_stages = sg.supportedStages;
	info->subgroup_ops = sg.supportedOperations;
	info->integer_dot_4x8_accelerated = has_idot && idotp.integerDotProduct4x8BitPackedSignedAccelerated;
	if (has_sgsc) {
		info->min_subgroup_size = sgsc.minSubgroupSize;
		info->max_subgroup_size = sgsc.maxSubgroupSize;
		info->required_subgroup_size_stages = sgsc.requiredSubgroupSizeStages;
	} else {
		info->min_subgroup_size = info->max_subgroup_size = sg.subgroupSize;
	}
	info->max_storage_buffer_range = p->limits.maxStorageBufferRange;
	info->max_memory_allocation_size = m3.maxMemoryAllocationSize;
	info->max_memory_allocation_count = p->limits.maxMemoryAllocationCount;
	info->max_compute_shared_memory_size = p->limits.maxComputeSharedMemorySize;
	for (int i = 0; i < 3; i++) {
		info->max_workgroup_count[i] = p->limits.maxComputeWorkGroupCount[i];
		info->max_workgroup_size[i] = p->limits.maxComputeWorkGroupSize[i];
	}
	info->max_workgroup_invocations = p->limits.maxComputeWorkGroupInvocations;
	info->max_push_constants_size = p->limits.maxPushConstantsSize;
	info->max_bound_descriptor_sets = p->limits.maxBoundDescriptorSets;
	info->min_storage_buffer_offset_alignment = p->limits.minStorageBufferOffsetAlignment;
	info->non_coherent_atom_size = p->limits.nonCoherentAtomSize;
	info->timestamp_period = p->limits.timestampPeriod;

	// Features.
	VkPhysicalDeviceVulkan11Features f11 = {0};
	f11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
	VkPhysicalDeviceVulkan12Features f12 = {0};
	f12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
	VkPhysicalDeviceVulkan13Features f13 = {0};
	f13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES;
	VkPhysicalDevice16BitStorageFeatures s16 = {0};
	s16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
	VkPhysicalDevice8BitStorageFeatures s8 = {0};
	s8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES;
	VkPhysicalDeviceShaderFloat16Int8Features fi = {0};
	fi.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
	VkPhysicalDeviceSubgroupSizeControlFeatures sc = {0};
	sc.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES;
	VkPhysicalDeviceShaderIntegerDotProductFeatures idf = {0};
	idf.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES;
	VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {0};
	cmf.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV;
	vkr_PhysicalDeviceCooperativeMatrixFeaturesKHR cmk = {0};
	cmk.sType = VKR_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR;
	VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {0};
	vmm.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES;
	VkPhysicalDeviceFeatures2 f2 = {0};
	f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
	chain = NULL;
	if (has_cm) { cmf.pNext = chain; chain = &cmf; }
	if (has_cmk) { cmk.pNext = chain; chain = &cmk; }
	if (has_vmm && !v12) { vmm.pNext = chain; chain = &vmm; }
	if (v12) {
		f11.pNext = chain; chain = &f11;
		f12.pNext = chain; chain = &f12;
	} else {
		s16.pNext = chain; chain = &s16;
		if (has_8bit) { s8.pNext = chain; chain = &s8; }
		if (has_f16i8) { fi.pNext = chain; chain = &fi; }
	}
	if (v13) { f13.pNext = chain; chain = &f13; }
	else {
		if (has_sgsc) { sc.pNext = chain; chain = &sc; }
		if (has_idot) { idf.pNext = chain; chain = &idf; }
	}
	f2.pNext = chain;
	in->GetPhysicalDeviceFeatures2(pd, &f2);
	info->shader_int16 = f2.features.shaderInt16;
	info->shader_int64 = f2.features.shaderInt64;
	if (v12) {
		info->storage16 = f11.storageBuffer16BitAccess;
		info->uniform_storage16 = f11.uniformAndStorageBuffer16BitAccess;
		info->push16 = f11.storagePushConstant16;
		info->storage8 = f12.storageBuffer8BitAccess;
		info->uniform_storage8 = f12.uniformAndStorageBuffer8BitAccess;
		info->push8 = f12.storagePushConstant8;
		info->shader_float16 = f12.shaderFloat16;
		info->shader_int8 = f12.shaderInt8;
		info->vulkan_memory_model = f12.vulkanMemoryModel;
	} else {
		info->storage16 = s16.storageBuffer16BitAccess;
		info->uniform_storage16 = s16.uniformAndStorageBuffer16BitAccess;
		info->push16 = s16.storagePushConstant16;
		info->storage8 = s8.storageBuffer8BitAccess;
		info->uniform_storage8 = s8.uniformAndStorageBuffer8BitAccess;
		info->push8 = s8.storagePushConstant8;
		info->shader_float16 = fi.shaderFloat16;
		info->shader_int8 = fi.shaderInt8;
		info->vulkan_memory_model = has_vmm && vmm.vulkanMemoryModel;
	}
	if (v13) {
		info->subgroup_size_control = f13.subgroupSizeControl;
		info->compute_full_subgroups = f13.computeFullSubgroups;
		info->integer_dot = f13.shaderIntegerDotProduct;
	} else {
		if (has_sgsc) {
			info->subgroup_size_control = sc.subgroupSizeControl;
			info->compute_full_subgroups = sc.computeFullSubgroups;
		}
		if (has_idot) info->integer_dot = idf.shaderIntegerDotProduct;
	}
	if (!info->integer_dot) info->integer_dot_4x8_accelerated = 0;
	if (has_cm && cmf.cooperativeMatrix) coopmat_shapes_nv(in, pd, info);
	if (has_cmk && cmk.cooperativeMatrix) coopmat_shapes_khr(in, pd, info);

	vkr_heap_budget(in, pdh, info);

	// The compute queue family: prefer one with timestamps, then a compute-only
	// family (no graphics), as async compute queues are often less contended.
	uint32_t nq = 0;
	in->GetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
	VkQueueFamilyProperties *q = calloc(nq ? nq : 1, sizeof *q);
	info->compute_family = -1;
	if (q) {
		in->GetPhysicalDeviceQueueFamilyProperties(pd, &nq, q);
		int best = -1, bestScore = -1;
		for (uint32_t i = 0; i < nq; i++) {
			if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || q[i].queueCount == 0) continue;
			int score = (q[i].timestampValidBits ? 2 : 0) + ((q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) ? 0 : 1);
			if (score > bestScore) { best = (int)i; bestScore = score; }
		}
		if (best >= 0) {
			info->compute_family = best;
			info->compute_queue_flags = q[best].queueFlags;
			info->timestamp_valid_bits = q[best].timestampValidBits;
		}
		free(q);
	}
}

// ---- logical device ----

#define DPROC(d, name) d->name = (PFN_vk##name)d->in->GetDeviceProcAddr(d->device, "vk" #name)

static int load_device_procs(vkr_device *d, char *err, size_t errlen) {
	DPROC(d, DestroyDevice); DPROC(d, GetDeviceQueue); DPROC(d, DeviceWaitIdle);
	DPROC(d, AllocateMemory); DPROC(d, FreeMemory); DPROC(d, MapMemory); DPROC(d, UnmapMemory);
	DPROC(d, CreateBuffer); DPROC(d, DestroyBuffer); DPROC(d, GetBufferMemoryRequirements); DPROC(d, BindBufferMemory);
	DPROC(d, CreateShaderModule); DPROC(d, DestroyShaderModule);
	DPROC(d, CreatePipelineCache); DPROC(d, DestroyPipelineCache); DPROC(d, GetPipelineCacheData);
	DPROC(d, CreateDescriptorSetLayout); DPROC(d, DestroyDescriptorSetLayout);
	DPROC(d, CreatePipelineLayout); DPROC(d, DestroyPipelineLayout);
	DPROC(d, CreateComputePipelines); DPROC(d, DestroyPipeline);
	DPROC(d, CreateDescriptorPool); DPROC(d, DestroyDescriptorPool);
	DPROC(d, AllocateDescriptorSets); DPROC(d, FreeDescriptorSets); DPROC(d, UpdateDescriptorSets);
	DPROC(d, CreateCommandPool); DPROC(d, DestroyCommandPool); DPROC(d, AllocateCommandBuffers);
	DPROC(d, ResetCommandBuffer); DPROC(d, BeginCommandBuffer); DPROC(d, EndCommandBuffer);
	DPROC(d, CmdBindPipeline); DPROC(d, CmdBindDescriptorSets); DPROC(d, CmdPushConstants);
	DPROC(d, CmdDispatch); DPROC(d, CmdPipelineBarrier); DPROC(d, CmdCopyBuffer); DPROC(d, CmdFillBuffer);
	DPROC(d, CmdWriteTimestamp); DPROC(d, CmdResetQueryPool);
	DPROC(d, CreateQueryPool); DPROC(d, DestroyQueryPool); DPROC(d, GetQueryPoolResults);
	DPROC(d, CreateFence); DPROC(d, DestroyFence); DPROC(d, ResetFences); DPROC(d, WaitForFences);
	DPROC(d, GetFenceStatus); DPROC(d, QueueSubmit);
	void **fp = (void **)&d->DestroyDevice;
	void **end = (void **)(&d->QueueSubmit + 1);
	for (; fp < end; fp++) {
		if (!*fp) {
			snprintf(err, errlen, "the driver lacks a Vulkan 1.1 device function (entry %d)", (int)(fp - (void **)&d->DestroyDevice));
			return 0;
		}
	}
	return 1;
}

VkResult vkr_create_device(vkr_instance *in, uintptr_t pdh, uint32_t family, const vkr_features *f, vkr_device **out, char *err, size_t errlen) {
	*out = NULL;
	VkPhysicalDevice pd = (VkPhysicalDevice)pdh;
	vkr_device *d = calloc(1, sizeof *d);
	if (!d) return VK_ERROR_OUT_OF_HOST_MEMORY;
	d->in = in;
	d->phys = pd;
	d->family = family;
	d->owned = 1;

	uint32_t api = effective_api(in, pd);
	int v12 = api >= VK_API_VERSION_1_2, v13 = api >= VK_API_VERSION_1_3;
	const char *exts[16];
	uint32_t next = 0;

	VkPhysicalDeviceVulkan11Features f11 = {0};
	f11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
	VkPhysicalDeviceVulkan12Features f12 = {0};
	f12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
	VkPhysicalDeviceVulkan13Features f13 = {0};
	f13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES;
	VkPhysicalDevice16BitStorageFeatures s16 = {0};
	s16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
	VkPhysicalDevice8BitStorageFeatures s8 = {0};
	s8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES;
	VkPhysicalDeviceShaderFloat16Int8Features fi = {0};
	fi.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
	VkPhysicalDeviceSubgroupSizeControlFeatures sc = {0};
	sc.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES;
	VkPhysicalDeviceShaderIntegerDotProductFeatures idf = {0};
	idf.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES;
	VkPhysicalDeviceFeatures2 f2 = {0};
	f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
	f2.features.shaderInt16 = f->shader_int16;
	int in13 = 0; // f13 is in the chain
	void *chain = NULL;
	if (v12) {
		f11.storageBuffer16BitAccess = f->storage16;
		f11.uniformAndStorageBuffer16BitAccess = f->uniform_storage16;
		f12.storageBuffer8BitAccess = f->storage8;
		f12.uniformAndStorageBuffer8BitAccess = f->uniform_storage8;
		f12.shaderFloat16 = f->shader_float16;
		f12.shaderInt8 = f->shader_int8;
		f11.pNext = chain; chain = &f11;
		f12.pNext = chain; chain = &f12;
	} else {
		s16.storageBuffer16BitAccess = f->storage16;
		s16.uniformAndStorageBuffer16BitAccess = f->uniform_storage16;
		s16.pNext = chain; chain = &s16;
		if (f->storage8 || f->uniform_storage8) {
			s8.storageBuffer8BitAccess = f->storage8;
			s8.uniformAndStorageBuffer8BitAccess = f->uniform_storage8;
			s8.pNext = chain; chain = &s8;
			exts[next++] = "VK_KHR_8bit_storage";
		}
		if (f->shader_float16 || f->shader_int8) {
			fi.shaderFloat16 = f->shader_float16;
			fi.shaderInt8 = f->shader_int8;
			fi.pNext = chain; chain = &fi;
			exts[next++] = "VK_KHR_shader_float16_int8";
		}
	}
	if (f->subgroup_size_control || f->compute_full_subgroups) {
		if (v13) {
			f13.subgroupSizeControl = f->subgroup_size_control;
			f13.computeFullSubgroups = f->compute_full_subgroups;
			f13.pNext = chain; chain = &f13;
			in13 = 1;
		} else {
			sc.subgroupSizeControl = f->subgroup_size_control;
			sc.computeFullSubgroups = f->compute_full_subgroups;
			sc.pNext = chain; chain = &sc;
			exts[next++] = "VK_EXT_subgroup_size_control";
		}
	}
	VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {0};
	cmf.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV;
	if (f->coopmat_nv) {
		cmf.cooperativeMatrix = VK_TRUE;
		cmf.pNext = chain; chain = &cmf;
		exts[next++] = "VK_NV_cooperative_matrix";
	}
	vkr_PhysicalDeviceCooperativeMatrixFeaturesKHR cmk = {0};
	cmk.sType = VKR_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR;
	if (f->coopmat_khr) {
		cmk.cooperativeMatrix = VK_TRUE;
		cmk.pNext = chain; chain = &cmk;
		exts[next++] = "VK_KHR_cooperative_matrix";
	}
	VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {0};
	vmm.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES;
	if (f->vulkan_memory_model) {
		if (v12) {
			f12.vulkanMemoryModel = VK_TRUE; // f12 is in the chain
		} else {
			vmm.vulkanMemoryModel = VK_TRUE;
			vmm.pNext = chain; chain = &vmm;
			exts[next++] = "VK_KHR_vulkan_memory_model";
		}
	}
	if (f->integer_dot) {
		if (v13) {
			f13.shaderIntegerDotProduct = VK_TRUE;
			if (!in13) { f13.pNext = chain; chain = &f13; }
		} else {
			idf.shaderIntegerDotProduct = VK_TRUE;
			idf.pNext = chain; chain = &idf;
			exts[next++] = "VK_KHR_shader_integer_dot_product";
		}
	}
	f2.pNext = chain;

	float prio = 1.0f;
	VkDeviceQueueCreateInfo qci = {0};
	qci.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
	qci.queueFamilyIndex = family;
	qci.queueCount = 1;
	qci.pQueuePriorities = &prio;

	VkDeviceCreateInfo ci = {0};
	ci.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
	ci.pNext = &f2;
	ci.queueCreateInfoCount = 1;
	ci.pQueueCreateInfos = &qci;
	ci.enabledExtensionCount = next;
	ci.ppEnabledExtensionNames = exts;

	VkResult r = in->CreateDevice(pd, &ci, NULL, &d->device);
	if (r != VK_SUCCESS) {
		free(d);
		return r;
	}
	if (!load_device_procs(d, err, errlen)) {
		PFN_vkDestroyDevice dd = (PFN_vkDestroyDevice)in->GetDeviceProcAddr(d->device, "vkDestroyDevice");
		if (dd) dd(d->device, NULL);
		free(d);
		return VK_ERROR_INITIALIZATION_FAILED;
	}
	d->GetDeviceQueue(d->device, family, 0, &d->queue);
	*out = d;
	return VK_SUCCESS;
}

VkResult vkr_wrap_device(vkr_instance *in, uintptr_t phys, uintptr_t device, uintptr_t queue, uint32_t family, vkr_device **out, char *err, size_t errlen) {
	*out = NULL;
	vkr_device *d = calloc(1, sizeof *d);
	if (!d) return VK_ERROR_OUT_OF_HOST_MEMORY;
	d->in = in;
	d->phys = (VkPhysicalDevice)phys;
	d->device = (VkDevice)device;
	d->queue = (VkQueue)queue;
	d->family = family;
	d->owned = 0;
	if (!load_device_procs(d, err, errlen)) {
		free(d);
		return VK_ERROR_INITIALIZATION_FAILED;
	}
	*out = d;
	return VK_SUCCESS;
}

void vkr_destroy_device(vkr_device *d) {
	if (!d) return;
	if (d->owned) d->DestroyDevice(d->device, NULL);
	free(d);
}

VkResult vkr_device_wait_idle(vkr_device *d) { return d->DeviceWaitIdle(d->device); }
uintptr_t vkr_raw_physical(vkr_device *d) { return (uintptr_t)d->phys; }
uintptr_t vkr_raw_device(vkr_device *d) { return (uintptr_t)d->device; }
uintptr_t vkr_raw_queue(vkr_device *d) { return (uintptr_t)d->queue; }

// ---- memory and buffers ----

VkResult vkr_alloc_memory(vkr_device *d, uint64_t size, uint32_t type_index, int map, VkDeviceMemory *mem, void **mapped) {
	VkMemoryAllocateInfo ai = {0};
	ai.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
	ai.allocationSize = size;
	ai.memoryTypeIndex = type_index;
	*mapped = NULL;
	VkResult r = d->AllocateMemory(d->device, &ai, NULL, mem);
	if (r != VK_SUCCESS) return r;
	if (map) {
		r = d->MapMemory(d->device, *mem, 0, VK_WHOLE_SIZE, 0, mapped);
		if (r != VK_SUCCESS) {
			d->FreeMemory(d->device, *mem, NULL);
			*mem = VK_NULL_HANDLE;
			return r;
		}
	}
	return VK_SUCCESS;
}

void vkr_free_memory(vkr_device *d, VkDeviceMemory mem) { d->FreeMemory(d->device, mem, NULL); }

VkResult vkr_create_buffer(vkr_device *d, uint64_t size, uint32_t usage, VkBuffer *buf, uint64_t *req_size, uint64_t *req_align, uint32_t *req_types) {
	VkBufferCreateInfo ci = {0};
	ci.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
	ci.size = size;
	ci.usage = usage;
	ci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
	VkResult r = d->CreateBuffer(d->device, &ci, NULL, buf);
	if (r != VK_SUCCESS) return r;
	VkMemoryRequirements mr;
	d->GetBufferMemoryRequirements(d->device, *buf, &mr);
	*req_size = mr.size;
	*req_align = mr.alignment;
	*req_types = mr.memoryTypeBits;
	return VK_SUCCESS;
}

VkResult vkr_bind_buffer(vkr_device *d, VkBuffer buf, VkDeviceMemory mem, uint64_t offset) {
	return d->BindBufferMemory(d->device, buf, mem, offset);
}

void vkr_destroy_buffer(vkr_device *d, VkBuffer buf) { d->DestroyBuffer(d->device, buf, NULL); }

// ---- pipelines and descriptors ----

VkResult vkr_create_pipeline_cache(vkr_device *d, const void *data, size_t len, VkPipelineCache *out) {
	VkPipelineCacheCreateInfo ci = {0};
	ci.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO;
	ci.initialDataSize = len;
	ci.pInitialData = len ? data : NULL;
	return d->CreatePipelineCache(d->device, &ci, NULL, out);
}

void vkr_destroy_pipeline_cache(vkr_device *d, VkPipelineCache c) { d->DestroyPipelineCache(d->device, c, NULL); }

VkResult vkr_pipeline_cache_data(vkr_device *d, VkPipelineCache c, size_t *len, void *data) {
	return d->GetPipelineCacheData(d->device, c, len, data);
}

VkResult vkr_create_pipeline(vkr_device *d, VkPipelineCache cache,
	const uint32_t *code, size_t code_bytes,
	uint32_t nbindings, const uint32_t *binding_types,
	uint32_t push_bytes,
	uint32_t nspec, const uint32_t *spec_ids, const uint32_t *spec_values,
	uint32_t required_subgroup_size, int full_subgroups,
	VkDescriptorSetLayout *dsl, VkPipelineLayout *layout, VkPipeline *pipeline) {
	*dsl = VK_NULL_HANDLE;
	*layout = VK_NULL_HANDLE;
	*pipeline = VK_NULL_HANDLE;

	VkDescriptorSetLayoutBinding b[32];
	if (nbindings > 32) return VK_ERROR_INITIALIZATION_FAILED;
	for (uint32_t i = 0; i < nbindings; i++) {
		memset(&b[i], 0, sizeof b[i]);
		b[i].binding = i;
		b[i].descriptorType = (VkDescriptorType)binding_types[i];
		b[i].descriptorCount = 1;
		b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
	}
	VkDescriptorSetLayoutCreateInfo lci = {0};
	lci.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
	lci.bindingCount = nbindings;
	lci.pBindings = b;
	VkResult r = d->CreateDescriptorSetLayout(d->device, &lci, NULL, dsl);
	if (r != VK_SUCCESS) return r;

	VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes};
	VkPipelineLayoutCreateInfo pci = {0};
	pci.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
	pci.setLayoutCount = 1;
	pci.pSetLayouts = dsl;
	pci.pushConstantRangeCount = push_bytes ? 1 : 0;
	pci.pPushConstantRanges = &pr;
	r = d->CreatePipelineLayout(d->device, &pci, NULL, layout);
	if (r != VK_SUCCESS) goto fail;

	VkShaderModuleCreateInfo sci = {0};
	sci.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
	sci.codeSize = code_bytes;
	sci.pCode = code;
	VkShaderModule mod;
	r = d->CreateShaderModule(d->device, &sci, NULL, &mod);
	if (r != VK_SUCCESS) goto fail;

	VkSpecializationMapEntry entries[16];
	if (nspec > 16) nspec = 16;
	for (uint32_t i = 0; i < nspec; i++) {
		entries[i].constantID = spec_ids[i];
		entries[i].offset = i * 4;
		entries[i].size = 4;
	}
	VkSpecializationInfo spec = {nspec, entries, (size_t)nspec * 4, spec_values};

	VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rss = {0};
	rss.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO;
	rss.requiredSubgroupSize = required_subgroup_size;

	VkComputePipelineCreateInfo cci = {0};
	cci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
	cci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
	cci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
	cci.stage.module = mod;
	cci.stage.pName = "main";
	cci.stage.pSpecializationInfo = nspec ? &spec : NULL;
	if (required_subgroup_size) cci.stage.pNext = &rss;
	if (full_subgroups) cci.stage.flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
	cci.layout = *layout;
	r = d->CreateComputePipelines(d->device, cache, 1, &cci, NULL, pipeline);
	d->DestroyShaderModule(d->device, mod, NULL);
	if (r != VK_SUCCESS) goto fail;
	return VK_SUCCESS;
fail:
	if (*pipeline) d->DestroyPipeline(d->device, *pipeline, NULL);
	if (*layout) d->DestroyPipelineLayout(d->device, *layout, NULL);
	if (*dsl) d->DestroyDescriptorSetLayout(d->device, *dsl, NULL);
	*dsl = VK_NULL_HANDLE;
	*layout = VK_NULL_HANDLE;
	*pipeline = VK_NULL_HANDLE;
	return r;
}

void vkr_destroy_pipeline(vkr_device *d, VkDescriptorSetLayout dsl, VkPipelineLayout layout, VkPipeline pipeline) {
	if (pipeline) d->DestroyPipeline(d->device, pipeline, NULL);
	if (layout) d->DestroyPipelineLayout(d->device, layout, NULL);
	if (dsl) d->DestroyDescriptorSetLayout(d->device, dsl, NULL);
}

VkResult vkr_create_descriptor_pool(vkr_device *d, uint32_t max_sets, uint32_t storage, uint32_t uniform, VkDescriptorPool *out) {
	VkDescriptorPoolSize sizes[2];
	uint32_t n = 0;
	if (storage) { sizes[n].type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER; sizes[n].descriptorCount = storage; n++; }
	if (uniform) { sizes[n].type = VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER; sizes[n].descriptorCount = uniform; n++; }
	VkDescriptorPoolCreateInfo ci = {0};
	ci.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
	ci.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;
	ci.maxSets = max_sets;
	ci.poolSizeCount = n;
	ci.pPoolSizes = sizes;
	return d->CreateDescriptorPool(d->device, &ci, NULL, out);
}

void vkr_destroy_descriptor_pool(vkr_device *d, VkDescriptorPool p) { d->DestroyDescriptorPool(d->device, p, NULL); }

VkResult vkr_allocate_set(vkr_device *d, VkDescriptorPool p, VkDescriptorSetLayout dsl, VkDescriptorSet *out) {
	VkDescriptorSetAllocateInfo ai = {0};
	ai.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
	ai.descriptorPool = p;
	ai.descriptorSetCount = 1;
	ai.pSetLayouts = &dsl;
	return d->AllocateDescriptorSets(d->device, &ai, out);
}

VkResult vkr_free_set(vkr_device *d, VkDescriptorPool p, VkDescriptorSet s) {
	return d->FreeDescriptorSets(d->device, p, 1, &s);
}

void vkr_write_set(vkr_device *d, VkDescriptorSet s, uint32_t n, const uint32_t *types, const uint64_t *buffers, const uint64_t *offsets, const uint64_t *ranges) {
	VkDescriptorBufferInfo bi[32];
	VkWriteDescriptorSet w[32];
	if (n > 32) n = 32;
	for (uint32_t i = 0; i < n; i++) {
		bi[i].buffer = (VkBuffer)buffers[i];
		bi[i].offset = offsets[i];
		bi[i].range = ranges[i];
		memset(&w[i], 0, sizeof w[i]);
		w[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
		w[i].dstSet = s;
		w[i].dstBinding = i;
		w[i].descriptorCount = 1;
		w[i].descriptorType = (VkDescriptorType)types[i];
		w[i].pBufferInfo = &bi[i];
	}
	d->UpdateDescriptorSets(d->device, n, w, 0, NULL);
}

// ---- commands and sync ----

VkResult vkr_create_cmd(vkr_device *d, uint32_t nqueries, vkr_cmd *out) {
	memset(out, 0, sizeof *out);
	VkCommandPoolCreateInfo pci = {0};
	pci.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
	pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
	pci.queueFamilyIndex = d->family;
	VkResult r = d->CreateCommandPool(d->device, &pci, NULL, &out->pool);
	if (r != VK_SUCCESS) return r;
	VkCommandBufferAllocateInfo ai = {0};
	ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
	ai.commandPool = out->pool;
	ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
	ai.commandBufferCount = 1;
	r = d->AllocateCommandBuffers(d->device, &ai, &out->cmd);
	if (r != VK_SUCCESS) goto fail;
	VkFenceCreateInfo fci = {0};
	fci.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
	r = d->CreateFence(d->device, &fci, NULL, &out->fence);
	if (r != VK_SUCCESS) goto fail;
	if (nqueries) {
		VkQueryPoolCreateInfo qci = {0};
		qci.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO;
		qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
		qci.queryCount = nqueries;
		r = d->CreateQueryPool(d->device, &qci, NULL, &out->queries);
		if (r != VK_SUCCESS) goto fail;
	}
	return VK_SUCCESS;
fail:
	vkr_destroy_cmd(d, out);
	return r;
}

void vkr_destroy_cmd(vkr_device *d, vkr_cmd *c) {
	if (c->queries) d->DestroyQueryPool(d->device, c->queries, NULL);
	if (c->fence) d->DestroyFence(d->device, c->fence, NULL);
	if (c->pool) d->DestroyCommandPool(d->device, c->pool, NULL); // frees c->cmd
	memset(c, 0, sizeof *c);
}

VkResult vkr_record(vkr_device *d, vkr_cmd *c, const uint64_t *ops, size_t n, int one_time, size_t *bad) {
	*bad = 0;
	VkResult r = d->ResetCommandBuffer(c->cmd, 0);
	if (r != VK_SUCCESS) return r;
	VkCommandBufferBeginInfo bi = {0};
	bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
	bi.flags = one_time ? VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT : 0;
	r = d->BeginCommandBuffer(c->cmd, &bi);
	if (r != VK_SUCCESS) return r;

	VkPipeline bound = VK_NULL_HANDLE;
	VkDescriptorSet bound_set = VK_NULL_HANDLE;
	size_t i = 0;
	while (i < n) {
		size_t at = i;
		switch (ops[i]) {
		case VKR_OP_DISPATCH: {
			if (i + 8 > n) { *bad = at; goto malformed; }
			VkPipeline p = (VkPipeline)ops[i + 1];
			VkPipelineLayout l = (VkPipelineLayout)ops[i + 2];
			VkDescriptorSet s = (VkDescriptorSet)ops[i + 3];
			uint32_t push = (uint32_t)ops[i + 4];
			uint32_t x = (uint32_t)ops[i + 5], y = (uint32_t)ops[i + 6], z = (uint32_t)ops[i + 7];
			size_t words = (push + 7) / 8;
			if (i + 8 + words > n) { *bad = at; goto malformed; }
			if (p != bound) {
				d->CmdBindPipeline(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p);
				bound = p;
				bound_set = VK_NULL_HANDLE;
			}
			if (s != bound_set) {
				d->CmdBindDescriptorSets(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, l, 0, 1, &s, 0, NULL);
				bound_set = s;
			}
			if (push) d->CmdPushConstants(c->cmd, l, VK_SHADER_STAGE_COMPUTE_BIT, 0, push, &ops[i + 8]);
			d->CmdDispatch(c->cmd, x, y, z);
			i += 8 + words;
			break;
		}
		case VKR_OP_BARRIER: {
			if (i + 5 > n) { *bad = at; goto malformed; }
			VkMemoryBarrier mb = {0};
			mb.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
			mb.srcAccessMask = (VkAccessFlags)ops[i + 3];
			mb.dstAccessMask = (VkAccessFlags)ops[i + 4];
			d->CmdPipelineBarrier(c->cmd, (VkPipelineStageFlags)ops[i + 1], (VkPipelineStageFlags)ops[i + 2], 0, 1, &mb, 0, NULL, 0, NULL);
			i += 5;
			break;
		}
		case VKR_OP_COPY: {
			if (i + 6 > n) { *bad = at; goto malformed; }
			VkBufferCopy bc = {ops[i + 3], ops[i + 4], ops[i + 5]};
			d->CmdCopyBuffer(c->cmd, (VkBuffer)ops[i + 1], (VkBuffer)ops[i + 2], 1, &bc);
			i += 6;
			break;
		}
		case VKR_OP_FILL: {
			if (i + 5 > n) { *bad = at; goto malformed; }
			d->CmdFillBuffer(c->cmd, (VkBuffer)ops[i + 1], ops[i + 2], ops[i + 3], (uint32_t)ops[i + 4]);
			i += 5;
			break;
		}
		case VKR_OP_TIMESTAMP: {
			if (i + 3 > n || !c->queries) { *bad = at; goto malformed; }
			d->CmdWriteTimestamp(c->cmd, (VkPipelineStageFlagBits)ops[i + 1], c->queries, (uint32_t)ops[i + 2]);
			i += 3;
			break;
		}
		case VKR_OP_RESET_QUERIES: {
			if (i + 3 > n || !c->queries) { *bad = at; goto malformed; }
			d->CmdResetQueryPool(c->cmd, c->queries, (uint32_t)ops[i + 1], (uint32_t)ops[i + 2]);
			i += 3;
			break;
		}
		default:
			*bad = at;
			goto malformed;
		}
	}
	return d->EndCommandBuffer(c->cmd);
malformed:
	d->EndCommandBuffer(c->cmd);
	return VK_ERROR_UNKNOWN;
}

VkResult vkr_submit(vkr_device *d, vkr_cmd *c) {
	VkResult r = d->ResetFences(d->device, 1, &c->fence);
	if (r != VK_SUCCESS) return r;
	VkSubmitInfo si = {0};
	si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
	si.commandBufferCount = 1;
	si.pCommandBuffers = &c->cmd;
	return d->QueueSubmit(d->queue, 1, &si, c->fence);
}

VkResult vkr_wait(vkr_device *d, vkr_cmd *c, uint64_t timeout_ns) {
	return d->WaitForFences(d->device, 1, &c->fence, VK_TRUE, timeout_ns);
}

VkResult vkr_fence_status(vkr_device *d, vkr_cmd *c) { return d->GetFenceStatus(d->device, c->fence); }

VkResult vkr_query_results(vkr_device *d, vkr_cmd *c, uint32_t first, uint32_t count, uint64_t *out) {
	return d->GetQueryPoolResults(d->device, c->queries, first, count, (size_t)count * 8, out, 8,
		VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
}
