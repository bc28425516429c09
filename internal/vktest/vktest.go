// Package vktest opens Vulkan devices for tests: with the validation layer
// whenever it is installed (always under CI), skipping with a reason when no
// loader or device exists (failing instead under CI), and failing the test on
// any validation message once everything is closed.
package vktest

import (
	"os"
	"testing"

	"github.com/vkrun/vkrun/vk"
)

// underCI reports whether missing Vulkan pieces must fail rather than skip.
func underCI() bool { return os.Getenv("CI") != "" }

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if underCI() {
		t.Fatalf("under CI, Vulkan must be available (scripts/setup.sh installs lavapipe): "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// Instance returns a validated instance closed at cleanup, after which any
// validation message fails the test.
func Instance(t testing.TB) *vk.Instance {
	t.Helper()
	if err := vk.Load(); err != nil {
		unavailable(t, "%v", err)
	}
	validate := vk.HasValidationLayer()
	if _, bench := t.(*testing.B); bench {
		// Benchmarks measure the driver, not the layer's bookkeeping.
		return instance(t, false)
	}
	if !validate && underCI() {
		t.Fatalf("under CI the validation layer must be installed (%s)", vk.ValidationLayer)
	}
	return instance(t, validate)
}

func instance(t testing.TB, validate bool) *vk.Instance {
	t.Helper()
	in, err := vk.NewInstance(vk.InstanceOptions{AppName: t.Name(), Validation: validate, SyncValidation: validate})
	if err != nil {
		unavailable(t, "%v", err)
	}
	t.Cleanup(func() {
		in.Close()
		CheckMessages(t, in)
	})
	return in
}

// CheckMessages fails t for every validation message in collected so far.
func CheckMessages(t testing.TB, in *vk.Instance) {
	t.Helper()
	for _, m := range in.Messages() {
		t.Errorf("validation: %s", m)
	}
	if n := in.DroppedMessages(); n > 0 {
		t.Errorf("validation: %d more messages dropped", n)
	}
}

// Device opens the device that vk.Choose picks (honouring VKRUN_DEVICE) on a
// validated instance. Both are closed at cleanup, device first.
func Device(t testing.TB, opts vk.DeviceOptions) *vk.Device {
	t.Helper()
	in := Instance(t)
	return DeviceOn(t, in, opts)
}

// DeviceOn opens the chosen device of in, closed at cleanup.
func DeviceOn(t testing.TB, in *vk.Instance, opts vk.DeviceOptions) *vk.Device {
	t.Helper()
	devs, err := in.Devices()
	if err != nil {
		t.Fatalf("listing devices: %v", err)
	}
	info, _, err := vk.Choose(devs, os.Getenv(vk.DeviceEnv))
	if err != nil {
		unavailable(t, "%v", err)
	}
	if opts.PipelineCacheDir == "" {
		opts.PipelineCacheDir = "off"
	}
	d, err := in.NewDevice(info, opts)
	if err != nil {
		t.Fatalf("creating device on %s: %v", info.Name, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing device: %v", err)
		}
	})
	return d
}
