// attention_split.glsl: the band arithmetic that the attention bodies
// (attention.glsl, attention_keys.glsl) and swa_merge.comp share: where a
// query's band of keys starts, and how split-K attention cuts it into splits.

// band_keys is the most keys one query attends: the window W, or, for a
// global ring (window 0), its slots. A global ring's positions stay below its
// slots (the caller's contract), so its bands start at key 0; past that it
// attends the last `slots` keys and never reads an overwritten slot.
uint band_keys(uint window, uint slots) {
	return window != 0 ? window : slots;
}

// band_first is the first key of the band of the query at position pos:
// max(0, pos − b + 1) for a band of at most b keys, pos itself included.
uint band_first(uint pos, uint b) {
	return pos >= b ? pos - b + 1 : 0;
}

// split_len is the keys of each split of a band of n keys (the last split
// may have fewer): ⌈n/S⌉ rounded up to whole tiles of `tile` keys. Splits
// past the band's end are empty. It depends on n, S and the tile only, so a
// query's splits are the same in every chunk.
uint split_len(uint n, uint splits, uint tile) {
	const uint k = (n + splits - 1) / splits;
	return (k + tile - 1) / tile * tile;
}
