package vk_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/vk"
)

func dev(i int, name string, typ vk.DeviceType, mem uint64) vk.DeviceInfo {
	return vk.DeviceInfo{Index: i, Name: name, Type: typ, APIVersion: vk.MakeVersion(1, 3, 0),
		ComputeQueueFamily: 0, Heaps: []vk.MemoryHeap{{Size: mem, DeviceLocal: true}}}
}

func TestChoose(t *testing.T) {
	lvp := dev(0, "llvmpipe (LLVM 15.0.6, 256 bits)", vk.DeviceCPU, 24<<30)
	igpu := dev(1, "Intel(R) UHD Graphics 770", vk.DeviceIntegrated, 8<<30)
	dgpu := dev(2, "NVIDIA H100 80GB HBM3", vk.DeviceDiscrete, 80<<30)
	dgpuSmall := dev(3, "NVIDIA GeForce RTX 3060", vk.DeviceDiscrete, 12<<30)
	old := dev(4, "Ancient GPU", vk.DeviceDiscrete, 4<<30)
	old.APIVersion = vk.MakeVersion(1, 0, 0)
	noq := dev(5, "No compute", vk.DeviceDiscrete, 4<<30)
	noq.ComputeQueueFamily = -1

	tests := []struct {
		name     string
		devs     []vk.DeviceInfo
		selector string
		want     int    // chosen Index, or -1 for an error
		notice   string // substring of the notice; "" means none
		err      string // substring of the error
	}{
		{"discrete beats integrated and cpu", []vk.DeviceInfo{lvp, igpu, dgpu}, "", 2, "", ""},
		{"bigger discrete wins a tie", []vk.DeviceInfo{dgpuSmall, dgpu}, "", 2, "", ""},
		{"integrated beats cpu", []vk.DeviceInfo{lvp, igpu}, "", 1, "", ""},
		{"cpu only: chosen with a notice", []vk.DeviceInfo{lvp}, "", 0, "no GPU found", ""},
		{"unusable devices skipped", []vk.DeviceInfo{old, noq, lvp}, "", 0, "no GPU found", ""},
		{"nothing usable", []vk.DeviceInfo{old, noq}, "", -1, "", "none of the 2 devices"},
		{"no devices", nil, "", -1, "", "found no devices"},
		{"by index", []vk.DeviceInfo{lvp, igpu, dgpu}, "1", 1, "", ""},
		{"cpu by index: notice says requested", []vk.DeviceInfo{lvp, dgpu}, "0", 0, "as requested", ""},
		{"index out of range", []vk.DeviceInfo{lvp}, "3", -1, "", "out of range"},
		{"by name substring, any case", []vk.DeviceInfo{lvp, igpu, dgpu}, "h100", 2, "", ""},
		{"cpu by name", []vk.DeviceInfo{lvp, dgpu}, "llvmpipe", 0, "as requested", ""},
		{"ambiguous name", []vk.DeviceInfo{dgpu, dgpuSmall}, "nvidia", -1, "", "matches 2 devices"},
		{"no such name: never falls back", []vk.DeviceInfo{lvp, dgpu}, "radeon", -1, "", "no device name contains"},
		{"selected but unusable", []vk.DeviceInfo{old}, "0", -1, "", "not usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, notice, err := vk.Choose(tt.devs, tt.selector)
			if tt.want < 0 {
				require.Error(t, err)
				assert.True(t, errors.Is(err, vk.ErrNoDevice), "error %v should match ErrNoDevice", err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.Index)
			if tt.notice == "" {
				assert.Empty(t, notice)
			} else {
				assert.Contains(t, notice, tt.notice)
			}
		})
	}
}

func TestResultErrors(t *testing.T) {
	tests := []struct {
		r    vk.Result
		want string
	}{
		{vk.ErrorDeviceLost, "VK_ERROR_DEVICE_LOST"},
		{vk.ErrorOutOfDeviceMemory, "VK_ERROR_OUT_OF_DEVICE_MEMORY"},
		{vk.ErrorOutOfPoolMemory, "VK_ERROR_OUT_OF_POOL_MEMORY"},
		{vk.Timeout, "VK_TIMEOUT"},
		{vk.Result(-12345), "VkResult(-12345)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.r.Error())
	}
	err := error(&vk.CallError{Call: "vkQueueSubmit", Result: vk.ErrorDeviceLost})
	assert.Equal(t, "vk: vkQueueSubmit: VK_ERROR_DEVICE_LOST", err.Error())
	assert.True(t, errors.Is(err, vk.ErrDeviceLost))
	assert.False(t, errors.Is(err, vk.ErrOutOfDeviceMemory))
	wrapped := &vk.CallError{Call: "vkAllocateMemory", Result: vk.ErrorOutOfDeviceMemory, Detail: "blk.0.attn_q.weight"}
	assert.True(t, errors.Is(wrapped, vk.ErrOutOfDeviceMemory))
	assert.Contains(t, wrapped.Error(), "blk.0.attn_q.weight")
}

func TestVersion(t *testing.T) {
	v := vk.MakeVersion(1, 3, 239)
	assert.Equal(t, "1.3.239", v.String())
	assert.EqualValues(t, 1, v.Major())
	assert.EqualValues(t, 3, v.Minor())
	assert.EqualValues(t, 239, v.Patch())
}
