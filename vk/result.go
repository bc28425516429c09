package vk

import (
	"errors"
	"fmt"
)

// Result is a VkResult. Negative values are errors; a Result is itself an
// error whose text is the spec name, such as VK_ERROR_DEVICE_LOST.
type Result int32

// VkResult values, by their spec names.
const (
	Success                       Result = 0
	NotReady                      Result = 1
	Timeout                       Result = 2
	EventSet                      Result = 3
	EventReset                    Result = 4
	Incomplete                    Result = 5
	ErrorOutOfHostMemory          Result = -1
	ErrorOutOfDeviceMemory        Result = -2
	ErrorInitializationFailed     Result = -3
	ErrorDeviceLost               Result = -4
	ErrorMemoryMapFailed          Result = -5
	ErrorLayerNotPresent          Result = -6
	ErrorExtensionNotPresent      Result = -7
	ErrorFeatureNotPresent        Result = -8
	ErrorIncompatibleDriver       Result = -9
	ErrorTooManyObjects           Result = -10
	ErrorFormatNotSupported       Result = -11
	ErrorFragmentedPool           Result = -12
	ErrorUnknown                  Result = -13
	ErrorOutOfPoolMemory          Result = -1000069000
	ErrorInvalidExternalHandle    Result = -1000072003
	ErrorFragmentation            Result = -1000161000
	ErrorInvalidOpaqueCaptureAddr Result = -1000257000
	PipelineCompileRequired       Result = 1000297000
)

var resultNames = map[Result]string{
	Success:                       "VK_SUCCESS",
	NotReady:                      "VK_NOT_READY",
	Timeout:                       "VK_TIMEOUT",
	EventSet:                      "VK_EVENT_SET",
	EventReset:                    "VK_EVENT_RESET",
	Incomplete:                    "VK_INCOMPLETE",
	ErrorOutOfHostMemory:          "VK_ERROR_OUT_OF_HOST_MEMORY",
	ErrorOutOfDeviceMemory:        "VK_ERROR_OUT_OF_DEVICE_MEMORY",
	ErrorInitializationFailed:     "VK_ERROR_INITIALIZATION_FAILED",
	ErrorDeviceLost:               "VK_ERROR_DEVICE_LOST",
	ErrorMemoryMapFailed:          "VK_ERROR_MEMORY_MAP_FAILED",
	ErrorLayerNotPresent:          "VK_ERROR_LAYER_NOT_PRESENT",
	ErrorExtensionNotPresent:      "VK_ERROR_EXTENSION_NOT_PRESENT",
	ErrorFeatureNotPresent:        "VK_ERROR_FEATURE_NOT_PRESENT",
	ErrorIncompatibleDriver:       "VK_ERROR_INCOMPATIBLE_DRIVER",
	ErrorTooManyObjects:           "VK_ERROR_TOO_MANY_OBJECTS",
	ErrorFormatNotSupported:       "VK_ERROR_FORMAT_NOT_SUPPORTED",
	ErrorFragmentedPool:           "VK_ERROR_FRAGMENTED_POOL",
	ErrorUnknown:                  "VK_ERROR_UNKNOWN",
	ErrorOutOfPoolMemory:          "VK_ERROR_OUT_OF_POOL_MEMORY",
	ErrorInvalidExternalHandle:    "VK_ERROR_INVALID_EXTERNAL_HANDLE",
	ErrorFragmentation:            "VK_ERROR_FRAGMENTATION",
	ErrorInvalidOpaqueCaptureAddr: "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS",
	PipelineCompileRequired:       "VK_PIPELINE_COMPILE_REQUIRED",
}

func (r Result) Error() string {
	if n, ok := resultNames[r]; ok {
		return n
	}
	return fmt.Sprintf("VkResult(%d)", int32(r))
}

// Sentinels for errors.Is. Every error vk returns that stems from these
// conditions wraps them, whether the driver reported it or vk detected it
// first (a budget check, a lost device used again).
var (
	ErrDeviceLost        error = ErrorDeviceLost
	ErrOutOfDeviceMemory error = ErrorOutOfDeviceMemory
	ErrOutOfHostMemory   error = ErrorOutOfHostMemory
	// ErrTimeout is returned when a wait gives up before the GPU finished.
	ErrTimeout error = Timeout
	// ErrNoLoader means libvulkan.so.1 could not be loaded.
	ErrNoLoader = errors.New("vk: Vulkan loader not found")
	// ErrNoDevice means no usable Vulkan device was found or selected.
	ErrNoDevice = errors.New("vk: no Vulkan device")
	// ErrClosed is returned for use of a closed object.
	ErrClosed = errors.New("vk: use of closed object")
	// ErrTooLarge means a request exceeds a device limit (allocation size,
	// binding range, workgroup count) rather than running out of memory.
	ErrTooLarge = errors.New("vk: exceeds device limit")
)

// CallError is a failed Vulkan call: "vk: vkQueueSubmit: VK_ERROR_DEVICE_LOST".
type CallError struct {
	Call   string // the Vulkan entry point, e.g. "vkQueueSubmit"
	Result Result
	Detail string // optional context, e.g. what was being allocated
}

func (e *CallError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("vk: %s: %s (%s)", e.Call, e.Result, e.Detail)
	}
	return fmt.Sprintf("vk: %s: %s", e.Call, e.Result)
}

func (e *CallError) Unwrap() error { return e.Result }

// check turns a VkResult into nil or a *CallError.
func check(call string, r Result) error {
	if r == Success {
		return nil
	}
	return &CallError{Call: call, Result: r}
}
