package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/modeldir"
	"github.com/vkrun/vkrun/serve"
)

func init() {
	register("serve", "an OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, /v1/models, /health, /metrics)", cmdServe)
}

// serveFlags are the flags of `vkrun serve`: run's load and sampling flags
// (the sampling ones are the defaults of requests that give none) and the
// server's own.
type serveFlags struct {
	run             runFlags
	host            string
	port            int
	parallel, queue int
	apiKey          string
	template, alias string
}

// loadModel is vkrun.Load; a test replaces it to hold the load.
var loadModel = vkrun.Load

func cmdServe(args []string, stdout, stderr io.Writer) int {
	f, code := parseServe(args, stderr)
	if code >= 0 {
		return code
	}
	// SIGTERM and Ctrl-C stop accepting and drain; a second one kills, as
	// the default handling is back once the first has arrived.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return serveUntil(ctx, f, stderr, nil)
}

// parseServe reads the flags; code is the exit code when they are wrong (or
// -h), else -1.
func parseServe(args []string, stderr io.Writer) (f serveFlags, code int) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.run.register(fs)
	fs.IntVar(&f.run.context, "ctx", 0, "same as -c")
	fs.StringVar(&f.host, "host", "127.0.0.1", "address to listen on (0.0.0.0: every interface)")
	fs.IntVar(&f.port, "port", 8080, "port to listen on (0: a free one)")
	fs.IntVar(&f.parallel, "parallel", 1, "sequences that run at once (slots; each holds a KV cache)")
	fs.IntVar(&f.queue, "queue", 0, "requests that may wait for a slot; more get 429 (default 8 × --parallel)")
	fs.StringVar(&f.apiKey, "api-key", "", "require Authorization: Bearer KEY on every path but /health (default $VKRUN_API_KEY)")
	fs.StringVar(&f.template, "template", "", "chat template of /v1/chat/completions, one of "+strings.Join(vkrun.ChatTemplateNames(), ", ")+" (default: recognised from the file's)")
	fs.StringVar(&f.alias, "alias", "", "the model's id in /v1/models (default: the file name)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, 0
		}
		return f, 2
	}
	fail := func(format string, args ...any) (serveFlags, int) {
		fmt.Fprintf(stderr, "vkrun serve: "+format+"\n", args...)
		return f, 2
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case f.run.prompt != "" || f.run.file != "" || f.run.promptTokens != "":
		return fail("-p, -f and --prompt-tokens are not for serve: prompts come with the requests")
	case f.port < 0 || f.port > 65535:
		return fail("--port %d is not a port (0 to 65535)", f.port)
	case f.parallel < 1:
		return fail("--parallel must be at least 1")
	case f.queue < 0:
		return fail("--queue must not be negative")
	}
	if err := f.run.check(); err != nil {
		return fail("%v", err)
	}
	if f.template != "" {
		if _, err := vkrun.ChatTemplateByName(f.template); err != nil {
			return fail("--template %q is not one of %s", f.template, strings.Join(vkrun.ChatTemplateNames(), ", "))
		}
	}
	if f.apiKey == "" {
		f.apiKey = os.Getenv("VKRUN_API_KEY")
	}
	return f, -1
}

// serveUntil listens first (so that /health says 503 while the model
// loads), loads the model, serves until ctx ends, then stops accepting,
// waits for the requests in flight and exits 0. listening, when not nil,
// is told the address.
func serveUntil(ctx context.Context, f serveFlags, stderr io.Writer, listening func(net.Addr)) int {
	path := f.run.model
	if path == "" {
		path = modeldir.Stories260K()
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(stderr, "vkrun serve: the default model %s is missing: run scripts/setup.sh, or pass -m FILE\n", path)
			return 1
		}
	}
	alias := f.alias
	if alias == "" {
		alias = strings.TrimSuffix(filepath.Base(path), ".gguf")
	}
	defaults := []vkrun.GenerateOption{vkrun.WithMaxTokens(f.run.n), vkrun.WithTemperature(f.run.temp), vkrun.WithTopK(f.run.topK),
		vkrun.WithTopP(f.run.topP), vkrun.WithMinP(f.run.minP)}
	if f.run.seed != 0 {
		defaults = append(defaults, vkrun.WithSeed(f.run.seed))
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(f.host, strconv.Itoa(f.port)))
	if err != nil {
		fmt.Fprintf(stderr, "vkrun serve: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "vkrun serve: listening on http://%s\n", ln.Addr())
	if listening != nil {
		listening(ln.Addr())
	}
	h := serve.New(serve.Options{Model: alias, APIKey: f.apiKey, Defaults: defaults})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	m, err := loadModel(ctx, path, append(f.run.loadOptions(), vkrun.WithProgress(progressPrinter(stderr, false)))...)
	if err != nil {
		srv.Close()
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "vkrun serve: stopped while loading")
			return 0
		}
		fmt.Fprintf(stderr, "vkrun serve: %s\n", oneLine(err))
		return 1
	}
	defer m.Close()
	fmt.Fprintf(stderr, "device: %s (%s, %s), %s\n", m.Device.Name, m.Device.Type, m.Device.DriverName, kernelLayout(m))
	if m.Notice != "" {
		fmt.Fprintln(stderr, m.Notice)
	}
	printNotes(stderr, m)
	printKVCache(stderr, m)
	var tmpl vkrun.ChatTemplate
	if f.template != "" {
		tmpl, _ = vkrun.ChatTemplateByName(f.template) // checked by parseServe
	}
	b, err := m.NewBatch(vkrun.BatchOptions{Slots: f.parallel, MaxQueue: f.queue, Template: tmpl})
	if err != nil {
		srv.Close()
		fmt.Fprintf(stderr, "vkrun serve: %s\n", oneLine(err))
		return 1
	}
	chat := b.Template().Name()
	if chat == "" {
		chat = "none"
		fmt.Fprintln(stderr, "note: the model has no chat template vkrun knows: /v1/chat/completions answers 400; choose one with --template")
	}
	h.Ready(b)
	fmt.Fprintf(stderr, "vkrun serve: ready: model %q, %d slots (a KV cache each), chat template %s\n", alias, f.parallel, chat)

	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintf(stderr, "vkrun serve: %v\n", err)
		b.Close()
		return 1
	}
	fmt.Fprintln(stderr, "vkrun serve: shutting down: no new connections; draining the requests in flight")
	if err := srv.Shutdown(context.Background()); err != nil {
		fmt.Fprintf(stderr, "vkrun serve: %v\n", err)
	}
	b.Close()
	st := b.Stats()
	fmt.Fprintf(stderr, "vkrun serve: stopped after %d sequences (%d cancelled, %d failed), %d prompt tokens, %d generated\n",
		st.Served, st.Cancelled, st.Failed, st.PromptTokens, st.GeneratedTokens)
	return 0
}
