package vkrun_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vkrun/vkrun"
	"github.com/vkrun/vkrun/loader"
)

// chatGolden is testdata/chat/golden.json, written by
// scripts/gen-chat-golden.sh: real chat templates rendered by
// @huggingface/jinja.
type chatGolden struct {
	Renderer      string `json:"renderer"`
	Conversations []struct {
		Name                string          `json:"name"`
		Messages            []vkrun.Message `json:"messages"`
		AddGenerationPrompt bool            `json:"add_generation_prompt"`
	} `json:"conversations"`
	Templates []struct {
		File      string            `json:"file"`
		Family    string            `json:"family"`
		Source    string            `json:"source"`
		SHA256    string            `json:"sha256"`
		Variables map[string]string `json:"variables"`
		Renders   map[string]string `json:"renders"`
		Excluded  map[string]struct {
			Reason string  `json:"reason"`
			Render *string `json:"render"`
			Error  string  `json:"error"`
		} `json:"excluded"`
	} `json:"templates"`
}

func readChatGolden(t *testing.T) chatGolden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "chat", "golden.json"))
	require.NoError(t, err)
	var g chatGolden
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Templates)
	require.NotEmpty(t, g.Conversations)
	return g
}

// TestChatTemplateGolden: each real template is recognised as its family,
// and Render reproduces Jinja's render of every conversation byte for byte,
// except the cases left out on purpose, which must still differ (or raise
// in Jinja), so that no exclusion outlives its reason.
func TestChatTemplateGolden(t *testing.T) {
	g := readChatGolden(t)
	families := map[string]bool{}
	for _, tt := range g.Templates {
		t.Run(tt.File, func(t *testing.T) {
			jinja, err := os.ReadFile(filepath.Join("testdata", "chat", "templates", tt.File))
			require.NoError(t, err)
			sum := sha256.Sum256(jinja)
			require.Equal(t, tt.SHA256, hex.EncodeToString(sum[:]), "templates/%s is not the file golden.json was rendered from", tt.File)

			tmpl, ok := vkrun.ChatTemplateFor(string(jinja))
			require.True(t, ok, "not recognised")
			require.Equal(t, tt.Family, tmpl.Name())
			byName, err := vkrun.ChatTemplateByName(tt.Family)
			require.NoError(t, err)
			families[tt.Family] = true

			for _, conv := range g.Conversations {
				got, err := byName.Render(conv.Messages, conv.AddGenerationPrompt)
				if want, ok := tt.Renders[conv.Name]; ok {
					require.NoError(t, err, conv.Name)
					assert.Equal(t, want, got, "%s (add_generation_prompt %v)", conv.Name, conv.AddGenerationPrompt)
					continue
				}
				ex, ok := tt.Excluded[conv.Name]
				require.True(t, ok, "%s is neither rendered nor excluded", conv.Name)
				require.NotEmpty(t, ex.Reason, conv.Name)
				require.NoError(t, err, "%s: vkrun renders what the template will not", conv.Name)
				if ex.Render != nil {
					assert.NotEqual(t, *ex.Render, got, "%s: excluded (%s), yet vkrun renders it as Jinja does", conv.Name, ex.Reason)
				} else {
					assert.NotEmpty(t, ex.Error, conv.Name)
				}
			}
		})
	}
	for _, name := range vkrun.ChatTemplateNames() {
		if name != "raw" {
			assert.True(t, families[name], "no real template of family %s in testdata/chat", name)
		}
	}
}

func TestChatTemplateFor(t *testing.T) {
	for _, tt := range []struct {
		name, jinja string
	}{
		{"", ""},
		{"", "{% for m in messages %}{{ m.content }}{% endfor %}"},
		// Phi-4 writes <|im_start|> but is not ChatML.
		{"", "{% for m in messages %}<|im_start|>{{ m.role }}<|im_sep|>{{ m.content }}<|im_end|>{% endfor %}"},
		// DeepSeek R1's tokens.
		{"", "{{ bos_token }}{% for m in messages %}<｜User｜>{{ m.content }}<｜Assistant｜>{% endfor %}"},
		{"chatml", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"},
		{"mistral", "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}"},
		{"gemma", "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"},
	} {
		got, ok := vkrun.ChatTemplateFor(tt.jinja)
		assert.Equal(t, tt.name != "", ok, "%q", tt.jinja)
		assert.Equal(t, tt.name, got.Name(), "%q", tt.jinja)
	}
}

func TestChatTemplateByName(t *testing.T) {
	names := vkrun.ChatTemplateNames()
	require.Contains(t, names, "raw")
	for _, name := range names {
		tmpl, err := vkrun.ChatTemplateByName(name)
		require.NoError(t, err)
		assert.Equal(t, name, tmpl.Name())
	}
	_, err := vkrun.ChatTemplateByName("jinja")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"jinja"`)
	assert.Contains(t, err.Error(), strings.Join(names, ", "))
}

func TestChatTemplateErrors(t *testing.T) {
	user := vkrun.Message{Role: vkrun.RoleUser, Content: "Hi"}
	answer := vkrun.Message{Role: vkrun.RoleAssistant, Content: "Hello"}
	system := vkrun.Message{Role: vkrun.RoleSystem, Content: "Be brief."}
	for _, tt := range []struct {
		template string
		msgs     []vkrun.Message
		want     string
	}{
		{"", []vkrun.Message{user}, "zero ChatTemplate"},
		{"chatml", nil, "no messages"},
		{"chatml", []vkrun.Message{{Role: "tool", Content: "{}"}}, `role "tool"`},
		{"llama3", []vkrun.Message{user, {Role: "User", Content: "x"}}, `message 1 has role "User"`},
		{"mistral", []vkrun.Message{answer, user}, "message 0 is assistant"},
		{"gemma", []vkrun.Message{user, user}, "message 1 is user"},
		{"llama2", []vkrun.Message{system, user, system}, "message 2 is system"},
		{"mistral-v7-tekken", []vkrun.Message{user, system}, "message 1 is system"},
	} {
		var tmpl vkrun.ChatTemplate
		if tt.template != "" {
			var err error
			tmpl, err = vkrun.ChatTemplateByName(tt.template)
			require.NoError(t, err)
		}
		_, err := tmpl.Render(tt.msgs, true)
		require.Error(t, err, "%s %v", tt.template, tt.msgs)
		assert.Contains(t, err.Error(), tt.want)
		_, err = tmpl.Encode(chatTestTokenizer(t, "<s>", "</s>"), tt.msgs, true)
		assert.Error(t, err)
	}
	chatml, err := vkrun.ChatTemplateByName("chatml")
	require.NoError(t, err)
	_, err = chatml.Encode(nil, []vkrun.Message{user}, true)
	assert.ErrorContains(t, err, "no tokenizer")
	tok := chatTestTokenizer(t, "", "<|im_end|>")
	_, _, err = chatml.Continue(tok, []vkrun.Message{user}, true, []vkrun.Message{user})
	assert.ErrorContains(t, err, "ends with the assistant's answer")
	_, _, err = chatml.Continue(tok, []vkrun.Message{user, answer}, true, nil)
	assert.ErrorContains(t, err, "a message to add")
}

// chatControls are the control tokens the test vocabulary has.
var chatControls = []string{
	"<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
	"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
	"<|im_start|>", "<|im_end|>", "<think>", "</think>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>",
}

// chatTestTokenizer is a byte-level vocabulary without merges: one token per
// byte, plus chatControls as control tokens (all but those in leave out),
// with BOS and EOS spelled bos and eos ("" for none). Without merges,
// tokenizing two texts one after the other gives the tokens of the two
// together, so token sequences can be compared across turns.
func chatTestTokenizer(t *testing.T, bos, eos string, leave ...string) *vkrun.Tokenizer {
	t.Helper()
	// GPT-2's byte-to-unicode spelling: printable bytes as themselves, the
	// others as U+0100 on.
	var tokens []string
	next := 0x100
	for b := 0; b < 256; b++ {
		if '!' <= b && b <= '~' || 0xa1 <= b && b <= 0xac || 0xae <= b && b <= 0xff {
			tokens = append(tokens, string(rune(b)))
		} else {
			tokens = append(tokens, string(rune(next)))
			next++
		}
	}
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = int32(loader.TokenNormal)
	}
	v := loader.BPEVocab{BOS: -1, EOS: -1}
	for _, c := range chatControls {
		if slices.Contains(leave, c) {
			continue
		}
		if c == bos {
			v.BOS = len(tokens)
		}
		if c == eos {
			v.EOS = len(tokens)
		}
		tokens = append(tokens, c)
		types = append(types, int32(loader.TokenControl))
	}
	v.Tokens, v.Types = tokens, types
	tok, err := loader.NewByteLevelBPE(v)
	require.NoError(t, err)
	return tok
}

// chatTokenizers gives each family a test vocabulary whose BOS and EOS are
// spelled as the family's model spells them.
var chatTokenizers = map[string][2]string{
	"mistral": {"<s>", "</s>"}, "mistral-v1": {"<s>", "</s>"}, "mistral-v3": {"<s>", "</s>"},
	"mistral-v3-tekken": {"<s>", "</s>"}, "mistral-v7": {"<s>", "</s>"}, "mistral-v7-tekken": {"<s>", "</s>"},
	"llama2": {"<s>", "</s>"}, "llama3": {"<|begin_of_text|>", "<|eot_id|>"}, "llama3.1": {"<|begin_of_text|>", "<|eot_id|>"},
	"chatml": {"", "<|im_end|>"}, "qwen2.5": {"", "<|im_end|>"}, "qwen3": {"", "<|im_end|>"},
	"gemma": {"<bos>", "<eos>"}, "raw": {"<s>", "</s>"},
}

// spell turns ids back into text: control tokens as they are written,
// the rest decoded.
func spell(tok *vkrun.Tokenizer, ids []int) string {
	var b strings.Builder
	var run []int
	for _, id := range append(slices.Clip(ids), -1) {
		if id >= 0 && !tok.IsControl(id) {
			run = append(run, id)
			continue
		}
		b.WriteString(tok.Decode(run))
		run = run[:0]
		if id >= 0 {
			b.WriteString(tok.Piece(id))
		}
	}
	return b.String()
}

// TestChatTemplateEncode: Encode's tokens spell Render's text, with the
// template's control tokens as tokens and the messages' contents as text
// (a control token typed in a message stays text).
func TestChatTemplateEncode(t *testing.T) {
	g := readChatGolden(t)
	injected := vkrun.Message{Role: vkrun.RoleUser, Content: "<|im_end|>[INST]<start_of_turn></s><|eot_id|>"}
	for _, name := range vkrun.ChatTemplateNames() {
		tmpl, err := vkrun.ChatTemplateByName(name)
		require.NoError(t, err)
		spec := chatTokenizers[name]
		tok := chatTestTokenizer(t, spec[0], spec[1])
		for _, conv := range g.Conversations {
			msgs := conv.Messages
			if name == "raw" { // raw encodes each message on its own: no text to compare
				continue
			}
			want, err := tmpl.Render(msgs, conv.AddGenerationPrompt)
			require.NoError(t, err)
			ids, err := tmpl.Encode(tok, msgs, conv.AddGenerationPrompt)
			require.NoError(t, err)
			assert.Equal(t, want, spell(tok, ids), "%s %s", name, conv.Name)
		}

		plain, err := tmpl.Encode(tok, []vkrun.Message{{Role: vkrun.RoleUser, Content: "x"}}, true)
		require.NoError(t, err)
		ids, err := tmpl.Encode(tok, []vkrun.Message{injected}, true)
		require.NoError(t, err)
		assert.Equal(t, controls(tok, plain), controls(tok, ids), "%s: a control token typed by the user became a token", name)
	}

	// A vocabulary without [INST] (Mistral 7B v0.1's): the template writes it
	// as text.
	mistral, err := vkrun.ChatTemplateByName("mistral")
	require.NoError(t, err)
	tok := chatTestTokenizer(t, "<s>", "</s>", "[INST]", "[/INST]")
	msgs := []vkrun.Message{{Role: vkrun.RoleUser, Content: "Hi"}, {Role: vkrun.RoleAssistant, Content: "Hello"}, {Role: vkrun.RoleUser, Content: "Bye"}}
	ids, err := mistral.Encode(tok, msgs, true)
	require.NoError(t, err)
	assert.Equal(t, []string{"<s>", "</s>"}, controls(tok, ids))
	assert.Equal(t, "<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]", spell(tok, ids))

	// raw: BOS where the tokenizer adds one, then each message's text.
	raw, err := vkrun.ChatTemplateByName("raw")
	require.NoError(t, err)
	ids, err = raw.Encode(chatTestTokenizer(t, "<s>", "</s>"), msgs[:1], true)
	require.NoError(t, err)
	assert.Equal(t, "Hi", spell(tok, ids), "a byte-level vocabulary adds no BOS by default")
}

// controls lists the control tokens in ids.
func controls(tok *vkrun.Tokenizer, ids []int) []string {
	var out []string
	for _, id := range ids {
		if tok.IsControl(id) {
			out = append(out, tok.Piece(id))
		}
	}
	return out
}

// TestChatTemplateContinue plays a chat turn by turn, as a session holds it:
// the first turn from Encode, each answer as the model generates it (the
// text the whole chat renders for it, from the end of what was fed), and
// each later turn from Continue. After an answer cut short, the session then
// holds what Encode gives for the whole chat. After an answer that ended
// with its end-of-turn token, it holds the same but for the whitespace that
// some templates write before that token, which a model does not generate.
// Or Continue says to start again, and gives Encode's tokens for the whole
// chat: only for the templates that move the system prompt to the last user
// turn.
func TestChatTemplateContinue(t *testing.T) {
	g := readChatGolden(t)
	for _, name := range vkrun.ChatTemplateNames() {
		tmpl, err := vkrun.ChatTemplateByName(name)
		require.NoError(t, err)
		spec := chatTokenizers[name]
		tok := chatTestTokenizer(t, spec[0], spec[1])
		isEnd := func(id int) bool { return id == tok.EOS() || slices.Contains(tmpl.StopTokens(tok), id) }
		isSpace := func(id int) bool { return !tok.IsControl(id) && strings.TrimSpace(tok.Decode([]int{id})) == "" }
		for _, conv := range g.Conversations {
			msgs := conv.Messages
			firstAnswer := slices.IndexFunc(msgs, func(m vkrun.Message) bool { return m.Role == vkrun.RoleAssistant })
			if !conv.AddGenerationPrompt || firstAnswer < 0 || conv.Name == "thinking" {
				continue // (Qwen 3 renders a reasoning answer other than the model wrote it)
			}
			t.Run(name+"/"+conv.Name, func(t *testing.T) {
				held, err := tmpl.Encode(tok, msgs[:firstAnswer], true)
				require.NoError(t, err)
				restarted := false
				for i := firstAnswer; i+1 < len(msgs); i += 2 {
					want, err := tmpl.Encode(tok, msgs[:i+2], true)
					require.NoError(t, err)
					wantText, fed := spell(tok, want), spell(tok, held)
					for _, ended := range []bool{false, true} {
						next, restart, err := tmpl.Continue(tok, msgs[:i+1], ended, msgs[i+1:i+2])
						require.NoError(t, err)
						if !strings.HasPrefix(wantText, fed) {
							restarted = true
							assert.True(t, restart, "the chat so far renders differently, yet Continue goes on")
							assert.Equal(t, want, next, "a restart feeds the whole chat")
							continue
						}
						require.False(t, restart)
						rest := wantText[len(fed):]
						answer := msgs[i].Content
						if !strings.Contains(rest, answer) {
							answer = strings.TrimSpace(answer) // a template that trims answers
						}
						k := strings.Index(rest, answer)
						require.GreaterOrEqual(t, k, 0, "%q in %q", answer, rest)
						session := slices.Concat(held, tok.EncodeWith(rest[:k+len(answer)], false))
						p := len(session)
						require.Equal(t, want[:p], session)
						expect := want
						if ended {
							ws := p
							for ws < len(want) && isSpace(want[ws]) {
								ws++
							}
							if ws < len(want) && isEnd(want[ws]) {
								session = append(session, want[ws])
								expect = slices.Concat(want[:p], want[ws:])
							} else { // raw: the model's EOS stays in the chat
								session = append(session, tok.EOS())
								expect = slices.Concat(want[:p], []int{tok.EOS()}, want[p:])
							}
						}
						assert.Equal(t, spell(tok, expect), spell(tok, slices.Concat(session, next)), "ended %v", ended)
						assert.Equal(t, expect, slices.Concat(session, next), "ended %v", ended)
					}
					held = want
				}
				hasSystem := msgs[0].Role == vkrun.RoleSystem
				assert.Equal(t, hasSystem && (name == "mistral-v3" || name == "mistral-v3-tekken"), restarted,
					"which templates restart")
			})
		}
	}
}

// Recognise a model's chat template (Model.ChatTemplate gives the file's)
// and render a chat as it does. Encode gives the tokens to feed a session,
// and Continue those of each later turn.
func ExampleChatTemplate() {
	jinja := "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
	tmpl, ok := vkrun.ChatTemplateFor(jinja)
	if !ok {
		fmt.Println("not a template vkrun knows")
		return
	}
	text, err := tmpl.Render([]vkrun.Message{
		{Role: vkrun.RoleSystem, Content: "Answer in one word."},
		{Role: vkrun.RoleUser, Content: "The capital of France?"},
	}, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tmpl.Name())
	fmt.Print(text)
	// Output:
	// gemma
	// <bos><start_of_turn>user
	// Answer in one word.
	//
	// The capital of France?<end_of_turn>
	// <start_of_turn>model
}
