//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || android || ios)

package loader

import (
	"fmt"
	"os"
)

// mmapSupported says whether mapFile maps (true) or reads into the heap.
const mmapSupported = false

// mapFile reads the whole file into the heap on platforms without
// syscall.Mmap (Windows, Plan 9, wasm). It is correct but costs the file's
// size in memory.
func mapFile(path string) ([]byte, func() error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("loader: %w", err)
	}
	return data, func() error { return nil }, nil
}
