package loader

import "unicode/utf8"

// This file holds the merge engine that all tokenizer front ends share.
//
// A word starts as one symbol per character (or per byte, for characters the
// vocabulary lacks; byte-level BPE always starts from bytes). Adjacent symbols are merged pair by pair: always the
// candidate pair with the best priority, and among equal priorities the
// leftmost. SentencePiece BPE ranks a pair by the score of the piece it makes
// (higher first); a Hugging Face merge list ranks it by its line number (lower
// first), as does a GGUF merge list (tokenizer.ggml.merges), stored here as
// −rank so that "higher is better" holds for all.
//
// The symbols form a doubly linked list inside one slice, and the candidates
// sit in a binary heap. A candidate is checked when it is popped: if either of
// its symbols has changed since it was pushed, it is stale and dropped. Each
// merge pushes at most two candidates, so a word of n symbols costs
// O(n log n) rather than the O(n²) of rescanning all pairs after each merge.

// pairKey packs two token ids into a map key.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// mergeRule is what a pair of adjacent tokens becomes, and how urgently.
type mergeRule struct {
	prio   float64 // higher merges first
	result int32
}

// symbol is one node of the linked list over a word.
type symbol struct {
	id         int32
	prev, next int32 // indexes into the symbol slice; -1 at the ends
	frozen     bool  // user-defined pieces never merge (SentencePiece semantics)
}

// candidate is a pair that may be merged: symbols left and right (right is
// left's successor when pushed), which then held ids leftID and rightID.
type candidate struct {
	prio            float64
	left, right     int32
	leftID, rightID int32
	result          int32
}

// before orders the heap: best priority first, then leftmost.
func (c candidate) before(d candidate) bool {
	if c.prio != d.prio {
		return c.prio > d.prio
	}
	return c.left < d.left
}

type candidateHeap []candidate

func (h *candidateHeap) push(c candidate) {
	*h = append(*h, c)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].before(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *candidateHeap) pop() candidate {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		best := l
		if r := l + 1; r < len(s) && s[r].before(s[l]) {
			best = r
		}
		if !s[best].before(s[i]) {
			break
		}
		s[i], s[best] = s[best], s[i]
		i = best
	}
	*h = s
	return top
}

// bpeWord tokenizes one normalized word and appends its ids to out.
func (t *Tokenizer) bpeWord(word string, out []int32) []int32 {
	if word == "" {
		return out
	}
	if t.ignoreMerges {
		if id, ok := t.normalID[word]; ok {
			return append(out, id)
		}
	}
	syms := make([]symbol, 0, len(word))
	add := func(id int32, frozen bool) {
		n := int32(len(syms))
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1, frozen: frozen})
	}
	for i := 0; i < len(word); {
		if t.frozen != nil {
			if id, n := t.frozen.match(word[i:]); n > 0 {
				add(id, true)
				i += n
				continue
			}
		}
		_, n := utf8.DecodeRuneInString(word[i:])
		if id, ok := t.normalID[word[i:i+n]]; ok {
			add(id, false)
		} else {
			// Byte fallback: every byte of the character, or one unknown
			// token when a byte is missing. Invalid UTF-8 arrives here one
			// byte at a time (n == 1), so it round-trips through byte tokens.
			all := t.byteFallback
			for k := 0; k < n && all; k++ {
				all = t.byteID[word[i+k]] >= 0
			}
			switch {
			case all:
				for k := 0; k < n; k++ {
					add(t.byteID[word[i+k]], false)
				}
			case t.unk >= 0:
				add(int32(t.unk), true)
			}
			// Otherwise the character is dropped; construction refuses
			// vocabularies where that can happen.
		}
		i += n
	}
	var heap candidateHeap
	return t.mergeSymbols(syms, &heap, out)
}

// mergeSymbols merges a word's symbols (linked in order; the last one's next
// is set here) pair by pair and appends the resulting ids to out. heap is
// scratch space, reused across words.
func (t *Tokenizer) mergeSymbols(syms []symbol, heap *candidateHeap, out []int32) []int32 {
	if len(syms) == 0 {
		return out
	}
	syms[len(syms)-1].next = -1
	*heap = (*heap)[:0]
	try := func(l int32) {
		if l < 0 {
			return
		}
		r := syms[l].next
		if r < 0 || syms[l].frozen || syms[r].frozen {
			return
		}
		m, ok := t.merges[pairKey(syms[l].id, syms[r].id)]
		if !ok {
			return
		}
		heap.push(candidate{prio: m.prio, left: l, right: r, leftID: syms[l].id, rightID: syms[r].id, result: m.result})
	}
	for i := range syms {
		try(int32(i))
	}
	for len(*heap) > 0 {
		c := heap.pop()
		l, r := &syms[c.left], &syms[c.right]
		if l.id != c.leftID || r.id != c.rightID || l.next != c.right {
			continue // stale: one side has merged since
		}
		l.id = c.result
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.left
		}
		r.id, r.prev, r.next = -1, -1, -1
		try(l.prev)
		try(c.left)
	}

	prevUnk := false
	for i := int32(0); i >= 0; i = syms[i].next {
		id := syms[i].id
		if id == int32(t.unk) {
			if prevUnk && t.fuseUnk {
				continue // a run of unknowns is one unknown (SentencePiece, HF fuse_unk)
			}
			prevUnk = true
		} else {
			prevUnk = false
		}
		out = append(out, id)
	}
	return out
}
