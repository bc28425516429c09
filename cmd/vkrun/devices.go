package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/vkrun/vkrun/vk"
)

func init() {
	register("devices", "list Vulkan devices and mark the one vkrun would use", cmdDevices)
}

// deviceJSON is one device in `vkrun devices --json`.
type deviceJSON struct {
	Index                      int        `json:"index"`
	Chosen                     bool       `json:"chosen"`
	Name                       string     `json:"name"`
	Vendor                     string     `json:"vendor"`
	VendorID                   uint32     `json:"vendor_id"`
	DeviceID                   uint32     `json:"device_id"`
	Type                       string     `json:"type"`
	Driver                     string     `json:"driver"`
	DriverInfo                 string     `json:"driver_info"`
	APIVersion                 string     `json:"api_version"`
	Usable                     bool       `json:"usable"`
	Unusable                   string     `json:"unusable_reason,omitempty"`
	Heaps                      []heapJSON `json:"heaps"`
	SubgroupSize               uint32     `json:"subgroup_size"`
	SubgroupSizeRange          [2]uint32  `json:"subgroup_size_range"`
	SubgroupArithmetic         bool       `json:"subgroup_arithmetic"`
	Float16                    bool       `json:"float16"`
	Int8                       bool       `json:"int8"`
	Storage16                  bool       `json:"storage_16bit"`
	Storage8                   bool       `json:"storage_8bit"`
	IntegerDot                 bool       `json:"integer_dot"`             // shaderIntegerDotProduct
	IntegerDotAccelerated      bool       `json:"integer_dot_accelerated"` // the 4×8-bit packed signed one
	CoopMatKHR                 []string   `json:"coopmat_khr"`             // VK_KHR_cooperative_matrix: its f16-into-f32 subgroup shapes, M×N×K
	CoopMatNV                  []string   `json:"coopmat_nv"`              // VK_NV_cooperative_matrix: the same
	MaxStorageBufferRange      uint64     `json:"max_storage_buffer_range"`
	MaxMemoryAllocationSize    uint64     `json:"max_memory_allocation_size"`
	MaxComputeSharedMemorySize uint32     `json:"max_compute_shared_memory_size"`
	TimestampPeriodNS          float64    `json:"timestamp_period_ns"`
}

type heapJSON struct {
	Size        uint64 `json:"size"`
	Budget      uint64 `json:"budget"`
	DeviceLocal bool   `json:"device_local"`
}

func cmdDevices(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devices", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the devices as JSON")
	selector := fs.String("device", os.Getenv(vk.DeviceEnv), "device to mark as chosen: index or name substring (default $"+vk.DeviceEnv+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vkrun devices: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	in, err := vk.NewInstance(vk.InstanceOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "vkrun devices: %v\n", err)
		return 1
	}
	defer in.Close()
	devs, err := in.Devices()
	if err != nil {
		fmt.Fprintf(stderr, "vkrun devices: %v\n", err)
		return 1
	}
	chosen, notice, chooseErr := vk.Choose(devs, *selector)
	if *asJSON {
		out := struct {
			Loader  string       `json:"instance_api_version"`
			Devices []deviceJSON `json:"devices"`
			Error   string       `json:"choice_error,omitempty"`
		}{Loader: in.APIVersion().String(), Devices: []deviceJSON{}}
		if chooseErr != nil {
			out.Error = chooseErr.Error()
		}
		for _, d := range devs {
			j := deviceJSON{
				Index: d.Index, Chosen: chooseErr == nil && d.Index == chosen.Index, Name: d.Name,
				Vendor: d.Vendor(), VendorID: d.VendorID, DeviceID: d.DeviceID, Type: d.Type.String(),
				Driver: d.DriverName, DriverInfo: d.DriverInfo, APIVersion: d.APIVersion.String(),
				Usable: d.Usable() == "", Unusable: d.Usable(),
				SubgroupSize: d.SubgroupSize, SubgroupSizeRange: [2]uint32{d.MinSubgroupSize, d.MaxSubgroupSize},
				SubgroupArithmetic: d.SubgroupInCompute && d.SubgroupOps&vk.SubgroupArithmetic != 0,
				Float16:            d.Float16, Int8: d.Int8, Storage16: d.Storage16, Storage8: d.Storage8,
				IntegerDot: d.IntegerDotProduct, IntegerDotAccelerated: d.IntegerDot4x8Accelerated,
				CoopMatKHR:            shapeStrings(d.CooperativeMatrixKHR, d.CooperativeMatrixKHRShapes),
				CoopMatNV:             shapeStrings(d.CooperativeMatrixNV, d.CooperativeMatrixNVShapes),
				MaxStorageBufferRange: d.MaxStorageBufferRange, MaxMemoryAllocationSize: d.MaxMemoryAllocationSize,
				MaxComputeSharedMemorySize: d.MaxComputeSharedMemorySize, TimestampPeriodNS: d.TimestampPeriod,
			}
			for _, h := range d.Heaps {
				j.Heaps = append(j.Heaps, heapJSON{Size: h.Size, Budget: h.Budget, DeviceLocal: h.DeviceLocal})
			}
			out.Devices = append(out.Devices, j)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "vkrun devices: %v\n", err)
			return 1
		}
		if chooseErr != nil {
			return 1
		}
		return 0
	}

	if len(devs) == 0 {
		fmt.Fprintln(stderr, "vkrun devices: the Vulkan loader found no devices (install a driver, e.g. mesa-vulkan-drivers)")
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tNAME\tTYPE\tVENDOR\tDRIVER\tVULKAN\tMEMORY\tSUBGROUP\tFEATURES")
	for _, d := range devs {
		mark := " "
		if chooseErr == nil && d.Index == chosen.Index {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, d.Index, d.Name, d.Type, d.Vendor(),
			d.DriverName, d.APIVersion, memSummary(d), subgroupSummary(d), featureSummary(d))
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	for _, d := range devs {
		fmt.Fprintf(stdout, "%d: maxStorageBufferRange %s, maxMemoryAllocationSize %s, shared memory %s",
			d.Index, humanBytes(d.MaxStorageBufferRange), humanBytes(d.MaxMemoryAllocationSize), humanBytes(uint64(d.MaxComputeSharedMemorySize)))
		if why := d.Usable(); why != "" {
			fmt.Fprintf(stdout, " (unusable: %s)", why)
		}
		fmt.Fprintln(stdout)
	}
	if chooseErr != nil {
		fmt.Fprintf(stderr, "vkrun devices: %v\n", chooseErr)
		return 1
	}
	fmt.Fprintf(stdout, "\n* vkrun would use device %d (%s); choose another with --device or $%s\n", chosen.Index, chosen.Name, vk.DeviceEnv)
	if notice != "" {
		fmt.Fprintln(stderr, notice)
	}
	return 0
}

func memSummary(d vk.DeviceInfo) string {
	var parts []string
	for _, h := range d.Heaps {
		s := humanBytes(h.Size)
		if d.HasMemoryBudget && h.Budget != h.Size {
			s += " (budget " + humanBytes(h.Budget) + ")"
		}
		if h.DeviceLocal {
			s += " local"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func subgroupSummary(d vk.DeviceInfo) string {
	if d.MinSubgroupSize != d.MaxSubgroupSize && d.MinSubgroupSize != 0 {
		return fmt.Sprintf("%d (%d-%d)", d.SubgroupSize, d.MinSubgroupSize, d.MaxSubgroupSize)
	}
	return fmt.Sprint(d.SubgroupSize)
}

// shapeStrings is shapes as M×N×K, an empty list where the feature is off.
func shapeStrings(on bool, shapes []vk.CooperativeMatrixShape) []string {
	out := []string{}
	for _, s := range shapes {
		if on {
			out = append(out, s.String())
		}
	}
	return out
}

func featureSummary(d vk.DeviceInfo) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{d.Float16, "fp16"}, {d.Int8, "int8"}, {d.Storage16, "16bit-storage"}, {d.Storage8, "8bit-storage"},
		{d.SubgroupInCompute && d.SubgroupOps&vk.SubgroupArithmetic != 0, "subgroup-arith"},
		{d.IntegerDotProduct && !d.IntegerDot4x8Accelerated, "int-dot"}, {d.IntegerDot4x8Accelerated, "int-dot(accel)"},
		{d.CooperativeMatrixKHR, "coopmat(khr)"}, {d.CooperativeMatrixNV, "coopmat(nv)"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, " ")
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
