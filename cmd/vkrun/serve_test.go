package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/internal/testmodel"
	"github.com/vkrun/vkrun/vk"
)

func TestServeFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-p", "Once"}, "-p, -f and --prompt-tokens are not for serve"},
		{[]string{"--port", "70000"}, "--port 70000 is not a port"},
		{[]string{"--port", "-1"}, "--port -1 is not a port"},
		{[]string{"--parallel", "0"}, "--parallel must be at least 1"},
		{[]string{"--queue", "-1"}, "--queue must not be negative"},
		{[]string{"--template", "jinja"}, `--template "jinja" is not one of mistral,`},
		{[]string{"--kv", "f8"}, `--kv must be f16 or f32, not "f8"`},
		{[]string{"--ctx", "-5"}, "must not be negative"},
		{[]string{"--keep", "-1"}, "--chunk, -c and --keep must not be negative"},
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, 2, run(append([]string{"serve"}, tc.args...), &stdout, &stderr))
			assert.Contains(t, stderr.String(), tc.want)
			assert.Empty(t, stdout.String())
		})
	}
}

func TestServeFlags(t *testing.T) {
	t.Setenv("VKRUN_API_KEY", "from-env")
	f, code := parseServe([]string{"-m", "x.gguf", "--ctx", "64", "--parallel", "3", "--port", "0", "--temp", "0"}, io.Discard)
	require.Equal(t, -1, code)
	assert.Equal(t, "from-env", f.apiKey, "VKRUN_API_KEY when --api-key is not given")
	assert.Equal(t, 64, f.run.context, "--ctx is -c")
	assert.Equal(t, 3, f.parallel)
	assert.Equal(t, "127.0.0.1", f.host, "loopback by default")
	f, _ = parseServe([]string{"--api-key", "flag"}, io.Discard)
	assert.Equal(t, "flag", f.apiKey, "the flag wins")
	f, _ = parseServe(nil, io.Discard)
	assert.Equal(t, 8080, f.port)
}

// needModel skips without Vulkan or stories260K (fails under CI).
func needModel(t *testing.T) string {
	t.Helper()
	path := testmodel.Stories260K(t)
	if err := vk.Load(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return path
}

// readUntilDone reads an SSE body to its end and says whether [DONE] was
// its last event.
func readUntilDone(t *testing.T, r *bufio.Reader) bool {
	t.Helper()
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	return strings.HasSuffix(string(rest), "data: [DONE]\n\n")
}

// startStream posts a streamed completion and returns its body once the
// first event has come.
func startStream(t *testing.T, url, key string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/completions", strings.NewReader(`{"prompt":"Once upon a time","max_tokens":80,"temperature":0,"stream":true}`))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "data: {"), line)
	return resp, r
}

func health(url string) int {
	resp, err := http.Get(url + "/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitHealth(t *testing.T, url string, status int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); health(url) != status; {
		if time.Now().After(deadline) {
			t.Fatalf("/health never said %d (last %d)", status, health(url))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The server listens before the model loads (/health 503), is ready after
// (200), and when its context ends (SIGTERM) it stops accepting, lets the
// stream in flight finish, and returns 0.
func TestServeLoadsServesAndDrains(t *testing.T) {
	path := needModel(t)
	release := make(chan struct{})
	loadModel = func(ctx context.Context, path string, opts ...vkrun.Option) (*vkrun.Model, error) {
		<-release
		return vkrun.Load(ctx, path, opts...)
	}
	defer func() { loadModel = vkrun.Load }()
	url, cancel, exit, stderr := startServe(t, "-m", path, "--port", "0", "--template", "raw", "--parallel", "2", "--api-key", "k")

	assert.Equal(t, http.StatusServiceUnavailable, health(url), "loading")
	close(release)
	waitHealth(t, url, http.StatusOK)
	resp, err := http.Get(url + "/v1/models")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "--api-key")

	resp, r := startStream(t, url, "k")
	defer resp.Body.Close()
	cancel() // as SIGTERM does
	assert.True(t, readUntilDone(t, r), "the stream in flight ran to its end")
	assert.Equal(t, 0, <-exit)
	assert.Zero(t, health(url), "no longer listening")
	assert.Contains(t, stderr.String(), "ready: model \"stories260K\", 2 slots")
	assert.Contains(t, stderr.String(), "draining")
	assert.Contains(t, stderr.String(), "stopped after 1 sequences (0 cancelled, 0 failed)")
}

// --keep reaches the model: with --window 8 the layers are rings, and two
// sink rows each make the served model's KV cache the size of a model loaded
// with WithKeep(2); a completion longer than the window gives a lone
// session's text on that model.
func TestServeKeep(t *testing.T) {
	path := needModel(t)
	loaded := make(chan *vkrun.Model, 1)
	loadModel = func(ctx context.Context, path string, opts ...vkrun.Option) (*vkrun.Model, error) {
		m, err := vkrun.Load(ctx, path, opts...)
		if err == nil {
			loaded <- m
		}
		return m, err
	}
	defer func() { loadModel = vkrun.Load }()
	url, cancel, exit, stderr := startServe(t, "-m", path, "--port", "0", "--window", "8", "--keep", "2", "--temp", "0")
	m := <-loaded
	waitHealth(t, url, http.StatusOK)

	kv := func(opts ...vkrun.Option) uint64 {
		ref, err := vkrun.Load(context.Background(), path, opts...)
		require.NoError(t, err)
		defer ref.Close()
		return ref.KVBytes()
	}
	assert.Equal(t, kv(vkrun.WithWindow(8), vkrun.WithKeep(2)), m.KVBytes(), "the served model keeps 2 sinks")
	assert.NotEqual(t, kv(vkrun.WithWindow(8)), m.KVBytes(), "sinks take rows of their own")

	s, err := m.NewSession()
	require.NoError(t, err)
	var want strings.Builder
	for tok, err := range s.Generate(context.Background(), "Once upon a time", vkrun.WithMaxTokens(30)) {
		require.NoError(t, err)
		want.WriteString(tok.Text)
	}
	s.Close()
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"Once upon a time","max_tokens":30}`))
	require.NoError(t, err)
	var c struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	resp.Body.Close()
	require.Len(t, c.Choices, 1)
	assert.Equal(t, want.String(), c.Choices[0].Text)
	cancel()
	assert.Equal(t, 0, <-exit, "stderr: %s", stderr.String())
}

// startServe parses args as vkrun serve does and serves them until cancel,
// returning the server's URL once it listens, the exit code's channel and
// its stderr. The test's end cancels it too.
func startServe(t *testing.T, args ...string) (url string, cancel context.CancelFunc, exit chan int, stderr *syncBuffer) {
	f, code := parseServe(args, io.Discard)
	require.Equal(t, -1, code)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addrs := make(chan net.Addr, 1)
	exit = make(chan int, 1)
	stderr = &syncBuffer{}
	go func() { exit <- serveUntil(ctx, f, stderr, func(a net.Addr) { addrs <- a }) }()
	return "http://" + (<-addrs).String(), cancel, exit, stderr
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader on two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The real binary, built with go build: SIGTERM while a stream is in flight
// lets it finish, then the process exits 0.
func TestServeSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	path := needModel(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "vkrun")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "-m", path, "--port", "0")
	cmd.Env = append(os.Environ(), "VKRUN_API_KEY=") // no key from the environment
	stderrPipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderrPipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url string
	var log []string
	for url == "" {
		line, ok := <-lines
		require.True(t, ok, "the server ended before listening: %s", strings.Join(log, "\n"))
		log = append(log, line)
		if a, found := strings.CutPrefix(line, "vkrun serve: listening on "); found {
			url = a
		}
	}
	waitHealth(t, url, http.StatusOK)
	resp, r := startStream(t, url, "")
	defer resp.Body.Close()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.True(t, readUntilDone(t, r), "the stream in flight ran to its end")
	for line := range lines {
		log = append(log, line)
	}
	require.NoError(t, cmd.Wait(), "exit status; stderr:\n%s", strings.Join(log, "\n"))
	assert.Contains(t, strings.Join(log, "\n"), "draining the requests in flight")
}
