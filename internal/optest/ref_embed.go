package optest

// Embed returns x (len(tokens), cols) = row tokens[i] of table (vocab,
// cols), and a row of zeros for an id ≥ vocab.
func Embed(table []float32, tokens []uint32, vocab, cols int) []float32 {
	x := make([]float32, len(tokens)*cols)
	for i, id := range tokens {
		if int64(id) < int64(vocab) {
			copy(x[i*cols:(i+1)*cols], table[int(id)*cols:(int(id)+1)*cols])
		}
	}
	return x
}
