package vkrun_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/vk"
)

// TestMain keeps `go test` useful on a machine without Vulkan or the model:
// the examples need both and cannot skip, so they are left out there (never
// under CI, where setup provides both).
func TestMain(m *testing.M) {
	flag.Parse()
	why := ""
	if err := vk.Load(); err != nil {
		why = err.Error()
	} else if _, err := os.Stat(storiesPath()); err != nil {
		why = "stories260K.gguf not found (run scripts/setup.sh)"
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "under CI the examples must run:", why)
			os.Exit(1)
		}
		if flag.Lookup("test.run").Value.String() == "" {
			fmt.Fprintln(os.Stderr, "skipping examples:", why)
			flag.Set("test.run", "^Test")
		}
	}
	os.Exit(m.Run())
}

func storiesPath() string { return filepath.Join(testmodel.Dir(), "stories260K.gguf") }

// Load a model, start a session and stream greedy text from the start of a
// story (an empty prompt is just the BOS token).
func Example() {
	ctx := context.Background()
	m, err := vkrun.Load(ctx, storiesPath())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	s, err := m.NewSession()
	if err != nil {
		fmt.Println(err)
		return
	}
	for tok, err := range s.Generate(ctx, "", vkrun.WithMaxTokens(31)) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Print(tok.Text)
	}
	fmt.Println()
	// Output:
	// Once upon a time, there was a little girl named Lily. She loved to play outside in the park.
}

// Stop strings end generation before they appear.
func ExampleWithStop() {
	ctx := context.Background()
	m, err := vkrun.Load(ctx, storiesPath())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	s, _ := m.NewSession()
	for tok, err := range s.Generate(ctx, "Once upon a time", vkrun.WithStop(".")) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Print(tok.Text)
	}
	fmt.Println()
	// Output:
	// , there was a little girl named Lily
}

// A session remembers: a second Generate continues the same text where the
// first stopped, without prefilling it again.
func ExampleSession_Generate() {
	ctx := context.Background()
	m, err := vkrun.Load(ctx, storiesPath())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	s, _ := m.NewSession()
	print := func(prompt string, n int) {
		for tok, err := range s.Generate(ctx, prompt, vkrun.WithMaxTokens(n)) {
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Print(tok.Text)
		}
		fmt.Println()
	}
	print("Tom had a red ball.", 10)
	print("", 10) // continue
	fmt.Println("positions in the cache:", s.Pos())
	// Output:
	// He liked to play with his toys
	// . He liked to play with his toy
	// positions in the cache: 29
}

// What a model takes on the device, and which kernels ran: the weights, a
// session's KV ring (2·layers·window·kvHeads·headDim halves), the kernel
// layout and the picks.
func ExampleModel_Kernels() {
	ctx := context.Background()
	m, err := vkrun.Load(ctx, storiesPath(), vkrun.WithLayout("gpu"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	s, _ := m.NewSession()
	for _, err := range s.Generate(ctx, "", vkrun.WithMaxTokens(2)) {
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Printf("weights %d bytes, KV cache %d bytes, %s layout\n", m.WeightBytes(), s.KVBytes(), m.Layout())
	for _, k := range m.Kernels() {
		if k.Op == "matmul1" {
			fmt.Println(k.Op, k.Type, k.Table) // k.Kernel: the variant that ran
		}
	}
	// Output:
	// weights 1171200 bytes, KV cache 1310720 bytes, gpu layout
	// matmul1 F32 matmul_f32_1tok
}
