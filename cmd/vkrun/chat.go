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
	register("chat", "an interactive chat in the model's instruct format (Mistral, Llama, Qwen, Gemma, ...)", cmdChat)
}

// chatTemplate picks the chat template: the one named by --template, else
// the family of the file's own (Jinja) chat template.
func chatTemplate(name, jinja string) (vkrun.ChatTemplate, error) {
	names := strings.Join(vkrun.ChatTemplateNames(), ", ")
	if name != "" {
		t, err := vkrun.ChatTemplateByName(name)
		if err != nil {
			return t, fmt.Errorf("--template %q is not one of %s", name, names)
		}
		return t, nil
	}
	if t, ok := vkrun.ChatTemplateFor(jinja); ok {
		return t, nil
	}
	what := "has no chat template"
	if jinja != "" {
		what = "has a chat template of no family vkrun knows"
	}
	return vkrun.ChatTemplate{}, fmt.Errorf("the model %s; choose one with --template (%s)", what, names)
}

// chatState is what the session holds of the chat, so that each turn feeds
// only what is new.
type chatState struct {
	tmpl   vkrun.ChatTemplate
	tok    *vkrun.Tokenizer
	system string
	held   []vkrun.Message // the chat the session holds; it ends with an answer
	ended  bool            // that answer ended with its end-of-turn token, which the session feeds next
	stale  bool            // the session holds part of a turn (a prefill was cut): start again
	asked  []vkrun.Message // the turn being answered
	// restarted says that the template rendered the chat afresh (see
	// ChatTemplate.Continue), so the whole chat was fed again.
	restarted bool
}

// prompt returns the tokens that ask the user's next message, and whether
// the session must be reset before they are fed.
func (c *chatState) prompt(text string) (ids []int, reset bool, err error) {
	c.asked = []vkrun.Message{{Role: vkrun.RoleUser, Content: text}}
	if len(c.held) == 0 && c.system != "" {
		c.asked = append([]vkrun.Message{{Role: vkrun.RoleSystem, Content: c.system}}, c.asked...)
	}
	if len(c.held) == 0 || c.stale {
		ids, err = c.tmpl.Encode(c.tok, append(c.held[:len(c.held):len(c.held)], c.asked...), true)
		return ids, c.stale, err
	}
	ids, reset, err = c.tmpl.Continue(c.tok, c.held, c.ended, c.asked)
	c.restarted = c.restarted || reset
	return ids, reset, err
}

// answered records the answer to the turn prompt asked for; ended says that
// it ended with an end-of-turn token rather than at the token limit or a
// cancel.
func (c *chatState) answered(text string, ended bool) {
	c.held = append(c.held, c.asked...)
	c.held = append(c.held, vkrun.Message{Role: vkrun.RoleAssistant, Content: text})
	c.ended, c.stale, c.asked = ended, false, nil
}

// lost records that the turn was not answered and that the session may hold
// part of it: the next turn starts again from the chat before it.
func (c *chatState) lost() { c.stale, c.asked = true, nil }

func cmdChat(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	tmplName := fs.String("template", "", "chat format, one of "+strings.Join(vkrun.ChatTemplateNames(), ", ")+" (default: recognised from the file's chat template)")
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
	if *tmplName != "" {
		if _, err := chatTemplate(*tmplName, ""); err != nil {
			fmt.Fprintf(stderr, "vkrun chat: %v\n", err)
			return 2
		}
	}
	if f.seed == 0 {
		f.seed = uint64(time.Now().UnixNano())
	}

	m, err := vkrun.Load(context.Background(), f.model, append(f.loadOptions(), vkrun.WithProgress(progressPrinter(stderr, false)))...)
	if err != nil {
		fmt.Fprintf(stderr, "vkrun chat: %s\n", oneLine(err))
		return 1
	}
	defer m.Close()
	printNotes(stderr, m)
	tmpl, err := chatTemplate(*tmplName, m.ChatTemplate())
	if err != nil {
		fmt.Fprintf(stderr, "vkrun chat: %v\n", err)
		return 2
	}
	tok := m.Tokenizer()
	if tok == nil {
		fmt.Fprintln(stderr, "vkrun chat: the model has no tokenizer")
		return 1
	}
	s, err := m.NewSession()
	if err != nil {
		fmt.Fprintf(stderr, "vkrun chat: %s\n", oneLine(err))
		return 1
	}
	fmt.Fprintf(stderr, "device: %s; template %s; Ctrl-C stops an answer, Ctrl-D quits\n", m.Device.Name, tmpl.Name())

	// Ctrl-C cancels the answer in progress, not the program.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)

	chat := &chatState{tmpl: tmpl, tok: tok, system: *system}
	stops := tmpl.StopTokens(tok)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
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
		told := chat.restarted
		ids, reset, err := chat.prompt(msg)
		if err != nil {
			fmt.Fprintf(stderr, "vkrun chat: %v\n", err)
			return 1
		}
		if reset {
			s.Reset()
		}
		if chat.restarted && !told {
			fmt.Fprintf(stderr, "vkrun chat: the %s template renders the chat afresh as it grows; each turn feeds the whole chat again\n", tmpl.Name())
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-sigs:
				cancel()
			case <-ctx.Done():
			}
		}()
		gopts := append(f.generateOptions(), vkrun.WithPromptTokens(ids), vkrun.WithStopTokens(stops...))
		var answer strings.Builder
		generated := 0
		var genErr error
		for t, err := range s.Generate(ctx, "", gopts...) {
			if err != nil {
				genErr = err
				if errors.Is(err, context.Canceled) {
					fmt.Fprint(stderr, " [stopped]")
				} else {
					fmt.Fprintf(stderr, "\nvkrun chat: %s\n", oneLine(err))
				}
				break
			}
			if t.ID >= 0 {
				generated++
			}
			answer.WriteString(t.Text)
			fmt.Fprint(stdout, t.Text)
		}
		cancel()
		fmt.Fprintln(stdout)
		if genErr != nil && generated == 0 {
			chat.lost() // the prefill may have been cut short
		} else {
			chat.answered(answer.String(), genErr == nil && generated < f.n)
		}
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
