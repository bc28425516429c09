// attention_split.glsl: the band arithmetic that the attention bodies
// (attention.glsl, attention_keys.glsl) and swa_merge.comp share: where a
// query's band of keys starts, how many sinks precede it, and how split-K
// attention cuts the query's keys into splits.

// band_keys is the most keys of one query's band: the window W, or, for a
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

// attended is the keys the query at position pos attends: the sinks before
// its band, keys [0, min(sinks, lo)) with lo its band's first key, then the
// band lo … pos; a key in both is counted once, in the band. With no sinks
// it is the band's length.
uint attended(uint pos, uint window, uint slots, uint sinks) {
	const uint lo = band_first(pos, band_keys(window, slots));
	return min(sinks, lo) + pos - lo + 1;
}

// split_len is the keys of each split of a query's n keys, its sinks and
// then its band taken as one sequence (the last split may have fewer):
// ⌈n/S⌉ rounded up to whole tiles of `tile` keys. Splits past the last key
// are empty. It depends on n, S and the tile only, so a
// query's splits are the same in every chunk.
uint split_len(uint n, uint splits, uint tile) {
	const uint k = (n + splits - 1) / splits;
	return (k + tile - 1) / tile * tile;
}
