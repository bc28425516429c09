package loader_test

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/vkrun/vkrun/loader"
)

func ExampleGGUFWriter() {
	w := loader.NewGGUFWriter()
	_ = w.SetValue("general.architecture", "llama")
	_ = w.SetValue("llama.block_count", uint32(2))
	// A (3 rows, 32 cols) matrix stored as Q8_0: shape {32, 3}, innermost first.
	x := make([]float32, 3*32)
	for i := range x {
		x[i] = float32(i%32) / 4
	}
	_ = w.AddTensor("blk.0.attn_q.weight", loader.Q8_0, []uint64{32, 3}, x)

	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		fmt.Println(err)
		return
	}
	f, err := loader.ParseGGUF("example.gguf", buf.Bytes())
	if err != nil {
		fmt.Println(err)
		return
	}
	n, _ := f.Uint("llama.block_count")
	t := f.Tensors[0]
	y, _ := t.Float32s()
	fmt.Println(n, t.Name, t.Type, t.Shape, t.Size())
	fmt.Println(x[5], "->", y[5]) // Q8_0 keeps 8 bits per value
	// Output:
	// 2 blk.0.attn_q.weight Q8_0 [32 3] 102
	// 1.25 -> 1.2207031
}

func ExampleOpen() {
	m, err := loader.Open(filepath.Join("testdata", "gguf", "tiny-llama-q8_0.gguf"), loader.WithWindow(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	c := m.Config
	fmt.Printf("%s dim=%d layers=%d heads=%d/%d window=%d vocab=%d\n", c.Arch, c.Dim, c.NumLayers, c.NumHeads, c.NumKVHeads, c.Window, c.VocabSize)
	q := m.Tensor("blk.0.attn_q.weight")
	fmt.Println(q.Type, q.Shape, q.Size())
	// Output:
	// llama dim=32 layers=1 heads=2/1 window=4 vocab=16
	// Q8_0 [32 32] 1088
}
