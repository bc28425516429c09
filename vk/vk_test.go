package vk_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/vk"
)

func TestDevicesDescribeLavapipeOrGPU(t *testing.T) {
	in := vktest.Instance(t)
	devs, err := in.Devices()
	require.NoError(t, err)
	require.NotEmpty(t, devs)
	for _, d := range devs {
		t.Logf("%d: %s (%s, %s, Vulkan %s, driver %s) subgroup %d f16=%v i8=%v s16=%v s8=%v range=%d alloc=%d shared=%d",
			d.Index, d.Name, d.Vendor(), d.Type, d.APIVersion, d.DriverName, d.SubgroupSize, d.Float16, d.Int8,
			d.Storage16, d.Storage8, d.MaxStorageBufferRange, d.MaxMemoryAllocationSize, d.MaxComputeSharedMemorySize)
		assert.NotEmpty(t, d.Name)
		assert.GreaterOrEqual(t, uint32(d.APIVersion), uint32(vk.MakeVersion(1, 1, 0)))
		assert.NotEmpty(t, d.Heaps)
		assert.NotZero(t, d.MaxStorageBufferRange)
		assert.NotZero(t, d.MaxMemoryAllocationSize)
		assert.NotZero(t, d.SubgroupSize)
		assert.GreaterOrEqual(t, d.ComputeQueueFamily, 0)
	}
}

func TestBufferRoundTrip(t *testing.T) {
	for _, staging := range []bool{false, true} {
		t.Run(fmt.Sprintf("staging=%v", staging), func(t *testing.T) {
			d := vktest.Device(t, vk.DeviceOptions{ForceStaging: staging})
			// Sizes around word and page boundaries, and one larger than the
			// staging ring so it wraps.
			for _, n := range []int{1, 7, 4095, 4097, 40 << 20} {
				src := make([]byte, n)
				for i := range src {
					src[i] = byte(i*7 + n)
				}
				b, err := d.NewBuffer(fmt.Sprintf("buf%d", n), uint64(n), vk.DeviceMemory)
				require.NoError(t, err)
				require.NoError(t, d.Upload(b, 0, src))
				got := make([]byte, n)
				require.NoError(t, d.Download(b, 0, got))
				require.True(t, bytes.Equal(src, got), "size %d: round trip differs", n)
				require.NoError(t, b.Close())
				require.NoError(t, b.Close(), "Close is idempotent")
			}
		})
	}
}
