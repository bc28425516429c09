package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun"
)

// npmDir is where scripts/setup.sh installs npm packages: $VKRUN_NPM_DIR,
// or the user cache dir's vkrun/npm (as setup.sh computes it).
func npmDir() string {
	if d := os.Getenv("VKRUN_NPM_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "vkrun", "npm")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "vkrun", "npm")
	}
	return filepath.Join(home, ".cache", "vkrun", "npm")
}

// The official OpenAI client (npm openai) works against the server: it
// lists the models, completes, streams a completion and a chat, and gets
// typed errors. Its texts are the texts of a lone Session. stories260K has
// no chat template, so the batch renders chats with "raw" (vkrun serve
// --template raw).
func TestOpenAIClient(t *testing.T) {
	node, err := exec.LookPath("node")
	why := ""
	if err != nil {
		why = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(npmDir(), "node_modules", "openai", "package.json")); err != nil {
		why = "npm openai is not installed in " + npmDir()
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("under CI the OpenAI client test must run: %s (scripts/setup.sh installs it)", why)
		}
		t.Skipf("%s: `SKIP_APT=1 scripts/setup.sh` installs it", why)
	}
	m := loadStories(t)
	tmpl := rawTemplate(t)
	s := newServer(t, m, vkrun.BatchOptions{Slots: 2, Template: tmpl}, Options{Model: "stories260K", APIKey: "test-key"})
	want := lone(t, m, "Once upon a time", vkrun.WithMaxTokens(20))
	chatIDs, err := tmpl.Encode(m.Tokenizer(), []vkrun.Message{{Role: vkrun.RoleUser, Content: "Once upon a time"}}, true)
	require.NoError(t, err)
	wantChat := lone(t, m, "", vkrun.WithPromptTokens(chatIDs), vkrun.WithMaxTokens(20))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "openai-client.mjs"))
	cmd.Env = append(os.Environ(), "VKRUN_NPM_DIR="+npmDir(), "OPENAI_BASE_URL="+s.URL+"/v1", "OPENAI_API_KEY=test-key")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "node: %s", stderr.String())

	type text struct {
		Text         string `json:"text"`
		Role         string `json:"role"`
		FinishReason string `json:"finish_reason"`
		Chunks       int    `json:"chunks"`
		Usage        *usage `json:"usage"`
	}
	type apiErr struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
		Name   string `json:"name"`
	}
	var got struct {
		Models     []string `json:"models"`
		Completion text     `json:"completion"`
		Stream     text     `json:"stream"`
		Chat       text     `json:"chat"`
		ChatStream text     `json:"chat_stream"`
		Errors     struct {
			N2     apiErr `json:"n2"`
			BadKey apiErr `json:"bad_key"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &got), "stdout %s", stdout.String())

	assert.Equal(t, []string{"stories260K"}, got.Models)
	assert.Equal(t, want, got.Completion.Text)
	assert.Equal(t, "length", got.Completion.FinishReason)
	assert.Equal(t, 20, got.Completion.Usage.CompletionTokens)
	assert.Equal(t, want, got.Stream.Text)
	assert.Equal(t, "length", got.Stream.FinishReason)
	assert.Greater(t, got.Stream.Chunks, 2, "the completion came in chunks")
	assert.Equal(t, wantChat, got.Chat.Text)
	assert.Equal(t, "assistant", got.Chat.Role)
	assert.Equal(t, wantChat, got.ChatStream.Text)
	assert.Equal(t, "assistant", got.ChatStream.Role)
	assert.Equal(t, "length", got.ChatStream.FinishReason)
	require.NotNil(t, got.ChatStream.Usage, "include_usage")
	assert.Equal(t, 20, got.ChatStream.Usage.CompletionTokens)
	assert.Equal(t, apiErr{Status: 400, Code: "invalid_value", Name: "BadRequestError"}, got.Errors.N2)
	assert.Equal(t, apiErr{Status: 401, Code: "invalid_api_key", Name: "AuthenticationError"}, got.Errors.BadKey)
}
