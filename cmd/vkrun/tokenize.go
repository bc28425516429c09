package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/vkrun/vkrun/loader"
)

func init() {
	register("tokenize", "print the token ids and pieces of a text", cmdTokenize)
}

// cmdTokenize implements `vkrun tokenize -m FILE [-p TEXT | -f FILE] [--special]
// [--no-bos] [--json]`, after llama.cpp's llama-tokenize. Without -p and -f it
// reads the text from stdin. Text from a file or stdin is taken byte for byte:
// nothing is trimmed and no newline is added. Only the tokenizer is read, so
// FILE may be a vocab-only GGUF, a tokenizer.json or a checkpoint directory.
func cmdTokenize(args []string, stdout, stderr io.Writer) int {
	return tokenize(args, os.Stdin, stdout, stderr)
}

// tokenizeOutput is the --json form.
type tokenizeOutput struct {
	IDs []int `json:"ids"`
	// Pieces holds what each token stands for: a string when it is valid
	// UTF-8, else its bytes as an array of numbers (a byte-level token may
	// hold part of a character), as llama.cpp's server does.
	Pieces []any `json:"pieces"`
}

func tokenize(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var model, prompt, file string
	fs.StringVar(&model, "m", "", "a GGUF file (a vocab-only one is enough), a tokenizer.json, or a checkpoint directory")
	fs.StringVar(&model, "model", "", "same as -m")
	fs.StringVar(&prompt, "p", "", "the text")
	fs.StringVar(&prompt, "prompt", "", "same as -p")
	fs.StringVar(&file, "f", "", "read the text from a file (default: stdin)")
	fs.StringVar(&file, "file", "", "same as -f")
	special := fs.Bool("special", false, "control tokens written in the text (<|eot_id|>, [INST]) become those tokens")
	noBOS := fs.Bool("no-bos", false, "do not add BOS, even if the vocabulary asks for it")
	asJSON := fs.Bool("json", false, `print {"ids": [...], "pieces": [...]}`)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vkrun tokenize -m FILE [-p TEXT | -f FILE] [--special] [--no-bos] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "vkrun tokenize: "+format+"\n", a...)
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(2, "unexpected argument %q (the text goes after -p)", fs.Arg(0))
	case model == "":
		return fail(2, "-m FILE is required")
	case (set["p"] || set["prompt"]) && (set["f"] || set["file"]):
		return fail(2, "give only one of -p and -f")
	}

	var text string
	switch {
	case set["p"] || set["prompt"]:
		text = prompt
	case set["f"] || set["file"]:
		b, err := os.ReadFile(file)
		if err != nil {
			return fail(1, "%s", oneLine(err))
		}
		text = string(b)
	default:
		if f, ok := stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return fail(2, "no text: give -p TEXT or -f FILE, or pipe it to stdin")
			}
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return fail(1, "reading stdin: %s", oneLine(err))
		}
		text = string(b)
	}

	tok, err := loader.LoadTokenizer(model)
	if err != nil {
		return fail(1, "%s", oneLine(err))
	}
	opts := []loader.EncodeOption{loader.ParseSpecial(*special)}
	if *noBOS {
		opts = append(opts, loader.WithBOS(false))
	}
	ids := tok.Encode(text, opts...)

	if *asJSON {
		out := tokenizeOutput{IDs: ids, Pieces: make([]any, len(ids))}
		for i, id := range ids {
			out.Pieces[i] = jsonPiece(tok.TokenText(id))
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return fail(1, "%s", oneLine(err))
		}
		return 0
	}
	for _, id := range ids {
		fmt.Fprintf(stdout, "%6d -> %q\n", id, tok.TokenText(id))
	}
	return 0
}

// jsonPiece is a piece as JSON can hold it exactly: the string, or its bytes.
func jsonPiece(s string) any {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = int(s[i])
	}
	return b
}
