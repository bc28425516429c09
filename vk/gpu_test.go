package vk_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

func addPipeline(t testing.TB, d *vk.Device) *vk.Pipeline {
	t.Helper()
	desc, err := shaders.Add.Desc(64)
	require.NoError(t, err)
	p, err := d.NewPipeline(desc)
	require.NoError(t, err)
	return p
}

func TestArenaSuballocatesWithoutOverlap(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{BlockSize: 1 << 20})
	var bufs []*vk.Buffer
	for i := range 64 {
		b, err := d.NewBuffer(fmt.Sprintf("b%d", i), uint64(1000+i*37), vk.DeviceMemory)
		require.NoError(t, err)
		fill := make([]byte, b.Size)
		for j := range fill {
			fill[j] = byte(i)
		}
		require.NoError(t, d.Upload(b, 0, fill))
		bufs = append(bufs, b)
	}
	dev, _ := d.AllocatedBytes()
	assert.Less(t, dev, uint64(4<<20), "64 small buffers should share a few 1 MiB blocks, not get one each")
	for i, b := range bufs {
		got := make([]byte, b.Size)
		require.NoError(t, d.Download(b, 0, got))
		for j, v := range got {
			if v != byte(i) {
				t.Fatalf("buffer %d byte %d = %d: another buffer overlaps it", i, j, v)
			}
		}
	}
	for _, b := range bufs[:32] {
		require.NoError(t, b.Close())
	}
	// Freed space is reused before new blocks are allocated.
	before, _ := d.AllocatedBytes()
	b, err := d.NewBuffer("reuse", 2000, vk.DeviceMemory)
	require.NoError(t, err)
	after, _ := d.AllocatedBytes()
	assert.Equal(t, before, after)
	require.NoError(t, b.Close())
	for _, b := range bufs[32:] {
		require.NoError(t, b.Close())
	}
	dev, _ = d.AllocatedBytes()
	assert.Zero(t, dev, "empty blocks are returned to the driver")
}

func TestOutOfDeviceMemoryNamesTheAllocation(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{MemoryLimit: 64 << 20, BlockSize: 16 << 20})
	assert.Equal(t, uint64(64<<20), d.FreeBytes(vk.DeviceMemory), "the limit bounds what is free")
	a, err := d.NewBuffer("fits", 40<<20, vk.DeviceMemory)
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, uint64(24<<20), d.FreeBytes(vk.DeviceMemory), "FreeBytes agrees with the OOM message below")
	small, err := d.NewBuffer("small", 1<<20, vk.DeviceMemory) // in a 16 MiB block: 15 MiB of it stay free
	require.NoError(t, err)
	assert.Equal(t, uint64(23<<20), d.FreeBytes(vk.DeviceMemory), "free space inside blocks counts")
	require.NoError(t, small.Close())
	_, err = d.NewBuffer("blk.31.ffn_down.weight", 40<<20, vk.DeviceMemory)
	require.Error(t, err)
	assert.True(t, errors.Is(err, vk.ErrOutOfDeviceMemory), "got %v", err)
	for _, want := range []string{"blk.31.ffn_down.weight", "needed 40.0 MiB", "free 24.0 MiB", d.Info.Name} {
		assert.Contains(t, err.Error(), want)
	}
	// A request above maxMemoryAllocationSize is a limit, not an OOM.
	_, err = d.NewBuffer("huge", d.Info.MaxMemoryAllocationSize+1, vk.DeviceMemory)
	assert.True(t, errors.Is(err, vk.ErrTooLarge), "got %v", err)
	_, err = d.NewBuffer("empty", 0, vk.DeviceMemory)
	assert.Error(t, err)
}

func TestDescriptorRangeLimits(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	p := addPipeline(t, d)
	big := d.Info.MaxStorageBufferRange + 4096
	if big > d.Info.MaxMemoryAllocationSize {
		t.Skipf("maxStorageBufferRange %d is not below maxMemoryAllocationSize on %s", d.Info.MaxStorageBufferRange, d.Info.Name)
	}
	b, err := d.NewBuffer("big", big, vk.DeviceMemory)
	require.NoError(t, err, "a buffer larger than one binding must still be allocatable")
	small, err := d.NewBuffer("small", 4096, vk.DeviceMemory)
	require.NoError(t, err)
	_, err = d.NewDescriptorSet(p, b.All(), small.All(), small.All())
	assert.True(t, errors.Is(err, vk.ErrTooLarge), "binding all of it must fail: %v", err)
	set, err := d.NewDescriptorSet(p, b.Slice(0, d.Info.MaxStorageBufferRange), small.All(), small.All())
	require.NoError(t, err, "binding one maximal range works")
	require.NoError(t, set.Close())
	if a := d.Info.MinStorageBufferOffsetAlignment; a > 1 {
		_, err = d.NewDescriptorSet(p, b.Slice(a/2, 64), small.All(), small.All())
		assert.ErrorContains(t, err, "minStorageBufferOffsetAlignment")
	}
	_, err = d.NewDescriptorSet(p, small.Slice(4000, 200), small.All(), small.All())
	assert.ErrorContains(t, err, "outside buffer")
	_, err = d.NewDescriptorSet(p, small.All(), small.All())
	assert.ErrorContains(t, err, "2 ranges for 3 bindings")
}

func TestBadInputIsAnErrorNotAPanic(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	code, err := shaders.Add.SPIRV()
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		desc vk.PipelineDesc
		want string
	}{
		{"empty SPIR-V", vk.PipelineDesc{Name: "x"}, "not SPIR-V"},
		{"wrong magic", vk.PipelineDesc{Name: "x", SPIRV: make([]byte, 64)}, "not SPIR-V"},
		{"odd length", vk.PipelineDesc{Name: "x", SPIRV: code[:len(code)-1]}, "not SPIR-V"},
		{"push size not a multiple of 4", vk.PipelineDesc{Name: "x", SPIRV: code, Bindings: []vk.Access{vk.Read, vk.Read, vk.Write}, PushConstantSize: 6}, "multiple of 4"},
		{"bad access", vk.PipelineDesc{Name: "x", SPIRV: code, Bindings: []vk.Access{0, vk.Read, vk.Write}, PushConstantSize: 16}, "bad access"},
	} {
		_, err := d.NewPipeline(tt.desc)
		assert.ErrorContains(t, err, tt.want, tt.name)
	}

	p := addPipeline(t, d)
	buf, err := d.NewBuffer("buf", 256, vk.DeviceMemory)
	require.NoError(t, err)
	set, err := d.NewDescriptorSet(p, buf.All(), buf.All(), buf.All())
	require.NoError(t, err)
	seq, err := d.NewSequence(vk.SequenceOptions{})
	require.NoError(t, err)
	push := shaders.Push(&shaders.AddParams{})

	assert.ErrorContains(t, seq.Submit(), "nothing recorded")
	require.NoError(t, seq.Begin())
	seq.Dispatch(p, set, [3]uint32{1, 1, 1}, push[:8])
	assert.ErrorContains(t, seq.End(), fmt.Sprintf("8 bytes of push constants, want %d", len(push)))
	require.NoError(t, seq.Begin())
	seq.Dispatch(p, set, [3]uint32{0, 1, 1}, push)
	assert.ErrorIs(t, seq.End(), vk.ErrTooLarge)
	require.NoError(t, seq.Begin())
	seq.Dispatch(p, set, [3]uint32{d.Info.MaxWorkgroupCount[0] + 1, 1, 1}, push)
	assert.ErrorIs(t, seq.End(), vk.ErrTooLarge)
	require.NoError(t, seq.Begin())
	seq.Dispatch(nil, set, [3]uint32{1, 1, 1}, push)
	assert.ErrorContains(t, seq.End(), "pipeline is nil")
	seq.Dispatch(p, set, [3]uint32{1, 1, 1}, push)
	assert.ErrorContains(t, seq.End(), "without Begin")
	require.NoError(t, seq.Begin())
	seq.Fill(buf.Slice(2, 8), 0)
	assert.ErrorContains(t, seq.End(), "multiples of 4")
	require.NoError(t, seq.Begin())
	seq.Copy(buf.Slice(0, 64), buf.Slice(32, 64))
	assert.ErrorContains(t, seq.End(), "overlapping")

	// Use after close.
	require.NoError(t, buf.Close())
	require.NoError(t, seq.Begin())
	seq.Dispatch(p, set, [3]uint32{1, 1, 1}, push)
	assert.ErrorIs(t, seq.End(), vk.ErrClosed)
	require.NoError(t, seq.Close())
	assert.ErrorIs(t, seq.Begin(), vk.ErrClosed)
	assert.ErrorIs(t, seq.Submit(), vk.ErrClosed)
}

func TestSequenceResubmitsWithNewHostData(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	p := addPipeline(t, d)
	const n = 1000
	x, err := d.NewBuffer("x", 4*n, vk.HostMemory)
	require.NoError(t, err)
	y, err := d.NewBuffer("y", 4*n, vk.DeviceMemory)
	require.NoError(t, err)
	z, err := d.NewBuffer("z", 4*n, vk.HostMemory)
	require.NoError(t, err)
	require.NoError(t, d.Upload(y, 0, optest.Bytes(optest.Rand(2, n))))
	set, err := d.NewDescriptorSet(p, x.All(), y.All(), z.All())
	require.NoError(t, err)
	seq, err := d.NewSequence(vk.SequenceOptions{})
	require.NoError(t, err)
	require.NoError(t, seq.Begin())
	pc := shaders.AddParams{N: n}
	seq.Dispatch(p, set, [3]uint32{(n + 63) / 64, 1, 1}, shaders.Push(&pc))
	require.NoError(t, seq.End())
	yv := optest.Rand(2, n)
	for step := range 5 {
		xv := optest.Rand(uint64(100+step), n)
		copy(x.Mapped(), optest.Bytes(xv)) // per-step data: no re-recording
		require.NoError(t, seq.Run(10*time.Second))
		got := optest.Floats(z.Mapped())
		for i := range xv {
			if got[i] != xv[i]+yv[i] {
				t.Fatalf("step %d element %d: %g + %g = %g, got %g", step, i, xv[i], yv[i], xv[i]+yv[i], got[i])
			}
		}
	}
}

func TestTimestampsAndWaitTimeout(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	if d.Info.TimestampValidBits == 0 {
		t.Skipf("%s has no timestamps on its compute queue", d.Info.Name)
	}
	lib, err := ops.NewLibrary(d, ops.Options{})
	require.NoError(t, err)
	defer lib.Close()
	const rows, cols = 2048, 4096
	w, err := d.NewBuffer("w", rows*cols*4, vk.DeviceMemory)
	require.NoError(t, err)
	x, err := d.NewBuffer("x", cols*4, vk.DeviceMemory)
	require.NoError(t, err)
	y, err := d.NewBuffer("y", rows*4, vk.DeviceMemory)
	require.NoError(t, err)
	seq, err := d.NewSequence(vk.SequenceOptions{Timestamps: true})
	require.NoError(t, err)
	require.NoError(t, seq.Begin())
	plan := lib.NewPlan(seq)
	defer plan.Close()
	for range 3 {
		plan.MatVec(ops.F32(w), ops.F32(x), ops.F32(y), rows, cols)
	}
	require.NoError(t, plan.Err())
	require.NoError(t, seq.End())
	require.NoError(t, seq.Submit())
	// A 32 MiB matvec three times does not finish within a nanosecond.
	err = seq.Wait(time.Nanosecond)
	if err != nil {
		assert.True(t, errors.Is(err, vk.ErrTimeout), "got %v", err)
		assert.True(t, seq.Pending())
		assert.ErrorContains(t, seq.Begin(), "still pending")
	}
	require.NoError(t, seq.Wait(time.Minute))
	tim, err := seq.Timings()
	require.NoError(t, err)
	require.Len(t, tim, 3)
	for _, tm := range tim {
		assert.Equal(t, "matvec_f32", tm.Name)
		assert.Positive(t, tm.Duration)
		assert.Less(t, tm.Duration, time.Minute)
	}
	t.Logf("matvec %dx%d: %v", rows, cols, tim)
}

func TestPipelineCachePersists(t *testing.T) {
	dir := t.TempDir()
	in := vktest.Instance(t)
	d := vktest.DeviceOn(t, in, vk.DeviceOptions{PipelineCacheDir: dir})
	addPipeline(t, d)
	path := d.PipelineCachePath()
	require.NoError(t, d.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err, "the cache is saved on Close")
	require.GreaterOrEqual(t, len(data), 32)
	assert.EqualValues(t, 1, binary.LittleEndian.Uint32(data[4:]), "VkPipelineCacheHeaderVersionOne")
	assert.Equal(t, d.Info.VendorID, binary.LittleEndian.Uint32(data[8:]))
	assert.Equal(t, d.Info.PipelineCacheUUID[:], data[16:32])

	// A second device loads it; a corrupt file is ignored, not fed to the driver.
	d2 := vktest.DeviceOn(t, in, vk.DeviceOptions{PipelineCacheDir: dir})
	addPipeline(t, d2)
	require.NoError(t, d2.Close())
	require.NoError(t, os.WriteFile(path, []byte("garbage that is not a pipeline cache at all"), 0o644))
	d3 := vktest.DeviceOn(t, in, vk.DeviceOptions{PipelineCacheDir: dir})
	addPipeline(t, d3)
	require.NoError(t, d3.Close())
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.EqualValues(t, 1, binary.LittleEndian.Uint32(data[4:]), "rewritten with a valid cache")
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary files left behind")
}

func TestValidationMessagesAreCollected(t *testing.T) {
	if !vk.HasValidationLayer() {
		if os.Getenv("CI") != "" {
			t.Fatal("validation layer missing under CI")
		}
		t.Skip("validation layer not installed")
	}
	in, err := vk.NewInstance(vk.InstanceOptions{Validation: true})
	require.NoError(t, err)
	devs, err := in.Devices()
	require.NoError(t, err)
	info, _, err := vk.Choose(devs, os.Getenv(vk.DeviceEnv))
	require.NoError(t, err)
	d, err := in.NewDevice(info, vk.DeviceOptions{PipelineCacheDir: "off"})
	require.NoError(t, err)
	// A pipeline layout that declares no push constants for a shader that
	// uses them is invalid: vk cannot see it, the layer must report it.
	code, err := shaders.Add.SPIRV()
	require.NoError(t, err)
	p, err := d.NewPipeline(vk.PipelineDesc{Name: "add-without-push", SPIRV: code,
		Bindings: []vk.Access{vk.Read, vk.Read, vk.Write}, Spec: []vk.SpecConstant{{ID: 0, Value: 64}}})
	if err == nil {
		p.Close()
	}
	require.NoError(t, d.Close())
	require.NoError(t, in.Close())
	msgs := in.Messages()
	require.NotEmpty(t, msgs, "the layer must report the missing push-constant range")
	assert.Equal(t, vk.SeverityError, msgs[0].Severity)
	assert.True(t, strings.Contains(strings.ToLower(msgs[0].Text), "push constant"), "message: %s", msgs[0].Text)
	require.NoError(t, in.Close(), "Close is idempotent")
}

// TestMissingLoader runs this test binary again with the loader path pointing
// nowhere: vk must report what to install instead of failing to link.
func TestMissingLoader(t *testing.T) {
	if os.Getenv("VKRUN_TEST_CHILD") == "missing-loader" {
		_, err := vk.NewInstance(vk.InstanceOptions{})
		if !errors.Is(err, vk.ErrNoLoader) {
			fmt.Printf("unexpected: %v\n", err)
			os.Exit(3)
		}
		fmt.Printf("error: %v\n", err)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMissingLoader$")
	cmd.Env = append(os.Environ(), "VKRUN_TEST_CHILD=missing-loader", vk.LibraryEnv+"=/nonexistent/libvulkan.so.1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child: %s", out)
	assert.Contains(t, string(out), "Vulkan loader not found")
	assert.Contains(t, string(out), "apt-get install libvulkan1")
}

func TestWrapExternalDeviceLeavesItAlive(t *testing.T) {
	in := vktest.Instance(t)
	owner := vktest.DeviceOn(t, in, vk.DeviceOptions{})
	phys, dev, queue := owner.Handles()
	require.NotZero(t, dev)

	// The "application": raw handles only, as another binding would hand them over.
	app, err := vk.WrapInstance(in.Handle(), in.APIVersion())
	require.NoError(t, err)
	guest, err := app.WrapDevice(vk.ExternalDevice{PhysicalDevice: phys, Device: dev, Queue: queue,
		QueueFamily: owner.QueueFamily()}, vk.DeviceOptions{PipelineCacheDir: "off"})
	require.NoError(t, err)
	runAddOn(t, guest)
	require.NoError(t, guest.Close())
	require.NoError(t, app.Close())

	// The owner's device, queue and instance still work.
	runAddOn(t, owner)
	_, err = vk.WrapInstance(0, in.APIVersion())
	assert.Error(t, err)
	_, err = in.WrapDevice(vk.ExternalDevice{}, vk.DeviceOptions{})
	assert.ErrorContains(t, err, "null handle")
}

func runAddOn(t testing.TB, d *vk.Device) {
	t.Helper()
	p := addPipeline(t, d)
	defer p.Close()
	const n = 300
	b, err := d.NewBuffer("xyz", 3*4*n, vk.HostMemory)
	require.NoError(t, err)
	defer b.Close()
	xv, yv := optest.Rand(1, n), optest.Rand(2, n)
	copy(b.Mapped(), optest.Bytes(append(xv, yv...)))
	set, err := d.NewDescriptorSet(p, b.Slice(0, 4*n), b.Slice(4*n, 4*n), b.Slice(8*n, 4*n))
	if err != nil && strings.Contains(err.Error(), "minStorageBufferOffsetAlignment") {
		t.Skip("device alignment does not allow this packing")
	}
	require.NoError(t, err)
	defer set.Close()
	seq, err := d.NewSequence(vk.SequenceOptions{OneTime: true})
	require.NoError(t, err)
	defer seq.Close()
	require.NoError(t, seq.Begin())
	pc := shaders.AddParams{N: n}
	seq.Dispatch(p, set, [3]uint32{(n + 63) / 64, 1, 1}, shaders.Push(&pc))
	require.NoError(t, seq.End())
	require.NoError(t, seq.Run(10*time.Second))
	got := optest.Floats(b.Mapped()[8*n:])
	for i := range got {
		require.Equal(t, xv[i]+yv[i], got[i])
	}
}

// TestGCStress runs GPU work while another goroutine collects garbage in a
// loop: no Go pointer may be kept by C, no object freed by a finalizer.
func TestGCStress(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			runtime.GC()
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	p := addPipeline(t, d)
	seq, err := d.NewSequence(vk.SequenceOptions{})
	require.NoError(t, err)
	for i := range iters {
		n := 1 + i%97
		x, err := d.NewBuffer("x", uint64(4*n), vk.DeviceMemory)
		require.NoError(t, err)
		z, err := d.NewBuffer("z", uint64(4*n), vk.DeviceMemory)
		require.NoError(t, err)
		v := make([]float32, n)
		for j := range v {
			v[j] = float32(i + j)
		}
		require.NoError(t, d.Upload(x, 0, optest.Bytes(v)))
		set, err := d.NewDescriptorSet(p, x.All(), x.All(), z.All())
		require.NoError(t, err)
		require.NoError(t, seq.Begin())
		pc := shaders.AddParams{N: uint32(n)}
		seq.Dispatch(p, set, [3]uint32{uint32(n+63) / 64, 1, 1}, shaders.Push(&pc))
		require.NoError(t, seq.End())
		require.NoError(t, seq.Run(10*time.Second))
		out := make([]byte, 4*n)
		require.NoError(t, d.Download(z, 0, out))
		got := optest.Floats(out)
		for j := range got {
			if got[j] != 2*v[j] {
				t.Fatalf("iteration %d element %d: got %g want %g", i, j, got[j], 2*v[j])
			}
		}
		set.Close()
		x.Close()
		z.Close()
	}
}

// TestInstanceCloseClosesDevices: closing the parent first still destroys
// children first, and everything stays idempotent.
func TestInstanceCloseClosesDevices(t *testing.T) {
	in := vktest.Instance(t)
	devs, err := in.Devices()
	require.NoError(t, err)
	info, _, err := vk.Choose(devs, os.Getenv(vk.DeviceEnv))
	require.NoError(t, err)
	d, err := in.NewDevice(info, vk.DeviceOptions{PipelineCacheDir: "off"})
	require.NoError(t, err)
	b, err := d.NewBuffer("left open", 1024, vk.DeviceMemory)
	require.NoError(t, err)
	addPipeline(t, d)
	require.NoError(t, in.Close())
	assert.ErrorIs(t, d.WaitIdle(), vk.ErrClosed)
	_, err = d.NewBuffer("after close", 16, vk.DeviceMemory)
	assert.ErrorIs(t, err, vk.ErrClosed)
	require.NoError(t, b.Close())
	require.NoError(t, d.Close())
	require.NoError(t, in.Close())
	_, err = in.Devices()
	assert.ErrorIs(t, err, vk.ErrClosed)
}

// TestFullSubgroups: a pipeline that requires full subgroups builds where
// the device enables computeFullSubgroups (the validation layer checks the
// workgroup width against the subgroup sizes), and is an error, not a
// driver fault, on a device without it.
func TestFullSubgroups(t *testing.T) {
	desc, err := shaders.Add.Desc(64)
	require.NoError(t, err)
	desc.FullSubgroups = true
	base := vktest.Device(t, vk.DeviceOptions{NoOptionalFeatures: true})
	require.False(t, base.Features.ComputeFullSubgroups)
	_, err = base.NewPipeline(desc)
	require.ErrorContains(t, err, "full subgroups")
	d := vktest.Device(t, vk.DeviceOptions{})
	if !d.Features.ComputeFullSubgroups {
		t.Skipf("%s does not offer computeFullSubgroups", d.Info.Name)
	}
	p, err := d.NewPipeline(desc)
	require.NoError(t, err)
	require.NoError(t, p.Close())
}

// TestIntegerDotProduct: shaderIntegerDotProduct is enabled wherever the
// device offers it and never on the baseline, the acceleration property
// only with it, and a module using OpSDot (the integer-dot matmul) builds
// under validation with it enabled.
func TestIntegerDotProduct(t *testing.T) {
	base := vktest.Device(t, vk.DeviceOptions{NoOptionalFeatures: true})
	require.False(t, base.Features.IntegerDotProduct)
	require.False(t, base.Features.IntegerDot4x8Accelerated)
	d := vktest.Device(t, vk.DeviceOptions{})
	require.Equal(t, d.Info.IntegerDotProduct, d.Features.IntegerDotProduct)
	require.Equal(t, d.Info.IntegerDotProduct && d.Info.IntegerDot4x8Accelerated, d.Features.IntegerDot4x8Accelerated)
	t.Logf("%s: shaderIntegerDotProduct %v, 4×8-bit packed signed accelerated %v", d.Info.Name, d.Info.IntegerDotProduct, d.Info.IntegerDot4x8Accelerated)
	if !d.Features.IntegerDotProduct {
		t.Skipf("%s does not offer shaderIntegerDotProduct", d.Info.Name)
	}
	k, _ := shaders.WeightKernel(shaders.OpMatMul1, loader.Q8_0, shaders.GPULayout)
	dk, ok := shaders.MatMulDot(k)
	require.True(t, ok)
	desc, err := dk.Desc(128)
	require.NoError(t, err)
	if d.Features.ComputeFullSubgroups {
		desc.FullSubgroups = true
	}
	p, err := d.NewPipeline(desc)
	require.NoError(t, err)
	require.NoError(t, p.Close())
}

// TestCooperativeMatrix: VK_KHR_cooperative_matrix and
// VK_NV_cooperative_matrix are enabled wherever the device offers them with
// an f16 shape into f32 (and shaderFloat16 and vulkanMemoryModel), never on
// the baseline, and a cooperative-matrix module of each builds under
// validation with its extension enabled.
func TestCooperativeMatrix(t *testing.T) {
	base := vktest.Device(t, vk.DeviceOptions{NoOptionalFeatures: true})
	require.False(t, base.Features.CooperativeMatrixNV)
	require.False(t, base.Features.CooperativeMatrixKHR)
	d := vktest.Device(t, vk.DeviceOptions{})
	i := d.Info
	require.Equal(t, i.CooperativeMatrixNV && i.Float16 && i.VulkanMemoryModel, d.Features.CooperativeMatrixNV)
	require.Equal(t, i.CooperativeMatrixKHR && i.Float16 && i.VulkanMemoryModel, d.Features.CooperativeMatrixKHR)
	require.Equal(t, i.CooperativeMatrixNV, len(i.CooperativeMatrixNVShapes) != 0)
	require.Equal(t, i.CooperativeMatrixKHR, len(i.CooperativeMatrixKHRShapes) != 0)
	t.Logf("%s: subgroups of %d (%d to %d); VK_KHR_cooperative_matrix %v %v; VK_NV_cooperative_matrix %v %v; vulkanMemoryModel %v",
		i.Name, i.SubgroupSize, i.MinSubgroupSize, i.MaxSubgroupSize, i.CooperativeMatrixKHR, i.CooperativeMatrixKHRShapes,
		i.CooperativeMatrixNV, i.CooperativeMatrixNVShapes, i.VulkanMemoryModel)
	built := 0
	for _, e := range []struct {
		on     bool
		ext    shaders.CoopMatExt
		shapes []vk.CooperativeMatrixShape
	}{{d.Features.CooperativeMatrixKHR, shaders.CoopMatKHR, i.CooperativeMatrixKHRShapes}, {d.Features.CooperativeMatrixNV, shaders.CoopMatNV, i.CooperativeMatrixNVShapes}} {
		if !e.on {
			continue
		}
		at, ok := shaders.ChooseCoopMat(e.ext, e.shapes, i.SubgroupSize)
		if !ok {
			t.Logf("%s: no %s shape tiles the kernels at subgroups of %d", i.Name, e.ext, i.SubgroupSize)
			continue
		}
		k, _ := shaders.WeightKernel(shaders.OpMatMulTiled, loader.Q4_K, shaders.GPULayout)
		ck, ok := shaders.MatMulCoopMat(k, at)
		require.True(t, ok)
		ak, ok := shaders.AttentionCoopMat(true, 64, at)
		require.True(t, ok, "%v", at)
		for _, k := range []shaders.Kernel{ck, ak} {
			desc, err := k.Desc(shaders.CoopMatWG)
			require.NoError(t, err)
			if i.MinSubgroupSize != i.MaxSubgroupSize && d.Features.SubgroupSizeControl {
				desc.RequiredSubgroupSize = at.Subgroup()
			}
			p, err := d.NewPipeline(desc)
			require.NoError(t, err, "%s in %v", k.Name, at)
			require.NoError(t, p.Close())
			built++
		}
	}
	if built == 0 {
		t.Skipf("%s offers no cooperative matrices the kernels take (Debian bookworm's lavapipe, Mesa 22.3, has none; Mesa 26's has VK_KHR_cooperative_matrix: scripts/mesa-next.sh)", i.Name)
	}
}
