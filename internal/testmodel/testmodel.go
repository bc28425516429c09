// Package testmodel finds the real model files that scripts/setup.sh fetches,
// for tests in any package.
package testmodel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vkrun/vkrun/internal/modeldir"
)

// Dir is where scripts/setup.sh puts models (see modeldir.Dir).
func Dir() string { return modeldir.Dir() }

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
