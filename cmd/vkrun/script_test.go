package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/vkrun/vkrun/internal/modeldir"
	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/vk"
)

// chosenDevice is the device the scripts' vkrun picks.
func chosenDevice(t *testing.T) vk.DeviceInfo {
	in, err := vk.NewInstance(vk.InstanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	devs, err := in.Devices()
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := vk.Choose(devs, os.Getenv(vk.DeviceEnv))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"vkrun": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the real binary on the scripts in testdata/script, with
// golden stdout and stderr. They need Vulkan and stories260K; without them
// they skip, except under CI.
func TestScripts(t *testing.T) {
	why := ""
	if err := vk.Load(); err != nil {
		why = err.Error()
	} else if _, err := os.Stat(modeldir.Stories260K()); err != nil {
		why = "stories260K.gguf missing (run scripts/setup.sh)"
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("under CI the CLI scripts must run: %s", why)
		}
		t.Skip(why)
	}
	golden, err := filepath.Abs("../../tests/testdata/stories260K-greedy-200.txt")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("VKRUN_MODEL_DIR", modeldir.Dir())
			env.Setenv("MODEL", modeldir.Stories260K())
			env.Setenv("GOLDEN", golden)
			env.Setenv("VKRUN_CACHE_DIR", "off")
			env.Setenv("VKRUN_DEVICE", os.Getenv("VKRUN_DEVICE"))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "intdot":
				return chosenDevice(t).IntegerDotProduct, nil
			case "coopmat": // what --coopmat on needs of the device (ops.CoopMatChoice)
				return coopmatReady(t), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// coopmatReady reports whether the chosen device has what --coopmat on
// needs (ops.CoopMatChoice): a cooperative-matrix extension with a shape
// the kernels take at one subgroup size, shaderFloat16 and
// vulkanMemoryModel. The load-time check may still turn it down.
func coopmatReady(t *testing.T) bool {
	d := chosenDevice(t)
	if !d.Float16 || !d.VulkanMemoryModel ||
		(d.MinSubgroupSize != d.MaxSubgroupSize && !(d.SubgroupSizeControl && d.RequiredSubgroupSizeInCompute)) {
		return false
	}
	sg := d.SubgroupSize // the library's choice of the grid's subgroup size
	if d.MinSubgroupSize != d.MaxSubgroupSize && d.MinSubgroupSize <= 32 && 32 <= d.MaxSubgroupSize {
		sg = 32
	}
	_, khr := shaders.ChooseCoopMat(shaders.CoopMatKHR, d.CooperativeMatrixKHRShapes, sg)
	_, nv := shaders.ChooseCoopMat(shaders.CoopMatNV, d.CooperativeMatrixNVShapes, sg)
	return (d.CooperativeMatrixKHR && khr) || (d.CooperativeMatrixNV && nv)
}
