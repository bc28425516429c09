// Command vkrun runs Mistral-style language models on any Vulkan GPU.
//
//	vkrun                       the demo: stream a story from stories260K, greedily, and report speeds
//	vkrun run -m FILE -p TEXT   generate text (see vkrun run -h)
//	vkrun bench --synthetic tiny:q4_k_m
//	                            measure prefill and decode speed on a file or a synthetic model
//	vkrun devices [--json]      list Vulkan devices and mark the one vkrun would use
//	vkrun inspect [--json] FILE print a model file's architecture, config, tokenizer, tensors and their kernels
//	vkrun tokenize -m FILE -p TEXT print token ids and pieces (see vkrun tokenize -h)
//	vkrun serve -m FILE [--parallel N] [--port 8080]
//	                            an OpenAI-compatible HTTP server with /health and /metrics (see vkrun serve -h)
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand. run gets the arguments after the subcommand name
// and returns the process exit code. It prints errors itself, as one line.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

// register adds a subcommand; each subcommand's file calls it from init.
func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	commands[name] = command{summary: summary, run: run}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return demo(stdout, stderr)
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vkrun: unknown command %q (run 'vkrun help')\n", args[0])
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vkrun <command> [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

// demo is vkrun's main job: stories260K (fetched by scripts/setup.sh), greedy
// from the start of a story for 200 positions, the text streamed as it is
// made, with the device and speeds on stderr.
func demo(stdout, stderr io.Writer) int {
	f := runFlags{n: 200, temp: 0, window: -1, kv: "f16", device: os.Getenv("VKRUN_DEVICE")}
	return generate(f, "", nil, stdout, stderr, "vkrun")
}
