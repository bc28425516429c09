package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/loader"
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

// TestDetectChatTemplate: --template wins, else the family of the file's
// chat template; a name or a file vkrun does not know is an error that
// says what to do.
func TestDetectChatTemplate(t *testing.T) {
	gemma := "{{ bos_token }}{% for message in loop_messages %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
	for _, tt := range []struct {
		flag, jinja, want, err string
	}{
		{"", gemma, "gemma", ""},
		{"raw", gemma, "raw", ""},
		{"mistral-v3-tekken", "", "mistral-v3-tekken", ""},
		{"", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}", "chatml", ""},
		{"", "", "", "the model has no chat template; choose one with --template (mistral, "},
		{"", "{{ messages[0].content }}", "", "of no family vkrun knows; choose one with --template"},
		{"jinja", gemma, "", `--template "jinja" is not one of mistral, mistral-v1, `},
	} {
		got, err := chatTemplate(tt.flag, tt.jinja)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, "%q %q", tt.flag, tt.jinja)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got.Name(), "%q %q", tt.flag, tt.jinja)
	}
}

// chatTestVocab is a SentencePiece vocabulary of byte tokens with BOS, EOS
// and Mistral's [INST] and [/INST] as control tokens.
func chatTestVocab(t *testing.T) *vkrun.Tokenizer {
	t.Helper()
	v := loader.Vocab{Tokens: []string{"<unk>", "<s>", "</s>", "[INST]", "[/INST]"}, UNK: 0, BOS: 1, EOS: 2, AddBOS: true}
	v.Types = []int32{int32(loader.TokenUnknown), int32(loader.TokenControl), int32(loader.TokenControl), int32(loader.TokenControl), int32(loader.TokenControl)}
	for b := 0; b < 256; b++ {
		v.Tokens = append(v.Tokens, fmt.Sprintf("<0x%02X>", b))
		v.Types = append(v.Types, int32(loader.TokenByte))
	}
	tok, err := loader.NewSentencePiece(v)
	require.NoError(t, err)
	return tok
}

// TestChatTurns: each turn of vkrun chat feeds only what the session does
// not hold yet, starts again where the template or a cut prefill needs it,
// and leaves out the end-of-turn token the session feeds itself.
func TestChatTurns(t *testing.T) {
	tok := chatTestVocab(t)
	inst, _ := tok.Lookup("[INST]")
	count := func(ids []int, id int) (n int) {
		for _, x := range ids {
			if x == id {
				n++
			}
		}
		return n
	}
	for _, tt := range []struct {
		template, system string
		ended            bool
		restarts         bool
	}{
		{"mistral", "Be brief.", true, false},
		{"mistral", "", false, false},
		{"mistral-v3", "", true, false},
		{"mistral-v3", "Be brief.", true, true}, // the system prompt moves to the last user turn
	} {
		name := fmt.Sprintf("%s/system=%q/ended=%v", tt.template, tt.system, tt.ended)
		tmpl, err := vkrun.ChatTemplateByName(tt.template)
		require.NoError(t, err)
		c := &chatState{tmpl: tmpl, tok: tok, system: tt.system}

		ids, reset, err := c.prompt("Hi")
		require.NoError(t, err)
		assert.False(t, reset, name)
		want, err := tmpl.Encode(tok, append(systemMessages(tt.system), vkrun.Message{Role: vkrun.RoleUser, Content: "Hi"}), true)
		require.NoError(t, err)
		assert.Equal(t, want, ids, name)
		c.answered("Hello", tt.ended)

		ids, reset, err = c.prompt("Again")
		require.NoError(t, err)
		assert.Equal(t, tt.restarts, reset, name)
		assert.Equal(t, tt.restarts, c.restarted, name)
		if tt.restarts {
			assert.Equal(t, 2, count(ids, inst), "%s: the whole chat again", name)
			assert.Equal(t, tok.BOS(), ids[0], name)
			assert.Equal(t, 1, count(ids, tok.BOS()), name)
		} else {
			assert.Equal(t, 1, count(ids, inst), "%s: only the new turn", name)
			assert.Equal(t, !tt.ended, ids[0] == tok.EOS(), "%s: EOS closes an answer the session did not end", name)
			assert.NotContains(t, ids, tok.BOS(), "%s: BOS only at the start of the chat", name)
		}

		// A turn lost in its prefill: the next one starts again from the
		// chat before it.
		c.lost()
		ids, reset, err = c.prompt("Once more")
		require.NoError(t, err)
		assert.True(t, reset, name)
		want, err = tmpl.Encode(tok, append(systemMessages(tt.system),
			vkrun.Message{Role: vkrun.RoleUser, Content: "Hi"}, vkrun.Message{Role: vkrun.RoleAssistant, Content: "Hello"},
			vkrun.Message{Role: vkrun.RoleUser, Content: "Once more"}), true)
		require.NoError(t, err)
		assert.Equal(t, want, ids, name)
	}
}

func systemMessages(system string) []vkrun.Message {
	if system == "" {
		return nil
	}
	return []vkrun.Message{{Role: vkrun.RoleSystem, Content: system}}
}
