// Command compile builds every SPIR-V module in shaders.Sources with glslc
// (`make shaders`), rewriting the KHR ones onto VK_KHR_cooperative_matrix
// (spirv.CoopMatKHR): it runs in the shaders directory, rewrites a .spv only
// when its bytes change, and removes .spv files no kernel uses.
//
//	go run ./shaders/internal/compile -glslc glslc -flags "--target-env=vulkan1.1 -Werror -O"
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vkrun/vkrun/shaders"
	"github.com/vkrun/vkrun/shaders/internal/spirv"
)

func main() {
	glslc := flag.String("glslc", "glslc", "the glslc binary")
	flags := flag.String("flags", "", "glslc flags")
	dir := flag.String("dir", "shaders", "the shaders directory")
	flag.Parse()
	if err := run(*glslc, strings.Fields(*flags), *dir); err != nil {
		fmt.Fprintln(os.Stderr, "compile:", err)
		os.Exit(1)
	}
}

func run(glslc string, flags []string, dir string) error {
	keep := map[string]bool{}
	for _, s := range shaders.Sources() {
		name := s.Name + ".spv"
		keep[name] = true
		out := filepath.Join("spv", name)
		tmp := out + ".tmp"
		cmd := exec.Command(glslc, s.GlslcArgs(flags, tmp)...)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", s.Name, err, msg)
		}
		got, err := os.ReadFile(filepath.Join(dir, tmp))
		if err != nil {
			return err
		}
		if s.KHR {
			if got, err = spirv.CoopMatKHR(got); err != nil {
				return fmt.Errorf("%s: %v", s.Name, err)
			}
			if err := os.WriteFile(filepath.Join(dir, tmp), got, 0o644); err != nil {
				return err
			}
		}
		old, _ := os.ReadFile(filepath.Join(dir, out))
		if bytes.Equal(old, got) {
			os.Remove(filepath.Join(dir, tmp))
			continue
		}
		fmt.Println("compile: wrote", out)
		if err := os.Rename(filepath.Join(dir, tmp), filepath.Join(dir, out)); err != nil {
			return err
		}
	}
	all, err := filepath.Glob(filepath.Join(dir, "spv", "*.spv"))
	if err != nil {
		return err
	}
	for _, f := range all {
		if !keep[filepath.Base(f)] {
			fmt.Println("compile: removed", f)
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}
