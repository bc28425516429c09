package ref

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vkrun/vkrun/loader"
)

// The tests of CachePositions, StreamingLLM's RoPE positions within the
// cache (issue 14), against its defining properties.

// localOnly is c with every global layer made local, of window c.Window
// (4 for a config without one): a model whose receptive field is bounded
// apart from its sinks.
func localOnly(c loader.Config) loader.Config {
	fill := c.Window
	if fill == 0 {
		fill = 4
	}
	windows := make([]int, c.NumLayers)
	for l := range windows {
		windows[l] = c.Layer(l).Window
		if windows[l] == 0 {
			windows[l] = fill
		}
	}
	return withWindows(c, windows...)
}

// localWindows returns the smallest and largest window of c's local
// layers (0, 0 when it has none).
func localWindows(c loader.Config) (lo, hi int) {
	for l := range c.NumLayers {
		if w := c.Layer(l).Window; w > 0 {
			if lo == 0 || w < lo {
				lo = w
			}
			hi = max(hi, w)
		}
	}
	return lo, hi
}

// withPositions is a copy of m with its sinks and position mode set.
func withPositions(t *testing.T, m *Model, sinks int, p Positions) *Model {
	t.Helper()
	mm, err := New(m.Config, m.Weights)
	require.NoError(t, err)
	mm.Sinks, mm.Positions = sinks, p
	return mm
}

// TestAttendedKeys: every query attends to each key once, in absolute
// order, its own key last, at most Sinks+W keys in a local layer; the
// sinks count min(Sinks, FirstKey) and the rest is the band.
func TestAttendedKeys(t *testing.T) {
	m := newModel(t, llamaSWA, 41) // windows 3, 0, 5
	for _, sinks := range []int{0, 1, 2, 4} {
		m.Sinks = sinks
		for l := range m.Config.NumLayers {
			w := m.Config.Layer(l).Window
			for pos := range 20 {
				keys := m.attendedKeys(nil, l, pos)
				require.Equal(t, pos, keys[len(keys)-1], "layer %d, position %d: the query's own key is last", l, pos)
				require.True(t, slices.IsSorted(keys) && len(slices.Compact(slices.Clone(keys))) == len(keys),
					"layer %d, position %d: keys %v not in order or repeated", l, pos, keys)
				if w == 0 {
					require.Len(t, keys, pos+1, "global layer %d attends to everything", l)
					continue
				}
				require.LessOrEqual(t, len(keys), sinks+w, "layer %d, position %d: %v", l, pos, keys)
				lo := FirstKey(w, pos)
				want := []int{}
				for j := range min(sinks, lo) {
					want = append(want, j)
				}
				for j := lo; j <= pos; j++ {
					want = append(want, j)
				}
				require.Equal(t, want, keys, "layer %d, position %d", l, pos)
				if pos >= sinks+w {
					require.Len(t, keys, sinks+w, "layer %d, position %d: a full cache holds Sinks+W keys", l, pos)
				}
			}
		}
	}
}

// TestCachePositionsBeforeTheWindowFills: while a query's sinks and band
// are contiguous (position ≤ Sinks+W−1 in every local layer) its keys' cache
// indices are their absolute positions, and so are the logits, bit for bit.
// The first position past that differs once there are sinks (the gap
// between sinks and band closes up). Both schedules still agree.
func TestCachePositionsBeforeTheWindowFills(t *testing.T) {
	for _, f := range families {
		for _, sinks := range []int{0, 1, 2, 4} {
			t.Run(fmt.Sprintf("%s/sinks%d", f.name, sinks), func(t *testing.T) {
				base := newModel(t, f.cfg, 43)
				tokens := randomTokens(24, f.cfg.VocabSize, 44)
				abs := forward(t, withPositions(t, base, sinks, AbsolutePositions), tokens)
				cm := withPositions(t, base, sinks, CachePositions)
				requireForwardEqualsStep(t, cm, tokens)
				cache := forward(t, cm, tokens)
				wmin, _ := localWindows(f.cfg)
				if wmin == 0 {
					for p := range tokens {
						require.True(t, sameBits(abs[p], cache[p]), "no local layer: position %d must not change", p)
					}
					return
				}
				last := sinks + wmin - 1 // the last position whose keys are contiguous in every local layer
				for p := 0; p <= last; p++ {
					require.True(t, sameBits(abs[p], cache[p]), "position %d ≤ Sinks+W−1 = %d: cache = absolute", p, last)
				}
				if sinks > 0 {
					require.False(t, sameBits(abs[last+1], cache[last+1]), "position %d: the sinks moved next to the band", last+1)
				}
			})
		}
	}
}

// TestCachePositionsShiftInvariant: with local layers only and the cache
// full, the logits do not depend on where the text sits after the sinks:
// putting d tokens between the sinks and the rest moves every later logit
// by d positions, bit for bit. With absolute positions the sinks' distance
// grows, and the logits change.
func TestCachePositionsShiftInvariant(t *testing.T) {
	for _, f := range families {
		for _, sinks := range []int{0, 1, 2, 4} {
			t.Run(fmt.Sprintf("%s/sinks%d", f.name, sinks), func(t *testing.T) {
				c := localOnly(f.cfg)
				base := newModel(t, c, 45)
				_, wmax := localWindows(c)
				// From here on every position the logits depend on, in
				// every layer, has a full cache of Sinks+W keys, and
				// reads the same tokens in both sequences.
				from := sinks + wmax + (c.NumLayers-1)*(wmax-1)
				a := randomTokens(from+8, c.VocabSize, 46)
				for _, d := range []int{1, 7} {
					b := slices.Concat(a[:sinks], randomTokens(d, c.VocabSize, uint64(47+d)), a[sinks:])
					cm := withPositions(t, base, sinks, CachePositions)
					la, lb := forward(t, cm, a), forward(t, cm, b)
					for p := from; p < len(a); p++ {
						require.True(t, sameBits(la[p], lb[p+d]), "shift %d: position %d ≠ position %d", d, p, p+d)
					}
					if sinks == 0 {
						continue // absolute positions are shift invariant up to rounding only: nothing to assert
					}
					am := withPositions(t, base, sinks, AbsolutePositions)
					la, lb = forward(t, am, a), forward(t, am, b)
					assert.False(t, sameBits(la[len(a)-1], lb[len(a)-1+d]), "shift %d: absolute positions should see the sinks move away", d)
				}
			})
		}
	}
}

// TestCachePositionsAreTheCacheContents: in a one-layer model, a query
// under CachePositions computes exactly what full attention with absolute
// positions computes for the sequence of the tokens it attends to, sinks
// then band: the cache's contents as a text of its own, the query last.
func TestCachePositionsAreTheCacheContents(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			// One layer on the family's first θ, local (W 3) or global.
			theta := f.cfg.Layer(0).RopeTheta
			one := func(w int) loader.Config {
				c := f.cfg
				c.NumLayers, c.Window, c.Layers = 1, w, layers(theta, theta, 1, w)
				return c
			}
			local := newModel(t, one(3), 48)
			local.Sinks, local.Positions = 2, CachePositions
			global, err := New(one(0), local.Weights)
			require.NoError(t, err)
			tokens := randomTokens(16, f.cfg.VocabSize, 49)
			got := forward(t, local, tokens)
			for p := range tokens {
				keys := local.attendedKeys(nil, 0, p)
				text := make([]int, len(keys))
				for i, j := range keys {
					text[i] = tokens[j]
				}
				want := forward(t, global, text)
				require.True(t, sameBits(want[len(text)-1], got[p]), "position %d: keys %v", p, keys)
			}
		})
	}
}

// TestCachePositionsGlobalLayers: a global layer rotates q and k by the
// absolute position in either mode; a local layer under CachePositions
// leaves them un-rotated (as rotating by position 0 does).
func TestCachePositionsGlobalLayers(t *testing.T) {
	abs := newModel(t, gemma3Like, 50) // windows 3, 3, 0, 2
	cache := withPositions(t, abs, 2, CachePositions)
	x := randomWeights(abs.Config, 51).TokenEmbedding[:abs.Config.Dim]
	s := abs.newRunState()
	for _, pos := range []int{0, 3, 11} {
		qa, ka, _ := abs.qkv(s, 2, pos, x)
		qc, kc, _ := cache.qkv(s, 2, pos, x)
		require.True(t, sameBits(qa, qc) && sameBits(ka, kc), "global layer, position %d", pos)
		q0, k0, _ := abs.qkv(s, 0, 0, x)
		qc, kc, _ = cache.qkv(s, 0, pos, x)
		require.True(t, sameBits(q0, qc) && sameBits(k0, kc), "local layer, position %d: stored un-rotated", pos)
	}
}

// TestPositionsErrors: an unknown mode is an error, from both schedules.
func TestPositionsErrors(t *testing.T) {
	m := newModel(t, llamaSWA, 52)
	m.Positions = Positions(7)
	_, err := m.Forward([]int{3, 4})
	require.ErrorContains(t, err, "unknown Positions 7")
	_, err = m.NewState().Step(3, 0)
	require.ErrorContains(t, err, "unknown Positions 7")
	assert.Equal(t, "cache", CachePositions.String())
	assert.Equal(t, "absolute", AbsolutePositions.String())
}
