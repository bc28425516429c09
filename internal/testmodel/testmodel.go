// Package testmodel finds the real model files that scripts/setup.sh fetches,
// for tests in any package.
package testmodel

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir is where scripts/setup.sh puts models: $VKRUN_MODEL_DIR, or
// $XDG_CACHE_HOME/vkrun/models, or ~/.cache/vkrun/models.
func Dir() string {
	if d := os.Getenv("VKRUN_MODEL_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "vkrun", "models")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "vkrun", "models")
	}
	return filepath.Join(home, ".cache", "vkrun", "models")
}

// Stories260K returns the path of stories260K.gguf. When the file is missing it
// skips the test, except under CI (CI set), where setup must have fetched it and
// a missing file fails the test.
func Stories260K(t testing.TB) string {
	t.Helper()
	p := filepath.Join(Dir(), "stories260K.gguf")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("stories260K.gguf missing under CI (setup should have fetched it): %v", err)
		}
		t.Skipf("stories260K.gguf not found at %s: run scripts/setup.sh to fetch it", p)
	}
	return p
}
