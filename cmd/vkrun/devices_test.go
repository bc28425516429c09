package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun/vk"
)

func needVulkan(t *testing.T) {
	t.Helper()
	if err := vk.Load(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Vulkan must be installed under CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

func TestDevicesTableAndJSONAgree(t *testing.T) {
	needVulkan(t)
	t.Setenv(vk.DeviceEnv, "")
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"devices", "--json"}, &out, &errb), errb.String())
	var got struct {
		Devices []struct {
			Index  int    `json:"index"`
			Chosen bool   `json:"chosen"`
			Name   string `json:"name"`
			Type   string `json:"type"`
			Heaps  []struct {
				Size uint64 `json:"size"`
			} `json:"heaps"`
			MaxStorageBufferRange uint64 `json:"max_storage_buffer_range"`
		} `json:"devices"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	require.NotEmpty(t, got.Devices)
	chosen := -1
	for _, d := range got.Devices {
		assert.NotEmpty(t, d.Heaps)
		assert.NotZero(t, d.MaxStorageBufferRange)
		if d.Chosen {
			require.Equal(t, -1, chosen, "exactly one device is chosen")
			chosen = d.Index
		}
	}
	require.GreaterOrEqual(t, chosen, 0)

	out.Reset()
	errb.Reset()
	require.Equal(t, 0, run([]string{"devices"}, &out, &errb), errb.String())
	table := out.String()
	name := got.Devices[chosen].Name
	assert.Contains(t, table, "* "+strconv.Itoa(chosen)+"  "+name, "the chosen device is starred in the table")
	assert.Contains(t, table, "vkrun would use device "+strconv.Itoa(chosen))
	if got.Devices[chosen].Type == "cpu" {
		assert.Contains(t, errb.String(), "CPU device", "a CPU device is never chosen silently")
	}
}

func TestDevicesErrors(t *testing.T) {
	needVulkan(t)
	var out, errb bytes.Buffer
	assert.Equal(t, 1, run([]string{"devices", "--device", "no-such-gpu-xyz"}, &out, &errb))
	assert.Contains(t, errb.String(), `no device name contains "no-such-gpu-xyz"`)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(errb.String()), "\n")+1, "one line: %q", errb.String())
	errb.Reset()
	assert.Equal(t, 2, run([]string{"devices", "--bogus"}, &out, &errb))
	errb.Reset()
	assert.Equal(t, 2, run([]string{"devices", "extra"}, &out, &errb))
	errb.Reset()
	assert.Equal(t, 2, run([]string{"no-such-command"}, &out, &errb))
	assert.Contains(t, errb.String(), "unknown command")
}

func TestDetectChatTemplate(t *testing.T) {
	for _, tt := range []struct {
		jinja, want string
	}{
		{"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}", "mistral"},
		{"{% if messages[0]['role'] == 'system' %}{{ '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{% endif %}{{ '[INST] ' }}", "llama2"},
		{"{{ bos_token }}{% for message in loop_messages %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}", "gemma"},
		{"{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}", ""},
		{"", ""},
	} {
		got, ok := detectTemplate(tt.jinja)
		assert.Equal(t, tt.want != "", ok, tt.jinja)
		assert.Equal(t, tt.want, got.name)
	}
	turn := chatTemplates["mistral"].turn("Hi", "Be brief.", true)
	assert.Equal(t, "[INST] Be brief.\n\nHi [/INST]", turn)
	turn = chatTemplates["llama2"].turn("Hi", "Be brief.", true)
	assert.Equal(t, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", turn)
	assert.Equal(t, "[INST] Again [/INST]", chatTemplates["llama2"].turn("Again", "Be brief.", false))

	// Gemma's two turns, as its chat template renders them (the model's
	// answer and its <end_of_turn> in between).
	g := chatTemplates["gemma"]
	render := func(msg string, first bool) string {
		return g.prefix(first) + g.turn(msg, "Be brief.", first) + g.suffix
	}
	assert.Equal(t, "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n", render("Hi", true))
	assert.Equal(t, "\n<start_of_turn>user\nAgain<end_of_turn>\n<start_of_turn>model\n", render("Again", false))
	assert.Equal(t, "<end_of_turn>", g.endTurn)
}
