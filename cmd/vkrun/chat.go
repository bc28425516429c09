package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/vkrun/vkrun"
)

func init() {
	register("chat", "an interactive chat (Mistral, Llama 2 and Gemma instruct formats)", cmdChat)
}

// chatTemplate formats user turns for one instruct family.
type chatTemplate struct {
	name string
	// turn renders a user message; first is true for the conversation's
	// first turn (which may carry the system prompt).
	turn func(msg, system string, first bool) string
	// bosEachTurn: the family starts every turn with BOS.
	bosEachTurn bool
	// prefix and suffix, when set, wrap the turn's text in control
	// tokens: they are encoded with special tokens parsed, the text
	// between them without, so a user cannot type a control token.
	prefix func(first bool) string
	suffix string
	// endTurn is the control token that ends the model's answer (fed
	// back at the next turn), besides EOS.
	endTurn string
}

var chatTemplates = map[string]chatTemplate{
	// Mistral: <s>[INST] user [/INST] answer</s>[INST] user [/INST] …
	"mistral": {name: "mistral", turn: func(msg, system string, first bool) string {
		if first && system != "" {
			msg = system + "\n\n" + msg
		}
		return "[INST] " + msg + " [/INST]"
	}},
	// Llama 2: <s>[INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] user [/INST] …
	"llama2": {name: "llama2", bosEachTurn: true, turn: func(msg, system string, first bool) string {
		if first && system != "" {
			msg = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + msg
		}
		return "[INST] " + msg + " [/INST]"
	}},
	// Gemma: <bos><start_of_turn>user\nsystem\n\nuser<end_of_turn>\n<start_of_turn>model\n
	// answer<end_of_turn>\n<start_of_turn>user\n … (no system role: the
	// system prompt leads the first user turn).
	"gemma": {name: "gemma", endTurn: "<end_of_turn>", suffix: "<end_of_turn>\n<start_of_turn>model\n",
		prefix: func(first bool) string {
			if first {
				return "<start_of_turn>user\n"
			}
			return "\n<start_of_turn>user\n" // after the answer's <end_of_turn>
		},
		turn: func(msg, system string, first bool) string {
			if first && system != "" {
				msg = system + "\n\n" + msg
			}
			return msg
		}},
	// raw: each line is appended to the text as it is.
	"raw": {name: "raw", turn: func(msg, _ string, _ bool) string { return msg }},
}

// detectTemplate recognises the family from a GGUF tokenizer.chat_template.
func detectTemplate(jinja string) (chatTemplate, bool) {
	switch {
	case strings.Contains(jinja, "<start_of_turn>") && strings.Contains(jinja, "<end_of_turn>"):
		return chatTemplates["gemma"], true
	case strings.Contains(jinja, "<<SYS>>") && strings.Contains(jinja, "[INST]"):
		return chatTemplates["llama2"], true
	case strings.Contains(jinja, "[INST]"):
		return chatTemplates["mistral"], true
	}
	return chatTemplate{}, false
}

// encode renders and encodes one user turn: the template's control tokens
// parsed as such, the user's text as plain text.
func (tmpl chatTemplate) encode(tok *vkrun.Tokenizer, msg, system string, first, bos bool) []int {
	text := tmpl.turn(msg, system, first)
	if tmpl.prefix == nil {
		return tok.EncodeWith(text, bos)
	}
	ids := tok.EncodeSpecial(tmpl.prefix(first), bos)
	ids = append(ids, tok.EncodeWith(text, false)...)
	return append(ids, tok.EncodeSpecial(tmpl.suffix, false)...)
}

func cmdChat(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	tmplName := fs.String("template", "", "chat format: mistral, llama2, gemma or raw (default: recognised from the file)")
	system := fs.String("system", "", "system prompt")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vkrun chat: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := f.check(); err != nil {
		fmt.Fprintf(stderr, "vkrun chat: %v\n", err)
		return 2
	}
	if f.model == "" {
		fmt.Fprintln(stderr, "vkrun chat: give a model with -m (an instruct model, e.g. Mistral-7B-Instruct)")
		return 2
	}
	if f.seed == 0 {
		f.seed = uint64(time.Now().UnixNano())
	}
	var tmpl chatTemplate
	if *tmplName != "" {
		t, ok := chatTemplates[*tmplName]
		if !ok {
			fmt.Fprintf(stderr, "vkrun chat: --template %q is not one of mistral, llama2, gemma, raw\n", *tmplName)
			return 2
		}
		tmpl = t
	}

	m, err := vkrun.Load(context.Background(), f.model, append(f.loadOptions(), vkrun.WithProgress(progressPrinter(stderr, false)))...)
	if err != nil {
		fmt.Fprintf(stderr, "vkrun chat: %s\n", oneLine(err))
		return 1
	}
	defer m.Close()
	printNotes(stderr, m)
	if tmpl.turn == nil {
		t, ok := detectTemplate(m.ChatTemplate())
		if !ok {
			fmt.Fprintln(stderr, "vkrun chat: the model has no Mistral, Llama or Gemma chat template; choose one with --template mistral|llama2|gemma|raw")
			return 2
		}
		tmpl = t
	}
	tok := m.Tokenizer()
	if tok == nil {
		fmt.Fprintln(stderr, "vkrun chat: the model has no tokenizer")
		return 1
	}
	printKVCache(stderr, m)
	s, err := m.NewSession()
	if err != nil {
		fmt.Fprintf(stderr, "vkrun chat: %s\n", oneLine(err))
		return 1
	}
	fmt.Fprintf(stderr, "device: %s; template %s; Ctrl-C stops an answer, Ctrl-D quits\n", m.Device.Name, tmpl.name)

	// Ctrl-C cancels the answer in progress, not the program.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	first := true
	for {
		fmt.Fprint(stderr, "> ")
		if !in.Scan() {
			fmt.Fprintln(stderr)
			break // Ctrl-D
		}
		msg := strings.TrimSpace(in.Text())
		if msg == "" {
			continue
		}
		ids := tmpl.encode(tok, msg, *system, first, s.Pos() == 0 && tok.AddBOS())
		if tmpl.bosEachTurn && s.Pos() > 0 {
			ids = append([]int{tok.BOS()}, ids...)
		}
		first = false
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-sigs:
				cancel()
			case <-ctx.Done():
			}
		}()
		gopts := append(f.generateOptions(), vkrun.WithPromptTokens(ids))
		if id, ok := tok.Lookup(tmpl.endTurn); ok && tmpl.endTurn != "" {
			gopts = append(gopts, vkrun.WithStopTokens(id))
		}
		for t, err := range s.Generate(ctx, "", gopts...) {
			if err != nil {
				if errors.Is(err, context.Canceled) {
					fmt.Fprint(stderr, " [stopped]")
				} else {
					fmt.Fprintf(stderr, "\nvkrun chat: %s\n", oneLine(err))
				}
				break
			}
			fmt.Fprint(stdout, t.Text)
		}
		cancel()
		fmt.Fprintln(stdout)
	}
	st := s.Stats()
	limit := "no limit: every layer slides a window"
	if ctx := m.Context(); ctx > 0 {
		limit = fmt.Sprintf("of %d", ctx)
	}
	fmt.Fprintf(stderr, "prefill %d tokens, %.1f tok/s | decode %d tokens, %.1f tok/s | %d positions in the cache (%s)\n",
		st.PromptTokens, st.PrefillRate(), st.Generated, st.DecodeRate(), s.Pos(), limit)
	return 0
}
