package vkrun_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/internal/vktest"
	"github.com/vkrun/vkrun/vk"
)

func golden(t *testing.T) string {
	b, err := os.ReadFile("tests/testdata/stories260K-greedy-200.txt")
	require.NoError(t, err)
	return string(b)
}

// loadStories loads stories260K (skipping without a Vulkan loader) and
// closes it when the test ends.
func loadStories(t *testing.T, opts ...vkrun.Option) *vkrun.Model {
	t.Helper()
	m, err := vkrun.Load(context.Background(), testmodel.Stories260K(t), opts...)
	if errors.Is(err, vk.ErrNoLoader) {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func text(t *testing.T, s *vkrun.Session, prompt string, opts ...vkrun.GenerateOption) string {
	var b strings.Builder
	for tok, err := range s.Generate(context.Background(), prompt, opts...) {
		require.NoError(t, err)
		b.WriteString(tok.Text)
	}
	return b.String()
}

// An application that already drives Vulkan hands vkrun its device as raw
// handles; vkrun runs on it and leaves it alive after Close.
func TestRunsOnTheCallersDevice(t *testing.T) {
	path := testmodel.Stories260K(t)
	in := vktest.Instance(t)
	owner := vktest.DeviceOn(t, in, vk.DeviceOptions{})
	phys, dev, queue := owner.Handles()

	m, err := vkrun.Load(context.Background(), path, vkrun.WithVulkan(vkrun.ExternalVulkan{
		Instance: in.Handle(), APIVersion: uint32(in.APIVersion()),
		PhysicalDevice: phys, Device: dev, QueueFamily: owner.QueueFamily(), Queue: queue,
	}))
	require.NoError(t, err)
	assert.Equal(t, owner.Info.Name, m.Device.Name)
	s, err := m.NewSession()
	require.NoError(t, err)
	got := text(t, s, "", vkrun.WithMaxTokens(40))
	assert.True(t, strings.HasPrefix(golden(t), got), "got %q", got)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")

	// The caller's device still works: a buffer round trip through a copy.
	b, err := owner.NewBuffer("after vkrun", 64, vk.DeviceMemory)
	require.NoError(t, err)
	defer b.Close()
	src := []byte(strings.Repeat("vkrun!!!", 8))
	require.NoError(t, owner.Upload(b, 0, src))
	out := make([]byte, 64)
	require.NoError(t, owner.Download(b, 0, out))
	assert.Equal(t, src, out)
	require.NoError(t, owner.WaitIdle())
}

// Sessions of one model run from several goroutines at once, each with its
// own cache, and each reproduces the reference text.
func TestConcurrentSessions(t *testing.T) {
	path := testmodel.Stories260K(t)
	m, err := vkrun.Load(context.Background(), path, vkrun.WithValidation())
	if errors.Is(err, vk.ErrNoLoader) {
		t.Skip(err)
	}
	require.NoError(t, err)
	defer m.Close()
	want := golden(t)
	var wg sync.WaitGroup
	results := make([]string, 3)
	for i := range results {
		s, err := m.NewSession()
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b strings.Builder
			for tok, err := range s.Generate(context.Background(), "", vkrun.WithMaxTokens(60)) {
				if err != nil {
					results[i] = "error: " + err.Error()
					return
				}
				b.WriteString(tok.Text)
			}
			results[i] = b.String()
		}()
	}
	wg.Wait()
	for i, r := range results {
		assert.True(t, len(r) > 100 && strings.HasPrefix(want, r), "session %d: %q", i, r)
	}
	assert.Empty(t, m.ValidationMessages())
}

// Cancelling ctx stops within one step; the session stays usable and continues.
func TestCancelAndContinue(t *testing.T) {
	m := loadStories(t)
	s, err := m.NewSession()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var first strings.Builder
	n := 0
	var gotErr error
	start := time.Now()
	for tok, err := range s.Generate(ctx, "", vkrun.WithMaxTokens(150)) {
		if err != nil {
			gotErr = err
			break
		}
		first.WriteString(tok.Text)
		if n++; n == 10 {
			cancel()
		}
	}
	assert.ErrorIs(t, gotErr, context.Canceled)
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Equal(t, 10, n, "no token after the cancel")
	// Continue: the whole text is the reference text.
	rest := text(t, s, "", vkrun.WithMaxTokens(30))
	assert.True(t, strings.HasPrefix(golden(t), first.String()+rest), "%q + %q", first.String(), rest)
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	_, err := vkrun.Load(ctx, "no/such/model.gguf")
	assert.ErrorContains(t, err, "no/such/model.gguf")
	_, err = vkrun.Load(ctx, "go.mod")
	assert.Error(t, err)
	_, err = vkrun.Load(ctx, "x.gguf", vkrun.WithKV("f8"))
	assert.ErrorContains(t, err, "f16 or f32")
	_, err = vkrun.Load(ctx, "x.gguf", vkrun.WithLayout("fast"))
	assert.ErrorContains(t, err, `kernel layout must be auto, gpu or cpu, not "fast"`)
	_, err = vkrun.Load(ctx, "x.gguf", vkrun.WithIntegerDot("yes"))
	assert.ErrorContains(t, err, `integer dot must be auto, on, all or off, not "yes"`)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = vkrun.Load(cctx, "x.gguf")
	assert.ErrorIs(t, err, context.Canceled)
}

// A model reports its weights' device memory, its kernel layout (forced
// with WithLayout) and the kernels its sessions picked; a session its KV
// cache's memory.
func TestMemoryLayoutAndKernels(t *testing.T) {
	path := testmodel.Stories260K(t)
	for _, layout := range []string{"auto", "gpu", "cpu"} {
		t.Run(layout, func(t *testing.T) {
			m, err := vkrun.Load(context.Background(), path, vkrun.WithLayout(layout), vkrun.WithKV("f32"))
			if errors.Is(err, vk.ErrNoLoader) {
				t.Skip(err)
			}
			if layout == "cpu" && err != nil && strings.Contains(err.Error(), "subgroup arithmetic") {
				t.Skip(err)
			}
			require.NoError(t, err)
			defer m.Close()
			if layout != "auto" {
				assert.Equal(t, layout, m.Layout())
			} else {
				assert.Contains(t, []string{"gpu", "cpu"}, m.Layout())
			}
			// stories260K is all F32: its matrices and norm vectors, as stored.
			c := m.Config
			kvDim, q := c.NumKVHeads*c.HeadDim, c.NumHeads*c.HeadDim
			perLayer := q*c.Dim + 2*kvDim*c.Dim + c.Dim*q + 3*c.FFNDim*c.Dim + 2*c.Dim
			assert.Equal(t, uint64(4*(2*c.VocabSize*c.Dim+c.Dim+c.NumLayers*perLayer)), m.WeightBytes())
			assert.Empty(t, m.Kernels(), "no kernel is picked before a session runs")

			s, err := m.NewSession()
			require.NoError(t, err)
			assert.Equal(t, uint64(2*c.NumLayers*m.Context()*kvDim*4), s.KVBytes(), "full attention: a linear cache of the context in every layer")
			assert.Equal(t, m.KVBytes(), s.KVBytes())
			text(t, s, "Once", vkrun.WithMaxTokens(2))
			ops := map[string]bool{}
			for _, k := range m.Kernels() {
				ops[k.Op+" "+k.Type] = true
				assert.NotEmpty(t, k.Kernel)
				if k.Reason == "" && k.Op != "attention" {
					assert.Equal(t, k.Table, k.Kernel, "a variant says why")
				}
			}
			for _, want := range []string{"embed F32", "matmul F32", "matmul1 F32", "attention f32"} {
				assert.True(t, ops[want], "no %s pick in %v", want, m.Kernels())
			}
		})
	}
}

// Inside a Generate range loop, Stats, Profile and Pos work; Reset, Prefill,
// DecodeStats and a nested Generate say ErrBusy; Close ends the loop, and
// the closed session says ErrSessionClosed. None of them deadlocks.
func TestSessionCallsInsideGenerate(t *testing.T) {
	m := loadStories(t)
	s, err := m.NewSession()
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		for tok, err := range s.Generate(context.Background(), "", vkrun.WithMaxTokens(50)) {
			require.NoError(t, err)
			n++
			assert.Equal(t, n, s.Stats().Generated, "Stats inside the loop")
			assert.Positive(t, s.Pos())
			_ = s.Profile()
			assert.ErrorIs(t, s.Reset(), vkrun.ErrBusy)
			assert.ErrorIs(t, s.Prefill(context.Background(), "x"), vkrun.ErrBusy)
			_, err := s.DecodeStats()
			assert.ErrorIs(t, err, vkrun.ErrBusy)
			for _, err := range s.Generate(context.Background(), "x") {
				assert.ErrorIs(t, err, vkrun.ErrBusy)
			}
			if n == 5 {
				require.NoError(t, s.Close())
			}
			assert.LessOrEqual(t, n, 5, "no token after Close: %q", tok.Text)
		}
		assert.Equal(t, 5, n)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("a call inside the Generate loop deadlocked")
	}
	for _, err := range s.Generate(context.Background(), "") {
		assert.ErrorIs(t, err, vkrun.ErrSessionClosed)
	}
	assert.ErrorIs(t, s.Reset(), vkrun.ErrSessionClosed)
	require.NoError(t, m.Close())
	_, err = m.NewSession()
	assert.ErrorIs(t, err, vkrun.ErrModelClosed)
}

// Prefill feeds a prompt without sampling: Prefill then Generate gives the
// text that Generate of the whole prompt gives.
func TestPrefillThenGenerate(t *testing.T) {
	m := loadStories(t)
	a, err := m.NewSession()
	require.NoError(t, err)
	want := text(t, a, "Once upon a time", vkrun.WithMaxTokens(20))
	b, err := m.NewSession()
	require.NoError(t, err)
	require.NoError(t, b.Prefill(context.Background(), "Once upon a time"))
	st := b.Stats()
	assert.Zero(t, st.Generated, "Prefill samples nothing")
	assert.Equal(t, 1+len(m.Tokenizer().EncodeWith("Once upon a time", false)), st.PromptTokens, "BOS and the prompt")
	// The next Generate samples from the prompt's logits.
	assert.Equal(t, want, text(t, b, "", vkrun.WithMaxTokens(20)))
}

// Load honours ctx: cancelled between tensors, it stops, returns the
// context's error and frees what it made.
func TestLoadCancelled(t *testing.T) {
	path := testmodel.Stories260K(t)
	ctx, cancel := context.WithCancel(context.Background())
	var last, total uint64
	calls := 0
	_, err := vkrun.Load(ctx, path, vkrun.WithProgress(func(done, all uint64) {
		calls++
		last, total = done, all
		if calls == 3 {
			cancel()
		}
	}))
	if errors.Is(err, vk.ErrNoLoader) {
		t.Skip(err)
	}
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 3, calls, "no tensor is uploaded after the cancel")
	assert.Less(t, last, total)
}
