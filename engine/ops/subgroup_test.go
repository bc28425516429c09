package ops_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/engine/ops"
	"github.com/vkrun/vkrun/internal/optest"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/loader"
	"github.com/vkrun/vkrun/vk"
)

// TestSubgroupSize checks how the CPU layout's one-subgroup workgroups get
// their size: requested through subgroup size control wherever the device
// offers it for compute shaders (so that a device whose size varies runs
// them as one whole subgroup), and a product in that layout still matches
// the reference with the request made (the validation layer checks the
// request itself). A device without subgroup arithmetic cannot run the
// layout at all.
func TestSubgroupSize(t *testing.T) {
	e := newEnv(t, vk.DeviceOptions{}, 0)
	info := e.d.Info
	width, required := e.lib.SubgroupSize()
	assert.Equal(t, info.SubgroupSize, width)
	canRequire := e.d.Features.SubgroupSizeControl && info.RequiredSubgroupSizeInCompute
	assert.Equal(t, canRequire, required, "request the size exactly where the device offers it")
	t.Logf("%s: subgroup size %d (range %d–%d), required: %v", info.Name, width, info.MinSubgroupSize, info.MaxSubgroupSize, required)

	cpu := newEnvOn(t, e.d, ops.Options{Layout: ops.ForceCPU})
	const rows, cols = 17, 512
	w, deq := cpu.uploadRand(t, loader.Q4_K, rows, cols, 1)
	x := optest.Rand(2, cols)
	xb, yb := cpu.upload(t, "x", x), cpu.zeros(t, "y", rows)
	cpu.run(t, func(p *ops.Plan) { p.MatMul(w, ops.F32(xb), ops.F32(yb), 1, false) })
	check(t, "matmul, one subgroup per workgroup", cpu.download(t, yb), optest.MatMul(deq, x, nil, rows, cols, 1), nmseMatMul[loader.Q4_K])

	base := vktest.Device(t, vk.DeviceOptions{NoOptionalFeatures: true})
	_, err := ops.NewLibrary(base, ops.Options{Layout: ops.ForceCPU})
	require.ErrorContains(t, err, "subgroup")
	l, err := ops.NewLibrary(base, ops.Options{})
	require.NoError(t, err)
	defer l.Close()
	if base.Info.Type == vk.DeviceCPU {
		assert.NotEmpty(t, l.Notes(), "a CPU device that cannot run the CPU layout says so")
	}
}
