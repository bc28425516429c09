package vk

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// Version is a packed Vulkan API version.
type Version uint32

// MakeVersion packs major.minor.patch.
func MakeVersion(major, minor, patch uint32) Version {
	return Version(major<<22 | minor<<12 | patch)
}

func (v Version) Major() uint32 { return uint32(v) >> 22 & 0x7f }
func (v Version) Minor() uint32 { return uint32(v) >> 12 & 0x3ff }
func (v Version) Patch() uint32 { return uint32(v) & 0xfff }
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch())
}

// LibraryEnv names the environment variable that overrides the loader path.
const LibraryEnv = "VKRUN_VULKAN_LIBRARY"

var (
	loadOnce sync.Once
	loadErr  error
)

// Load opens the Vulkan loader (libvulkan.so.1, or $VKRUN_VULKAN_LIBRARY) once
// per process. Nothing links against libvulkan, so a program without it still
// starts, and Load reports what to install.
func Load() error {
	loadOnce.Do(func() {
		path := os.Getenv(LibraryEnv)
		if path == "" {
			path = "libvulkan.so.1"
		}
		if ok, msg := cLoad(path); !ok {
			loadErr = fmt.Errorf("%w: %s: %s (install the loader and a driver, e.g. on Debian: apt-get install libvulkan1 mesa-vulkan-drivers)", ErrNoLoader, path, msg)
			return
		}
		if v := Version(cLoaderVersion()); v < MakeVersion(1, 1, 0) {
			loadErr = fmt.Errorf("%w: the loader offers Vulkan %s; vkrun needs 1.1 or later", ErrNoLoader, v)
		}
	})
	return loadErr
}

// ValidationLayer is the Khronos validation layer's name.
const ValidationLayer = "VK_LAYER_KHRONOS_validation"

// HasValidationLayer reports whether the validation layer is installed.
func HasValidationLayer() bool {
	return Load() == nil && cHasLayer(ValidationLayer)
}

// InstanceOptions configure NewInstance.
type InstanceOptions struct {
	// AppName is reported to the driver.
	AppName string
	// Validation turns on VK_LAYER_KHRONOS_validation and a debug-utils
	// messenger that collects every warning and error (see Messages). It is
	// an error to ask for it when the layer is not installed. When false,
	// VKRUN_VALIDATE=1 in the environment still turns it on.
	Validation bool
	// SyncValidation adds the layer's synchronization validation, which
	// reports missing barriers (slower; VKRUN_VALIDATE=sync turns it on).
	SyncValidation bool
}

// Instance is a VkInstance. It is safe for concurrent use.
type Instance struct {
	c          unsafe.Pointer // *C.vkr_instance
	api        Version
	validation bool
	owned      bool

	mu      sync.Mutex
	msgs    []Message
	dropped int
	closed  bool
	devices map[*Device]struct{} // closed by Close, before the instance
}

// NewInstance creates a Vulkan instance at the highest API version the loader
// offers (at least 1.1).
func NewInstance(opts InstanceOptions) (*Instance, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	env := os.Getenv("VKRUN_VALIDATE")
	validation := opts.Validation || env == "1" || env == "sync"
	syncValidation := validation && (opts.SyncValidation || env == "sync")
	if validation && !cHasLayer(ValidationLayer) {
		return nil, fmt.Errorf("vk: validation requested but %s is not installed (Debian: apt-get install vulkan-validationlayers)", ValidationLayer)
	}
	debugUtils := validation && cHasInstanceExtension("VK_EXT_debug_utils")
	if validation && !debugUtils {
		return nil, fmt.Errorf("vk: validation requested but VK_EXT_debug_utils is missing")
	}
	app := opts.AppName
	if app == "" {
		app = "vkrun"
	}
	api := Version(cLoaderVersion())
	c, r, msg := cCreateInstance(uint32(api), validation, syncValidation, debugUtils, app)
	if r != Success {
		if r == ErrorIncompatibleDriver {
			return nil, fmt.Errorf("%w: vkCreateInstance: %s: no Vulkan driver is installed (Debian: apt-get install mesa-vulkan-drivers)", ErrNoDevice, r)
		}
		return nil, &CallError{Call: "vkCreateInstance", Result: r, Detail: msg}
	}
	return &Instance{c: c, api: api, validation: validation, owned: true}, nil
}

// WrapInstance adopts a VkInstance that the caller created (for example with
// vulkan-go). vkrun does not destroy it: Close only frees vkrun's own state.
// api is the apiVersion the instance was created with.
func WrapInstance(handle uintptr, api Version) (*Instance, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	if handle == 0 {
		return nil, fmt.Errorf("vk: WrapInstance: null VkInstance")
	}
	if api < MakeVersion(1, 1, 0) {
		return nil, fmt.Errorf("vk: WrapInstance: instance API version %s; vkrun needs 1.1 or later", api)
	}
	c, r, msg := cWrapInstance(handle, uint32(api))
	if r != Success {
		return nil, &CallError{Call: "vkGetInstanceProcAddr", Result: r, Detail: msg}
	}
	return &Instance{c: c, api: api}, nil
}

// APIVersion is the version the instance was created with.
func (in *Instance) APIVersion() Version { return in.api }

// Validation reports whether the validation layer is active.
func (in *Instance) Validation() bool { return in.validation }

// Handle returns the raw VkInstance.
func (in *Instance) Handle() uintptr {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return 0
	}
	return cRawInstance(in.c)
}

// Severity is a debug-utils message severity.
type Severity int

const (
	SeverityVerbose Severity = 0x1
	SeverityInfo    Severity = 0x10
	SeverityWarning Severity = 0x100
	SeverityError   Severity = 0x1000
)

func (s Severity) String() string {
	switch s {
	case SeverityVerbose:
		return "verbose"
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	}
	return fmt.Sprintf("severity(%#x)", int(s))
}

// MessageType is a debug-utils message type bitmask.
type MessageType int

// Message is one validation-layer message.
type Message struct {
	Severity Severity
	Type     MessageType
	ID       string // e.g. "VUID-vkDestroyDevice-device-05137"
	Text     string
}

func (m Message) String() string { return fmt.Sprintf("[%s] %s: %s", m.Severity, m.ID, m.Text) }

// Messages returns every validation warning and error collected so far
// (including those raised while the instance was destroyed, if it is closed).
func (in *Instance) Messages() []Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.drainLocked()
	out := make([]Message, len(in.msgs))
	copy(out, in.msgs)
	return out
}

// DroppedMessages counts messages beyond the collection cap.
func (in *Instance) DroppedMessages() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.drainLocked()
	return in.dropped
}

func (in *Instance) drainLocked() {
	if in.closed || in.c == nil {
		return
	}
	m, d := cTakeMessages(in.c)
	in.msgs = append(in.msgs, m...)
	in.dropped += d
}

// Close closes the devices made from the instance that are still open, then
// destroys the instance (unless it was wrapped). Close is idempotent.
func (in *Instance) Close() error {
	in.mu.Lock()
	devs := make([]*Device, 0, len(in.devices))
	for d := range in.devices {
		devs = append(devs, d)
	}
	in.mu.Unlock()
	var first error
	for _, d := range devs {
		if err := d.Close(); err != nil && first == nil {
			first = err
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return first
	}
	in.drainLocked()
	// Destroying an owned instance can raise messages (leaked objects), so
	// take them after destruction: vkr_destroy_instance keeps them until we do.
	c := in.c
	in.closed = true
	in.c = nil
	if c != nil {
		destroyInstanceKeepingMessages(c, in)
	}
	return first
}

func destroyInstanceKeepingMessages(c unsafe.Pointer, in *Instance) {
	cDestroyInstanceTake(c, func(m []Message, dropped int) {
		in.msgs = append(in.msgs, m...)
		in.dropped += dropped
	})
}

// DeviceType is VkPhysicalDeviceType.
type DeviceType int

const (
	DeviceOther      DeviceType = 0
	DeviceIntegrated DeviceType = 1
	DeviceDiscrete   DeviceType = 2
	DeviceVirtual    DeviceType = 3
	DeviceCPU        DeviceType = 4
)

func (t DeviceType) String() string {
	switch t {
	case DeviceIntegrated:
		return "integrated"
	case DeviceDiscrete:
		return "discrete"
	case DeviceVirtual:
		return "virtual"
	case DeviceCPU:
		return "cpu"
	}
	return "other"
}

// rank orders device types for the default choice: lower is better.
func (t DeviceType) rank() int {
	switch t {
	case DeviceDiscrete:
		return 0
	case DeviceIntegrated:
		return 1
	case DeviceVirtual:
		return 2
	case DeviceCPU:
		return 4
	}
	return 3
}

// MemoryProperty is VkMemoryPropertyFlags.
type MemoryProperty uint32

const (
	MemoryDeviceLocal  MemoryProperty = 0x1
	MemoryHostVisible  MemoryProperty = 0x2
	MemoryHostCoherent MemoryProperty = 0x4
	MemoryHostCached   MemoryProperty = 0x8
)

// MemoryHeap is one VkMemoryHeap, with its budget when VK_EXT_memory_budget
// is present (otherwise Budget = Size and Usage = 0).
type MemoryHeap struct {
	Size, Budget, Usage uint64
	DeviceLocal         bool
}

// MemoryType is one VkMemoryType.
type MemoryType struct {
	Flags MemoryProperty
	Heap  int
}

// SubgroupFeatures is VkSubgroupFeatureFlags.
type SubgroupFeatures uint32

const (
	SubgroupBasic      SubgroupFeatures = 0x1
	SubgroupVote       SubgroupFeatures = 0x2
	SubgroupArithmetic SubgroupFeatures = 0x4
	SubgroupBallot     SubgroupFeatures = 0x8
	SubgroupShuffle    SubgroupFeatures = 0x10
)

// CooperativeMatrixShape is a subgroup-scope cooperative-matrix product
// D (M × N) = A (M × K) · B (K × N) + C that a device lists.
type CooperativeMatrixShape struct{ M, N, K uint32 }

func (s CooperativeMatrixShape) String() string { return fmt.Sprintf("%d×%d×%d", s.M, s.N, s.K) }

// DeviceInfo describes a physical device: what vkrun needs to choose it and to
// pick kernel variants.
type DeviceInfo struct {
	Index              int // position in the instance's enumeration
	Name               string
	VendorID, DeviceID uint32
	Type               DeviceType
	DriverName         string
	DriverInfo         string
	APIVersion         Version
	DriverVersion      uint32
	DeviceUUID         [16]byte
	PipelineCacheUUID  [16]byte
	Heaps              []MemoryHeap
	MemoryTypes        []MemoryType
	HasMemoryBudget    bool
	SubgroupSize       uint32
	MinSubgroupSize    uint32
	MaxSubgroupSize    uint32
	// RequiredSubgroupSizeInCompute: compute shaders can be given a
	// required subgroup size (requiredSubgroupSizeStages).
	RequiredSubgroupSizeInCompute bool
	SubgroupOps                   SubgroupFeatures
	SubgroupInCompute             bool
	SubgroupSizeControl           bool
	ComputeFullSubgroups          bool
	// IntegerDotProduct is shaderIntegerDotProduct (Vulkan 1.3 or
	// VK_KHR_shader_integer_dot_product): SPIR-V's OpSDot and kin.
	IntegerDotProduct bool
	// IntegerDot4x8Accelerated is integerDotProduct4x8BitPackedSignedAccelerated:
	// a signed dot product of two words of four int8 is faster than the
	// equivalent integer arithmetic on this device.
	IntegerDot4x8Accelerated bool
	// CooperativeMatrixNV and CooperativeMatrixKHR: VK_NV_cooperative_matrix's
	// and VK_KHR_cooperative_matrix's cooperativeMatrix feature, with at
	// least one subgroup-scope shape of f16 A and B into f32 C and D; the
	// shapes are CooperativeMatrixNVShapes and CooperativeMatrixKHRShapes,
	// in the driver's order.
	CooperativeMatrixNV        bool
	CooperativeMatrixNVShapes  []CooperativeMatrixShape
	CooperativeMatrixKHR       bool
	CooperativeMatrixKHRShapes []CooperativeMatrixShape
	// VulkanMemoryModel is vulkanMemoryModel (Vulkan 1.2 or
	// VK_KHR_vulkan_memory_model), which modules on the Vulkan memory model
	// (the cooperative-matrix ones) need.
	VulkanMemoryModel     bool
	Float16, Int8         bool // shaderFloat16, shaderInt8
	Int16, Int64          bool // shaderInt16, shaderInt64
	Storage16             bool // storageBuffer16BitAccess
	UniformStorage16      bool
	Storage8              bool // storageBuffer8BitAccess
	UniformStorage8       bool
	MaxStorageBufferRange uint64
	// MaxMemoryAllocationSize is maxMemoryAllocationSize (Vulkan 1.1).
	MaxMemoryAllocationSize         uint64
	MaxMemoryAllocationCount        uint32
	MaxComputeSharedMemorySize      uint32
	MaxWorkgroupCount               [3]uint32
	MaxWorkgroupSize                [3]uint32
	MaxWorkgroupInvocations         uint32
	MaxPushConstantsSize            uint32
	MinStorageBufferOffsetAlignment uint64
	TimestampPeriod                 float64 // ns per tick
	ComputeQueueFamily              int     // -1: no compute queue
	TimestampValidBits              uint32

	handle uintptr // VkPhysicalDevice
}

// Vendor names the PCI vendor.
func (d DeviceInfo) Vendor() string {
	switch d.VendorID {
	case 0x1002:
		return "AMD"
	case 0x10de:
		return "NVIDIA"
	case 0x8086:
		return "Intel"
	case 0x13b5:
		return "ARM"
	case 0x5143:
		return "Qualcomm"
	case 0x106b:
		return "Apple"
	case 0x10005:
		return "Mesa"
	}
	return fmt.Sprintf("%#04x", d.VendorID)
}

// DeviceLocalBytes is the size of the largest device-local heap.
func (d DeviceInfo) DeviceLocalBytes() uint64 {
	var m uint64
	for _, h := range d.Heaps {
		if h.DeviceLocal && h.Size > m {
			m = h.Size
		}
	}
	return m
}

// Usable reports why vkrun cannot use the device, or "" if it can.
func (d DeviceInfo) Usable() string {
	switch {
	case d.APIVersion < MakeVersion(1, 1, 0):
		return fmt.Sprintf("Vulkan %s (needs 1.1)", d.APIVersion)
	case d.ComputeQueueFamily < 0:
		return "no compute queue"
	}
	return ""
}

// Devices lists the physical devices, in the loader's order.
func (in *Instance) Devices() ([]DeviceInfo, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil, ErrClosed
	}
	pds, r := cEnumerateDevices(in.c)
	if r != Success {
		return nil, check("vkEnumeratePhysicalDevices", r)
	}
	out := make([]DeviceInfo, len(pds))
	for i, pd := range pds {
		out[i] = cDeviceInfo(in.c, pd)
		out[i].Index = i
	}
	return out, nil
}

// DeviceEnv names the environment variable that selects a device.
const DeviceEnv = "VKRUN_DEVICE"

// Choose picks a device. An empty selector ranks discrete GPUs first, then
// integrated, virtual, other, and CPU devices last; a CPU device (such as
// lavapipe) is chosen only when nothing else is usable, and the notice says
// so. A selector is a device index ("1") or a case-insensitive substring of
// the name ("llvmpipe"); it never falls back to another device. notice is
// non-empty when the user should be told something about the choice.
func Choose(devs []DeviceInfo, selector string) (chosen DeviceInfo, notice string, err error) {
	selector = strings.TrimSpace(selector)
	if selector != "" {
		var idx int
		if _, perr := fmt.Sscanf(selector, "%d", &idx); perr == nil && fmt.Sprint(idx) == selector {
			if idx < 0 || idx >= len(devs) {
				return DeviceInfo{}, "", fmt.Errorf("%w: device index %d out of range (%d devices; see 'vkrun devices')", ErrNoDevice, idx, len(devs))
			}
			d := devs[idx]
			if why := d.Usable(); why != "" {
				return DeviceInfo{}, "", fmt.Errorf("%w: device %d (%s) is not usable: %s", ErrNoDevice, idx, d.Name, why)
			}
			return d, cpuNotice(d, true), nil
		}
		var matches []DeviceInfo
		for _, d := range devs {
			if strings.Contains(strings.ToLower(d.Name), strings.ToLower(selector)) {
				matches = append(matches, d)
			}
		}
		switch {
		case len(matches) == 0:
			return DeviceInfo{}, "", fmt.Errorf("%w: no device name contains %q (see 'vkrun devices')", ErrNoDevice, selector)
		case len(matches) > 1:
			names := make([]string, len(matches))
			for i, m := range matches {
				names[i] = fmt.Sprintf("%d:%s", m.Index, m.Name)
			}
			return DeviceInfo{}, "", fmt.Errorf("%w: %q matches %d devices (%s); use an index", ErrNoDevice, selector, len(matches), strings.Join(names, ", "))
		}
		d := matches[0]
		if why := d.Usable(); why != "" {
			return DeviceInfo{}, "", fmt.Errorf("%w: device %d (%s) is not usable: %s", ErrNoDevice, d.Index, d.Name, why)
		}
		return d, cpuNotice(d, true), nil
	}
	best := -1
	for i, d := range devs {
		if d.Usable() != "" {
			continue
		}
		if best < 0 || d.Type.rank() < devs[best].Type.rank() ||
			(d.Type.rank() == devs[best].Type.rank() && d.DeviceLocalBytes() > devs[best].DeviceLocalBytes()) {
			best = i
		}
	}
	if best < 0 {
		if len(devs) == 0 {
			return DeviceInfo{}, "", fmt.Errorf("%w: the Vulkan loader found no devices (install a driver, e.g. mesa-vulkan-drivers)", ErrNoDevice)
		}
		return DeviceInfo{}, "", fmt.Errorf("%w: none of the %d devices is usable (see 'vkrun devices')", ErrNoDevice, len(devs))
	}
	return devs[best], cpuNotice(devs[best], false), nil
}

func cpuNotice(d DeviceInfo, asked bool) string {
	if d.Type != DeviceCPU {
		return ""
	}
	if asked {
		return fmt.Sprintf("vkrun: using CPU device %q as requested; it is much slower than a GPU", d.Name)
	}
	return fmt.Sprintf("vkrun: no GPU found; using CPU device %q (much slower; set %s to choose)", d.Name, DeviceEnv)
}
