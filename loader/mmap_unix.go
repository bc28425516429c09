//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || android || ios

package loader

import (
	"fmt"
	"math"
	"os"
	"syscall"
)

// mmapSupported says whether mapFile maps (true) or reads into the heap.
const mmapSupported = true

// mapFile maps path read-only and shared. Weights are read straight from the
// page cache when the engine uploads them, so opening a multi-GiB model costs
// no heap and no copy; pages the engine never touches are never read. The
// file must not be truncated while mapped (the process would get SIGBUS).
func mapFile(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("loader: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("loader: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("loader: %s: not a regular file", path)
	}
	size := st.Size()
	if size == 0 {
		// mmap rejects a zero length; the parser reports the empty file.
		return []byte{}, func() error { return nil }, nil
	}
	if size > math.MaxInt {
		return nil, nil, fmt.Errorf("loader: %s: %d bytes do not fit in this platform's address space", path, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("loader: %s: mmap: %w", path, err)
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
