// attention_split.glsl: how split-K attention (attention.glsl,
// swa_merge.comp) cuts a band of keys into splits.

// split_len is the keys of each split of a band of n keys (the last split
// may have fewer): ⌈n/S⌉ rounded up to whole tiles of `tile` keys. Splits
// past the band's end are empty. It depends on n, S and the tile only, so a
// query's splits are the same in every chunk.
uint split_len(uint n, uint splits, uint tile) {
	const uint k = (n + splits - 1) / splits;
	return (k + tile - 1) / tile * tile;
}
