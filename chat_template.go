package vkrun

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/vkrun/vkrun/loader"
)

// Message roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one message of a chat. Role is RoleSystem, RoleUser or
// RoleAssistant; Content is plain text.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatTemplate formats a chat the way one instruct family was trained on:
// the text its real (Jinja) chat template renders, and the tokens of that
// text. The zero ChatTemplate is not a template; get one from
// ChatTemplateFor or ChatTemplateByName. A ChatTemplate is a small value,
// safe for concurrent use.
//
// Control tokens that the template writes ("[INST]", "<|im_start|>") become
// those tokens when the vocabulary has them. Message contents are always
// plain text: a user who types "<|im_end|>" gets the characters, not the
// token (llama.cpp parses control tokens in contents too).
type ChatTemplate struct {
	f *chatFamily
}

// chatFamily is one way of rendering a chat: one ChatTemplate name.
type chatFamily struct {
	name string
	// bos and eos are how Render writes bos_token and eos_token: the
	// spelling of the family's tokenizer.
	bos, eos string
	// stops are the end-of-turn tokens, besides EOS, that end an answer.
	stops []string
	// render appends the pieces of msgs (already checked for roles).
	render func(r *chatRender, msgs []Message, addGenerationPrompt bool) error
}

// chatFamilies lists the families, in the order ChatTemplateNames gives.
var chatFamilies = []*chatFamily{
	// Mistral 7B Instruct v0.1/v0.2 and Mixtral's first template: [INST] user [/INST]answer</s>
	{name: "mistral", bos: "<s>", eos: "</s>", render: renderMistral},
	// Mistral's v1 template (7B v0.1/v0.2, later revision): <s> [INST] system\n\nuser [/INST] answer</s>
	{name: "mistral-v1", bos: "<s>", eos: "</s>", render: renderMistralV1},
	// Mistral's v3 template (7B v0.3, Large 2407): [INST] user[/INST] answer</s>, the system prompt in the last user turn
	{name: "mistral-v3", bos: "<s>", eos: "</s>", render: renderMistralV3},
	// Mistral's v3 tekken template (Nemo 2407): [INST]user[/INST]answer</s>, the system prompt in the last user turn
	{name: "mistral-v3-tekken", bos: "<s>", eos: "</s>", render: renderMistralV3Tekken},
	// Mistral's v7 template (Large 2411): [SYSTEM_PROMPT] system[/SYSTEM_PROMPT][INST] user[/INST] answer</s>
	{name: "mistral-v7", bos: "<s>", eos: "</s>", render: renderMistralV7},
	// Mistral's v7 tekken template (Small 3, 3.1, 3.2): [SYSTEM_PROMPT]system[/SYSTEM_PROMPT][INST]user[/INST]answer</s>
	{name: "mistral-v7-tekken", bos: "<s>", eos: "</s>", render: renderMistralV7Tekken},
	// Llama 2 chat: <s>[INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] …
	{name: "llama2", bos: "<s>", eos: "</s>", render: renderLlama2},
	// Llama 3: <|start_header_id|>role<|end_header_id|>\n\ntext<|eot_id|>
	{name: "llama3", bos: "<|begin_of_text|>", eos: "<|eot_id|>", stops: []string{"<|eot_id|>"}, render: renderLlama3},
	// Llama 3.1, 3.2, 3.3: Llama 3 with a system turn that always carries the knowledge and today's dates
	{name: "llama3.1", bos: "<|begin_of_text|>", eos: "<|eot_id|>", stops: []string{"<|eot_id|>", "<|eom_id|>"}, render: renderLlama31},
	// ChatML: <|im_start|>role\ntext<|im_end|>\n
	{name: "chatml", eos: "<|im_end|>", stops: []string{"<|im_end|>"}, render: renderChatML},
	// Qwen 2.5: ChatML with Qwen's default system prompt
	{name: "qwen2.5", eos: "<|im_end|>", stops: []string{"<|im_end|>"}, render: renderQwen25},
	// Qwen 3: ChatML that drops the <think> part of earlier answers
	{name: "qwen3", eos: "<|im_end|>", stops: []string{"<|im_end|>"}, render: renderQwen3},
	// Gemma 2 and 3: <start_of_turn>user\ntext<end_of_turn>\n, role model for answers, the system prompt leads the first user turn
	{name: "gemma", bos: "<bos>", eos: "<eos>", stops: []string{"<end_of_turn>"}, render: renderGemma},
	// no template: the messages' texts one after another
	{name: "raw", render: renderRaw},
}

// ChatTemplateNames lists the names ChatTemplateByName knows.
func ChatTemplateNames() []string {
	names := make([]string, len(chatFamilies))
	for i, f := range chatFamilies {
		names[i] = f.name
	}
	return names
}

// ChatTemplateByName returns the named template (see ChatTemplateNames).
func ChatTemplateByName(name string) (ChatTemplate, error) {
	for _, f := range chatFamilies {
		if f.name == name {
			return ChatTemplate{f}, nil
		}
	}
	return ChatTemplate{}, fmt.Errorf("vkrun: chat template %q is not one of %s", name, strings.Join(ChatTemplateNames(), ", "))
}

// ChatTemplateFor recognises the family of a model's Jinja chat template
// (GGUF tokenizer.chat_template, Model.ChatTemplate) by the control tokens
// and strings it writes. It reports false for a template of another family
// and for "". Render reproduces the real templates of testdata/chat exactly;
// another template of a family it recognises (a fine-tune's ChatML, say) is
// rendered by the family's rules, without what that template adds to them
// (a BOS, a default system prompt, a <think> line after the generation
// prompt).
func ChatTemplateFor(jinja string) (ChatTemplate, bool) {
	has := func(s string) bool { return strings.Contains(jinja, s) }
	name := ""
	switch {
	case has("<|im_start|>") && !has("<|im_sep|>"): // <|im_sep|> is Phi-4's own format
		switch {
		case has("<think>"):
			name = "qwen3"
		case has("You are Qwen, created by Alibaba Cloud."):
			name = "qwen2.5"
		default:
			name = "chatml"
		}
	case has("<|start_header_id|>") && has("<|eot_id|>"):
		name = "llama3"
		if has("Cutting Knowledge Date:") {
			name = "llama3.1"
		}
	case has("<start_of_turn>") && has("<end_of_turn>"):
		name = "gemma"
	case has("[INST]"):
		// Tekken templates write [INST] with nothing around it; the
		// SentencePiece ones write "[INST] " or " [INST] ".
		tekken := has(`'[INST]'`) || has(`"[INST]"`)
		switch {
		case has("[SYSTEM_PROMPT]"):
			name = "mistral-v7"
			if tekken {
				name = "mistral-v7-tekken"
			}
		case has("<<SYS>>"):
			name = "llama2"
		case has(`' [INST] '`) || has(`" [INST] "`):
			name = "mistral-v1"
		case tekken:
			name = "mistral-v3-tekken"
		case has("[AVAILABLE_TOOLS]"):
			name = "mistral-v3"
		default:
			name = "mistral"
		}
	}
	if name == "" {
		return ChatTemplate{}, false
	}
	t, err := ChatTemplateByName(name)
	return t, err == nil
}

// Name is the template's name, as ChatTemplateByName takes it.
func (t ChatTemplate) Name() string {
	if t.f == nil {
		return ""
	}
	return t.f.name
}

// Render returns the text the family's real chat template renders for msgs,
// with bos_token and eos_token spelled as the family's tokenizer spells them
// ("<s>", "<bos>", "<|begin_of_text|>") where the template writes them.
// addGenerationPrompt appends what starts the assistant's answer, as the
// Jinja variable add_generation_prompt does. The "raw" template renders the
// contents one after another.
//
// Render fails where the real template would raise (roles that do not
// alternate user/assistant, for the families that check) and on an unknown
// role. Where the real template does something vkrun does not, Render
// follows these rules instead:
//   - mistral's template and Gemma 2's take no system message: it leads the
//     first user turn, followed by a blank line (as in Gemma 3's).
//   - mistral-v7-tekken writes no default system prompt (Mistral's has
//     today's date in it).
//   - llama3.1 always writes "Today Date: 26 Jul 2024", the fallback date
//     of Meta's templates.
//   - tool calls, tool results and images are not supported.
func (t ChatTemplate) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	r, err := t.render(msgs, addGenerationPrompt)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// Encode renders msgs as Render does and tokenizes the text: the template's
// control tokens, BOS and EOS as those tokens, the message contents as plain
// text. Each stretch of text between two control tokens is tokenized on its
// own, as llama.cpp tokenizes a rendered template. The "raw" template starts
// with BOS where the tokenizer adds one and tokenizes each message on its
// own.
func (t ChatTemplate) Encode(tok *Tokenizer, msgs []Message, addGenerationPrompt bool) ([]int, error) {
	if tok == nil {
		return nil, errors.New("vkrun: chat template: no tokenizer")
	}
	r, err := t.render(msgs, addGenerationPrompt)
	if err != nil {
		return nil, err
	}
	return encodePieces(tok, r.pieces), nil
}

// Continue returns the tokens that carry a session on from the chat it
// holds, held, to held followed by next, ending with the generation prompt.
// The session must have been fed Encode(held[:len(held)-1], true) (or the
// same by earlier calls of Continue) and then have generated held's last
// message, an assistant answer whose text is its Content. ended says that
// the answer ended with an end-of-turn token (the tokenizer's EOS or one of
// StopTokens) that the session feeds before these tokens, as Session does;
// after an answer cut short (the token limit, a cancel) it is false, and the
// tokens then close the answer first.
//
// The session keeps each answer as the model generated it, where Encode of
// the whole chat would write it as the template does (trimmed; Qwen 3
// without its reasoning). Some templates render the chat so far differently
// once it grows (mistral-v3 moves the system prompt into the last user
// turn): then restart is true and ids encode the whole chat, held and next,
// for a session that starts afresh (Session.Reset).
func (t ChatTemplate) Continue(tok *Tokenizer, held []Message, ended bool, next []Message) (ids []int, restart bool, err error) {
	if tok == nil {
		return nil, false, errors.New("vkrun: chat template: no tokenizer")
	}
	n := len(held)
	if n == 0 || held[n-1].Role != RoleAssistant {
		return nil, false, errors.New("vkrun: chat template: Continue needs a chat that ends with the assistant's answer")
	}
	if len(next) == 0 {
		return nil, false, errors.New("vkrun: chat template: Continue needs a message to add")
	}
	fed, err := t.render(held[:n-1], true)
	if err != nil {
		return nil, false, err
	}
	all := append(slices.Clip(held), next...)
	full, err := t.render(all, true)
	if err != nil {
		return nil, false, err
	}
	rest, ok := continuation(fed, full, n-1)
	if !ok {
		return encodePieces(tok, full.pieces), true, nil
	}
	if ended {
		rest = dropEndOfTurn(tok, rest, t.StopTokens(tok))
	}
	return encodePieces(tok, rest), false, nil
}

// continuation returns the pieces of full that follow the content of
// message answer, given that the session was fed fed and then generated that
// content. It reports false where full does not start with fed, apart from
// whitespace the model writes before its answer.
func continuation(fed, full *chatRender, answer int) ([]chatPiece, bool) {
	k := -1
	for i, p := range full.pieces {
		if p.kind == pieceContent && p.msg == answer {
			k = i
		}
	}
	if k < 0 {
		return nil, false
	}
	before := (&chatRender{f: full.f, pieces: full.pieces[:k]}).String()
	prefix := fed.String()
	if !strings.HasPrefix(before, prefix) || strings.TrimFunc(before[len(prefix):], isJinjaSpace) != "" {
		return nil, false
	}
	return full.pieces[k+1:], true
}

// dropEndOfTurn removes the end-of-turn token at the start of rest, and the
// whitespace the template writes before it, when it is one of the tokens
// that end an answer (the session feeds the one the model generated).
func dropEndOfTurn(tok *Tokenizer, rest []chatPiece, stops []int) []chatPiece {
	for i, p := range rest {
		switch {
		case p.kind == pieceBreak, p.kind == pieceText && strings.TrimFunc(p.text, isJinjaSpace) == "":
			continue
		case p.kind == pieceEOS && tok.EOS() >= 0:
			return rest[i+1:]
		case p.kind == pieceControl:
			if id, ok := controlID(tok, p.text); ok && (id == tok.EOS() || slices.Contains(stops, id)) {
				return rest[i+1:]
			}
		}
		return rest
	}
	return rest
}

// StopTokens returns the ids of the family's end-of-turn tokens besides EOS
// that the vocabulary has (<|eot_id|>, <|im_end|>, <end_of_turn>), for
// WithStopTokens.
func (t ChatTemplate) StopTokens(tok *Tokenizer) []int {
	if t.f == nil || tok == nil {
		return nil
	}
	var ids []int
	for _, s := range t.f.stops {
		if id, ok := controlID(tok, s); ok && id != tok.EOS() && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (t ChatTemplate) render(msgs []Message, addGenerationPrompt bool) (*chatRender, error) {
	if t.f == nil {
		return nil, errors.New("vkrun: the zero ChatTemplate is not a template; use ChatTemplateFor or ChatTemplateByName")
	}
	if len(msgs) == 0 {
		return nil, errors.New("vkrun: chat template: no messages")
	}
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return nil, fmt.Errorf("vkrun: chat message %d has role %q, not system, user or assistant", i, m.Role)
		}
	}
	r := &chatRender{f: t.f}
	if err := t.f.render(r, msgs, addGenerationPrompt); err != nil {
		return nil, fmt.Errorf("vkrun: chat template %s: %w", t.f.name, err)
	}
	return r, nil
}

// A chat is rendered as pieces, so that Encode knows which text is the
// template's control tokens and which is a message's content, and Continue
// knows where each message is.
type chatPieceKind uint8

const (
	pieceText    chatPieceKind = iota // the template's own text
	pieceContent                      // a message's content: plain text, never control tokens
	pieceControl                      // a control token the template writes: the token if the vocabulary has it, else text
	pieceBOS                          // bos_token
	pieceEOS                          // eos_token
	pieceAutoBOS                      // BOS where the tokenizer adds one; no text (raw)
	pieceBreak                        // ends a stretch of text; no text (raw)
)

type chatPiece struct {
	kind chatPieceKind
	text string
	msg  int // the message it belongs to; -1 for the template's own (the generation prompt)
}

type chatRender struct {
	f      *chatFamily
	pieces []chatPiece
	msg    int // the message being rendered
}

func (r *chatRender) add(kind chatPieceKind, text string) {
	r.pieces = append(r.pieces, chatPiece{kind: kind, text: text, msg: r.msg})
}

func (r *chatRender) text(s string) {
	if s != "" {
		r.add(pieceText, s)
	}
}

func (r *chatRender) content(s string)  { r.add(pieceContent, s) }
func (r *chatRender) control(s string)  { r.add(pieceControl, s) }
func (r *chatRender) bos()              { r.add(pieceBOS, r.f.bos) }
func (r *chatRender) eos()              { r.add(pieceEOS, r.f.eos) }
func (r *chatRender) at(msg int)        { r.msg = msg }
func (r *chatRender) generationPrompt() { r.msg = -1 }

// stripFrom strips whitespace (Python's str.strip) from the text of the
// pieces from index start on, as a template's strip() of a string built
// from them does. Emptied template text goes; emptied content stays.
func (r *chatRender) stripFrom(start int) {
	ps := r.pieces[start:]
	for i := range ps {
		if !ps[i].isText() {
			break
		}
		if ps[i].text = strings.TrimLeftFunc(ps[i].text, isJinjaSpace); ps[i].text != "" {
			break
		}
	}
	for i := len(ps) - 1; i >= 0; i-- {
		if !ps[i].isText() {
			break
		}
		if ps[i].text = strings.TrimRightFunc(ps[i].text, isJinjaSpace); ps[i].text != "" {
			break
		}
	}
	r.pieces = slices.DeleteFunc(r.pieces, func(p chatPiece) bool { return p.kind == pieceText && p.text == "" })
}

func (p chatPiece) isText() bool { return p.kind == pieceText || p.kind == pieceContent }

// String is the rendered text.
func (r *chatRender) String() string {
	var b strings.Builder
	for _, p := range r.pieces {
		b.WriteString(p.text)
	}
	return b.String()
}

// isJinjaSpace is the whitespace that the templates' trim and strip()
// remove: Python's str.isspace, which is Go's unicode.IsSpace and the four
// ASCII separators U+001C–U+001F.
func isJinjaSpace(c rune) bool { return unicode.IsSpace(c) || 0x1c <= c && c <= 0x1f }

func trim(s string) string { return strings.TrimFunc(s, isJinjaSpace) }

// controlID is the id of a control (or user-defined) token spelled s, if
// the vocabulary has one.
func controlID(tok *Tokenizer, s string) (int, bool) {
	id, ok := tok.Lookup(s)
	if !ok {
		return 0, false
	}
	switch tok.Type(id) {
	case loader.TokenControl, loader.TokenUserDefined:
		return id, true
	}
	return 0, false
}

// encodePieces tokenizes rendered pieces: control tokens, BOS and EOS as
// ids, each stretch of text between them as plain text.
func encodePieces(tok *Tokenizer, pieces []chatPiece) []int {
	var ids []int
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			ids = append(ids, tok.EncodeWith(text.String(), false)...)
			text.Reset()
		}
	}
	token := func(id int) {
		if id >= 0 {
			flush()
			ids = append(ids, id)
		}
	}
	for _, p := range pieces {
		switch p.kind {
		case pieceText, pieceContent:
			text.WriteString(p.text)
		case pieceControl:
			if id, ok := controlID(tok, p.text); ok {
				token(id)
			} else {
				text.WriteString(p.text)
			}
		case pieceBOS:
			token(tok.BOS())
		case pieceEOS:
			token(tok.EOS())
		case pieceAutoBOS:
			if tok.AddBOS() {
				token(tok.BOS())
			}
		case pieceBreak:
			flush()
		}
	}
	flush()
	return ids
}

// splitSystem returns the content of a leading system message and the
// messages after it, with the index of the first of them.
func splitSystem(msgs []Message) (system string, ok bool, rest []Message, first int) {
	if msgs[0].Role == RoleSystem {
		return msgs[0].Content, true, msgs[1:], 1
	}
	return "", false, msgs, 0
}

// alternate checks that msgs (starting at index first of the chat) go user,
// assistant, user, …, as the templates that raise on anything else want.
func alternate(msgs []Message, first int) error {
	for i, m := range msgs {
		want := RoleUser
		if i%2 == 1 {
			want = RoleAssistant
		}
		if m.Role != want {
			return fmt.Errorf("after an optional system message the roles must alternate user, assistant, user, …; message %d is %s", first+i, m.Role)
		}
	}
	return nil
}

// renderMistral: the first template of Mistral 7B Instruct v0.1/v0.2 and
// Mixtral 8x7B Instruct; it has no system message, which vkrun puts before
// the first user text.
func renderMistral(r *chatRender, msgs []Message, _ bool) error {
	return renderMistralV0(r, msgs, "")
}

// renderMistralV1: Mistral's "v1" template, the same with a space before
// every message.
func renderMistralV1(r *chatRender, msgs []Message, _ bool) error {
	return renderMistralV0(r, msgs, " ")
}

// renderMistralV0 renders [INST] user [/INST] answer</s> turns, each led
// by lead, the system prompt before the first user text.
func renderMistralV0(r *chatRender, msgs []Message, lead string) error {
	system, hasSystem, rest, first := splitSystem(msgs)
	if err := alternate(rest, first); err != nil {
		return err
	}
	r.bos()
	for i, m := range rest {
		r.at(first + i)
		r.text(lead)
		if m.Role == RoleUser {
			r.control("[INST]")
			r.text(" ")
			if i == 0 && hasSystem {
				r.content(system)
				r.text("\n\n")
			}
			r.content(m.Content)
			r.text(" ")
			r.control("[/INST]")
		} else {
			r.content(m.Content)
			r.eos()
		}
	}
	return nil
}

// renderMistralV3 and renderMistralV3Tekken: Mistral's "v3" templates. The
// system prompt goes into the last message when that is a user message.
func renderMistralV3(r *chatRender, msgs []Message, _ bool) error {
	return renderMistralV3Like(r, msgs, " ", true)
}

func renderMistralV3Tekken(r *chatRender, msgs []Message, _ bool) error {
	return renderMistralV3Like(r, msgs, "", false)
}

func renderMistralV3Like(r *chatRender, msgs []Message, space string, trimAnswer bool) error {
	system, hasSystem, rest, first := splitSystem(msgs)
	if err := alternate(rest, first); err != nil {
		return err
	}
	r.bos()
	for i, m := range rest {
		r.at(first + i)
		if m.Role == RoleUser {
			r.control("[INST]")
			r.text(space)
			if i == len(rest)-1 && hasSystem {
				r.content(system)
				r.text("\n\n")
			}
			r.content(m.Content)
			r.control("[/INST]")
		} else {
			r.text(space)
			if trimAnswer {
				r.content(trim(m.Content))
			} else {
				r.content(m.Content)
			}
			r.eos()
		}
	}
	return nil
}

// renderMistralV7: Mistral's "v7" template; messages in any order.
func renderMistralV7(r *chatRender, msgs []Message, _ bool) error {
	r.bos()
	for i, m := range msgs {
		r.at(i)
		switch m.Role {
		case RoleSystem:
			r.control("[SYSTEM_PROMPT]")
			r.text(" ")
			r.content(m.Content)
			r.control("[/SYSTEM_PROMPT]")
		case RoleUser:
			r.control("[INST]")
			r.text(" ")
			r.content(m.Content)
			r.control("[/INST]")
		default:
			r.text(" ")
			r.content(m.Content)
			r.eos()
		}
	}
	return nil
}

// renderMistralV7Tekken: Mistral's "v7 tekken" template (Small 3.x), without
// its default system prompt.
func renderMistralV7Tekken(r *chatRender, msgs []Message, _ bool) error {
	system, hasSystem, rest, first := splitSystem(msgs)
	if err := alternate(rest, first); err != nil {
		return err
	}
	r.bos()
	if hasSystem {
		r.at(0)
		r.control("[SYSTEM_PROMPT]")
		r.content(system)
		r.control("[/SYSTEM_PROMPT]")
	}
	for i, m := range rest {
		r.at(first + i)
		if m.Role == RoleUser {
			r.control("[INST]")
			r.content(m.Content)
			r.control("[/INST]")
		} else {
			r.content(m.Content)
			r.eos()
		}
	}
	return nil
}

// renderLlama2: Llama 2 chat. Every user turn starts with BOS; the first
// carries the system prompt in <<SYS>>; each turn's text is stripped.
func renderLlama2(r *chatRender, msgs []Message, _ bool) error {
	system, hasSystem, rest, first := splitSystem(msgs)
	if err := alternate(rest, first); err != nil {
		return err
	}
	for i, m := range rest {
		r.at(first + i)
		if m.Role == RoleUser {
			r.bos()
			r.control("[INST]")
			r.text(" ")
			start := len(r.pieces)
			if i == 0 && hasSystem {
				r.text("<<SYS>>\n")
				r.content(system)
				r.text("\n<</SYS>>\n\n")
			}
			r.content(m.Content)
			r.stripFrom(start)
			r.text(" ")
			r.control("[/INST]")
		} else {
			r.text(" ")
			r.content(trim(m.Content))
			r.text(" ")
			r.eos()
		}
	}
	return nil
}

func llama3Header(r *chatRender, role string) {
	r.control("<|start_header_id|>")
	r.text(role)
	r.control("<|end_header_id|>")
	r.text("\n\n")
}

// renderLlama3: Meta Llama 3 Instruct; messages in any order.
func renderLlama3(r *chatRender, msgs []Message, addGenerationPrompt bool) error {
	for i, m := range msgs {
		r.at(i)
		if i == 0 {
			r.bos()
		}
		llama3Header(r, m.Role)
		r.content(trim(m.Content))
		r.control("<|eot_id|>")
	}
	if addGenerationPrompt {
		r.generationPrompt()
		llama3Header(r, RoleAssistant)
	}
	return nil
}

// llama31Dates is what Llama 3.1's system turn starts with; the date is the
// templates' fallback for today's date.
const llama31Dates = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"

// renderLlama31: Llama 3.1, 3.2 and 3.3 Instruct, without tools.
func renderLlama31(r *chatRender, msgs []Message, addGenerationPrompt bool) error {
	system, hasSystem, rest, first := splitSystem(msgs)
	r.at(0)
	r.bos()
	llama3Header(r, RoleSystem)
	r.text(llama31Dates)
	if hasSystem {
		r.content(trim(system))
	}
	r.control("<|eot_id|>")
	for i, m := range rest {
		r.at(first + i)
		llama3Header(r, m.Role)
		r.content(trim(m.Content))
		r.control("<|eot_id|>")
	}
	if addGenerationPrompt {
		r.generationPrompt()
		llama3Header(r, RoleAssistant)
	}
	return nil
}

func chatMLTurn(r *chatRender, role string, content func()) {
	r.control("<|im_start|>")
	r.text(role + "\n")
	content()
	r.control("<|im_end|>")
	r.text("\n")
}

func chatMLGenerationPrompt(r *chatRender) {
	r.generationPrompt()
	r.control("<|im_start|>")
	r.text(RoleAssistant + "\n")
}

// renderChatML: plain ChatML; messages in any order.
func renderChatML(r *chatRender, msgs []Message, addGenerationPrompt bool) error {
	for i, m := range msgs {
		r.at(i)
		chatMLTurn(r, m.Role, func() { r.content(m.Content) })
	}
	if addGenerationPrompt {
		chatMLGenerationPrompt(r)
	}
	return nil
}

// qwen25System is the system prompt Qwen 2.5 Instruct's template writes
// when the chat has none.
const qwen25System = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

// renderQwen25: Qwen 2.5 Instruct, without tools.
func renderQwen25(r *chatRender, msgs []Message, addGenerationPrompt bool) error {
	if msgs[0].Role != RoleSystem {
		r.at(-1)
		chatMLTurn(r, RoleSystem, func() { r.text(qwen25System) })
	}
	return renderChatML(r, msgs, addGenerationPrompt)
}

// renderQwen3: Qwen 3, without tools. An answer's reasoning (up to
// "</think>") is dropped from answers before the last user message; the
// answers after it keep it, in a <think> block.
func renderQwen3(r *chatRender, msgs []Message, addGenerationPrompt bool) error {
	lastQuery := len(msgs) - 1
	for i := len(msgs) - 1; i >= 0; i-- {
		c := msgs[i].Content
		if msgs[i].Role == RoleUser && !(strings.HasPrefix(c, "<tool_response>") && strings.HasSuffix(c, "</tool_response>")) {
			lastQuery = i
			break
		}
	}
	for i, m := range msgs {
		r.at(i)
		if m.Role != RoleAssistant {
			chatMLTurn(r, m.Role, func() { r.content(m.Content) })
			continue
		}
		content, reasoning := m.Content, ""
		if before, _, ok := strings.Cut(m.Content, "</think>"); ok {
			content = strings.TrimLeft(m.Content[strings.LastIndex(m.Content, "</think>")+len("</think>"):], "\n")
			reasoning = strings.TrimRight(before, "\n")
			if j := strings.LastIndex(reasoning, "<think>"); j >= 0 {
				reasoning = reasoning[j+len("<think>"):]
			}
			reasoning = strings.TrimLeft(reasoning, "\n")
		}
		think := i > lastQuery && (i == len(msgs)-1 || reasoning != "")
		chatMLTurn(r, m.Role, func() {
			if think {
				r.control("<think>")
				r.text("\n")
				r.content(strings.Trim(reasoning, "\n"))
				r.text("\n")
				r.control("</think>")
				r.text("\n\n")
				content = strings.TrimLeft(content, "\n")
			}
			r.content(content)
		})
	}
	if addGenerationPrompt {
		chatMLGenerationPrompt(r)
	}
	return nil
}

// renderGemma: Gemma 2 and 3 instruct. The system prompt (Gemma 3's
// template; Gemma 2's has none) leads the first turn, untrimmed.
func renderGemma(r *chatRender, msgs []Message, addGenerationPrompt bool) error {
	system, hasSystem, rest, first := splitSystem(msgs)
	if err := alternate(rest, first); err != nil {
		return err
	}
	r.bos()
	for i, m := range rest {
		r.at(first + i)
		role := m.Role
		if role == RoleAssistant {
			role = "model"
		}
		r.control("<start_of_turn>")
		r.text(role + "\n")
		if i == 0 && hasSystem {
			r.content(system)
			r.text("\n\n")
		}
		r.content(trim(m.Content))
		r.control("<end_of_turn>")
		r.text("\n")
	}
	if addGenerationPrompt {
		r.generationPrompt()
		r.control("<start_of_turn>")
		r.text("model\n")
	}
	return nil
}

// renderRaw: the contents one after another; Encode tokenizes each on its
// own, after BOS where the tokenizer adds one.
func renderRaw(r *chatRender, msgs []Message, _ bool) error {
	r.at(-1)
	r.add(pieceAutoBOS, "")
	for i, m := range msgs {
		r.at(i)
		if i > 0 {
			r.add(pieceBreak, "")
		}
		r.content(m.Content)
	}
	return nil
}
