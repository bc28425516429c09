// Package modeldir says where scripts/setup.sh puts models.
package modeldir

import (
	"os"
	"path/filepath"
)

// Dir is $VKRUN_MODEL_DIR, or $XDG_CACHE_HOME/vkrun/models, or ~/.cache/vkrun/models.
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

// Stories260K is the default model's path.
func Stories260K() string { return filepath.Join(Dir(), "stories260K.gguf") }
