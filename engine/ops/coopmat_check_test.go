package ops

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/vk"
)

// TestCheckCoopMat: the load-time check of the cooperative-matrix kernels
// against their emulated modules passes where they agree (an emulated
// library against the emulation: NMSE 0; the device's own kernels, where
// it offers an extension, against the emulation) and catches kernels that
// do not round to f16 (the exact product and attention against the
// emulation: NMSE near 1e-7, above the bound), and forgets its own kernel
// picks.
func TestCheckCoopMat(t *testing.T) {
	d := vktest.Device(t, vk.DeviceOptions{})
	if !d.Features.Float16 {
		t.Skipf("%s lacks shaderFloat16, which the emulated cooperative-matrix kernels need", d.Info.Name)
	}
	for _, c := range []struct {
		choice CoopMatChoice
		pass   bool
	}{{EmulateCoopMat, true}, {NoCoopMat, false}, {ForceCoopMat, true}} {
		if c.choice == ForceCoopMat && !d.Features.CooperativeMatrixKHR && !d.Features.CooperativeMatrixNV {
			t.Logf("%s offers no cooperative-matrix extension: the check of a device's kernels does not run (Debian bookworm's lavapipe has none; scripts/mesa-next.sh runs it on Mesa 26's)", d.Info.Name)
			continue
		}
		l, err := NewLibrary(d, Options{Layout: ForceGPU, CoopMat: c.choice})
		require.NoError(t, err)
		before := l.CoopMat()
		nmse, err := l.checkCoopMat()
		require.NoError(t, err)
		require.Len(t, nmse, 2)
		for i, e := range nmse {
			t.Logf("%s library against the emulation, %s: NMSE %.3g", before, []string{"product", "attention"}[i], e)
			require.Equal(t, c.pass, e <= maxCoopMatCheckNMSE, "NMSE %.3g", e)
		}
		require.Equal(t, before, l.CoopMat())
		require.Empty(t, l.Picks())
		l.Close()
	}
}
