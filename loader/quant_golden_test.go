package loader_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/vkrun/vkrun/loader"
)

// Golden data written by llama.cpp itself (scripts/gen-quant-golden.sh;
// loader/testdata/quant/SOURCES.md describes the files).

// qgReadGz decodes testdata/quant/<name>, a gzip'd JSON file, into v.
func qgReadGz(t *testing.T, name string, v any) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "quant", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// qgType is the DType that ggml calls name ("Q4_K").
func qgType(t *testing.T, name string) loader.DType {
	t.Helper()
	for id := loader.DType(0); id < 64; id++ {
		if id.Known() && id.String() == name {
			return id
		}
	}
	t.Fatalf("no DType is called %q", name)
	return 0
}

type qgBlocks struct {
	LlamaCpp map[string]string `json:"llama_cpp"`
	Variant  string            `json:"variant"`
	Tensor   string            `json:"tensor"`
	Rows     int               `json:"rows"`
	Cols     int               `json:"cols"`
	F32      []byte            `json:"f32"`
	Blocks   []struct {
		Type         string  `json:"type"`
		FType        string  `json:"ftype"`
		Data         []byte  `json:"data"`
		GGMLF32      []byte  `json:"ggml_f32"`
		GGMLNMSE     float64 `json:"ggml_nmse"`
		RefIdentical bool    `json:"ref_identical"`
	} `json:"blocks"`
}

func qgFloats(t *testing.T, b []byte, n int) []float32 {
	t.Helper()
	if len(b) != 4*n {
		t.Fatalf("%d bytes of float32, want %d", len(b), 4*n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// qgNMSE is the per-row NMSE Σ(y−x)²/Σx², averaged over the rows of x that
// are not all zero, the measure the generator recorded as ggml_nmse. A row
// of x that is all zero must come back all zero: it counts as +Inf if not.
func qgNMSE(x, y []float32, cols int) float64 {
	var sum float64
	rows := 0
	for _, e := range qgRowNMSE(x, y, cols) {
		switch {
		case math.IsNaN(e): // an all-zero row, right
		case math.IsInf(e, 1):
			return e
		default:
			sum += e
			rows++
		}
	}
	return sum / float64(rows)
}

// qgRowNMSE is each row's NMSE: NaN for an all-zero row of x that y
// matches, +Inf for one that y does not.
func qgRowNMSE(x, y []float32, cols int) []float64 {
	out := make([]float64, len(x)/cols)
	for r := range out {
		var num, den float64
		for i := r * cols; i < (r+1)*cols; i++ {
			d := float64(y[i]) - float64(x[i])
			num += d * d
			den += float64(x[i]) * float64(x[i])
		}
		switch {
		case den > 0:
			out[r] = num / den
		case num > 0:
			out[r] = math.Inf(1)
		default:
			out[r] = math.NaN()
		}
	}
	return out
}

// qgBlockCases gives, per block type llama.cpp wrote: dequant, the NMSE
// that Dequantize of llama.cpp's bytes must stay under (about twice what
// llama.cpp measured on these rows, shown in the comment; a wrong layout
// gives ~1); quant, how much worse than llama.cpp's own NMSE Quantize's
// may be; exact, whether Quantize must give llama.cpp's bytes bit for bit
// (the types whose ggml reference quantiser is a simple deterministic
// formula, F16, BF16 and the 32-element legacy types; their bytes in
// llama.cpp's files are that quantiser's output, as TestQuantGoldenData
// checks). The K and IQ quantisers search for scales, and ours need not
// make the same choices as ggml's.
var qgBlockCases = map[string]struct {
	dequant float64
	quant   float64
	exact   bool
}{
	"F16":    {9e-8, 1, true},       // llama.cpp 4.25e-8
	"BF16":   {5.5e-6, 1, true},     // 2.67e-6
	"Q8_0":   {6e-5, 1, true},       // 2.93e-5
	"Q4_0":   {1.4e-2, 1, true},     // 6.86e-3
	"Q4_1":   {1.05e-2, 1, true},    // 5.16e-3
	"Q5_0":   {3.7e-3, 1, true},     // 1.85e-3
	"Q5_1":   {2.5e-3, 1, true},     // 1.22e-3
	"Q2_K":   {1.5e-1, 1.5, false},  // 7.41e-2
	"Q3_K":   {4.4e-2, 1.5, false},  // 2.19e-2
	"Q4_K":   {9e-3, 1.5, false},    // 4.38e-3
	"Q5_K":   {2.2e-3, 1.5, false},  // 1.09e-3
	"Q6_K":   {6e-4, 1.5, false},    // 3.00e-4
	"IQ4_NL": {1.1e-2, 1.5, false},  // 5.61e-3
	"IQ4_XS": {1.15e-2, 1.5, false}, // 5.75e-3
}

func qgLoadBlocks(t *testing.T) (*qgBlocks, []float32) {
	t.Helper()
	var g qgBlocks
	qgReadGz(t, "blocks.json.gz", &g)
	if g.Rows <= 0 || g.Cols <= 0 {
		t.Fatalf("blocks.json.gz: %d×%d", g.Rows, g.Cols)
	}
	return &g, qgFloats(t, g.F32, g.Rows*g.Cols)
}

// TestQuantGoldenData checks the golden file itself: every block type has
// a case, and llama.cpp's own error is well under each threshold.
func TestQuantGoldenData(t *testing.T) {
	g, x := qgLoadBlocks(t)
	t.Logf("llama.cpp %v; %s of %s, %d×%d", g.LlamaCpp, g.Tensor, g.Variant, g.Rows, g.Cols)
	seen := map[string]bool{}
	for _, b := range g.Blocks {
		seen[b.Type] = true
		c, ok := qgBlockCases[b.Type]
		if !ok {
			t.Errorf("%s: no thresholds for this block type", b.Type)
			continue
		}
		ref := qgNMSE(x, qgFloats(t, b.GGMLF32, len(x)), g.Cols)
		if math.Abs(ref-b.GGMLNMSE) > 1e-6*b.GGMLNMSE {
			t.Errorf("%s: ggml_nmse %g, recomputed %g", b.Type, b.GGMLNMSE, ref)
		}
		if ref > c.dequant/1.5 {
			t.Errorf("%s: llama.cpp's NMSE %.3g is not well under the threshold %.3g", b.Type, ref, c.dequant)
		}
		if c.exact && !b.RefIdentical {
			t.Errorf("%s: llama.cpp's bytes are not ggml's reference quantiser's, so Quantize cannot be asked to match them", b.Type)
		}
	}
	for typ := range qgBlockCases {
		if !seen[typ] {
			t.Errorf("%s: no golden block", typ)
		}
	}
}

// TestQuantGoldenDequantize decodes the bytes llama.cpp wrote: the result
// must be close to the f32 source, and exactly what ggml's own
// dequantize_row_* made of the same bytes.
func TestQuantGoldenDequantize(t *testing.T) {
	g, x := qgLoadBlocks(t)
	for _, b := range g.Blocks {
		t.Run(b.Type, func(t *testing.T) {
			c := qgBlockCases[b.Type]
			typ := qgType(t, b.Type)
			y := make([]float32, len(x))
			if err := loader.Dequantize(typ, b.Data, y); err != nil {
				t.Fatal(err)
			}
			got := qgNMSE(x, y, g.Cols)
			if got > c.dequant {
				t.Errorf("NMSE %.3g of llama.cpp's %s bytes (from its %s file), want under %.3g (llama.cpp: %.3g)", got, b.Type, b.FType, c.dequant, b.GGMLNMSE)
			}
			want := qgFloats(t, b.GGMLF32, len(x))
			bad := 0
			for i := range want {
				if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
					if bad < 4 {
						t.Errorf("row %d col %d: %g, ggml dequantizes to %g", i/g.Cols, i%g.Cols, y[i], want[i])
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d values differ from ggml's dequantization", bad, len(want))
			}
		})
	}
}

// TestQuantGoldenQuantize quantises the f32 source: the error must be no
// worse than qgBlockCases' factor times llama.cpp's, and for the exact types
// the bytes must be llama.cpp's.
func TestQuantGoldenQuantize(t *testing.T) {
	g, x := qgLoadBlocks(t)
	for _, b := range g.Blocks {
		t.Run(b.Type, func(t *testing.T) {
			c := qgBlockCases[b.Type]
			typ := qgType(t, b.Type)
			q, err := loader.Quantize(typ, x)
			if err != nil {
				t.Fatal(err)
			}
			identical := bytes.Equal(q, b.Data)
			switch {
			case c.exact && !identical:
				first := 0
				for first < min(len(q), len(b.Data)) && q[first] == b.Data[first] {
					first++
				}
				blk := typ.BlockBytes()
				t.Errorf("Quantize differs from llama.cpp's bytes, first at byte %d (block %d)", first, uint64(first)/blk)
			case !c.exact:
				t.Logf("byte-identical to llama.cpp's %s: %v (ggml's reference quantiser gives llama.cpp's bytes: %v)", b.Type, identical, b.RefIdentical)
			}
			y := make([]float32, len(x))
			if err := loader.Dequantize(typ, q, y); err != nil {
				t.Fatal(err)
			}
			got, ref := qgNMSE(x, y, g.Cols), b.GGMLNMSE
			if got <= c.quant*ref*(1+1e-9) {
				t.Logf("NMSE %.4g, llama.cpp %.4g", got, ref)
				return
			}
			t.Errorf("Quantize's NMSE %.4g is worse than %.2g× llama.cpp's %.4g", got, c.quant, ref)
			ours, theirs := qgRowNMSE(x, y, g.Cols), qgRowNMSE(x, qgFloats(t, b.GGMLF32, len(x)), g.Cols)
			for r := range ours {
				if ours[r] > 2*theirs[r] {
					t.Errorf("row %d (starts %g, %g, %g): NMSE %.3g, llama.cpp %.3g", r, x[r*g.Cols], x[r*g.Cols+1], x[r*g.Cols+2], ours[r], theirs[r])
				}
			}
		})
	}
}
