package plot

import (
	"fmt"
	"strings"
)

// The font: printable ASCII (32…126) drawn by hand, each glyph 5 pixels
// wide and 8 tall. Capitals and digits use the top 7 rows; the 8th row is
// for descenders (g, j, p, q, y and the comma's tail).
const (
	GlyphWidth  = 5
	GlyphHeight = 8
	// Advance is the distance from one glyph's left edge to the next's: a
	// glyph and one column of space.
	Advance = GlyphWidth + 1
)

// glyph is one character's pixels: row r, column c is on when bit
// GlyphWidth−1−c of glyph[r] is set.
type glyph [GlyphHeight]uint8

// glyphBands is the font, drawn: six bands of 16 glyphs in ASCII order from
// the space (the last band has 15), '#' a pixel that is on and '.' one
// that is off, one space between glyphs. The comment above each band
// names its characters, each over its glyph's middle column.
var glyphBands = [...]string{
	//      !     "     #     $     %     &     '     (     )     *     +     ,     -     .     /
	`
	..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... ..... ..... ..... ..... .....
	..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#
	..... ..#.. .#.#. ##### #.#.. ...#. #.#.. ..#.. .#... ...#. #.#.# ..#.. ..... ..... ..... ...#.
	..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. ##### ..... ##### ..... ..#..
	..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#.. ..... ..... ..... .#...
	..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. .##.. ..... .##.. #....
	..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... ..... ..#.. ..... .##.. .....
	..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... .....
	`,
	//0     1     2     3     4     5     6     7     8     9     :     ;     <     =     >     ?
	`
	.###. ..#.. .###. ##### ...#. ##### ..##. ##### .###. .###. ..... ..... ...#. ..... .#... .###.
	#...# .##.. #...# ...#. ..##. #.... .#... ....# #...# #...# .##.. .##.. ..#.. ..... ..#.. #...#
	#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#. #...# #...# .##.. .##.. .#... ##### ...#. ....#
	#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#.. .###. .#### ..... ..... #.... ..... ....# ...#.
	##..# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....# .##.. .##.. .#... ##### ...#. ..#..
	#...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#. .##.. ..#.. ..#.. ..... ..#.. .....
	.###. .###. ##### .###. ...#. .###. .###. .#... .###. .##.. ..... .#... ...#. ..... .#... ..#..
	..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....
	`,
	//@     A     B     C     D     E     F     G     H     I     J     K     L     M     N     O
	`
	.###. .###. ####. .###. ###.. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.
	#...# #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#
	....# #...# #...# #.... #...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#
	.##.# ##### ####. #.... #...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#
	#.#.# #...# #...# #.... #...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#
	#.#.# #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#
	.###. #...# ####. .###. ###.. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.
	..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....
	`,
	//P     Q     R     S     T     U     V     W     X     Y     Z     [     \     ]     ^     _
	`
	####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###. ..... .###. ..#.. .....
	#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#... #.... ...#. .#.#. .....
	#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#... .#... ...#. #...# .....
	####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....
	#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#... ...#. ...#. ..... .....
	#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#... ....# ...#. ..... .....
	#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###. ..... .###. ..... #####
	..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....
	`,
	//`     a     b     c     d     e     f     g     h     i     j     k     l     m     n     o
	`
	.#... ..... #.... ..... ....# ..... ..##. ..... #.... ..#.. ...#. #.... .##.. ..... ..... .....
	..#.. ..... #.... ..... ....# ..... .#..# ..... #.... ..... ..... #.... ..#.. ..... ..... .....
	...#. .###. #.##. .###. .##.# .###. .#... .#### #.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###.
	..... ....# ##..# #.... #..## #...# ###.. #...# ##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...#
	..... .#### #...# #.... #...# ##### .#... #...# #...# ..#.. ...#. ##... ..#.. #.#.# #...# #...#
	..... #...# #...# #...# #...# #.... .#... .#### #...# ..#.. ...#. #.#.. ..#.. #...# #...# #...#
	..... .#### ####. .###. .#### .###. .#... ....# #...# .###. #..#. #..#. .###. #...# #...# .###.
	..... ..... ..... ..... ..... ..... ..... .###. ..... ..... .##.. ..... ..... ..... ..... .....
	`,
	//p     q     r     s     t     u     v     w     x     y     z     {     |     }     ~
	`
	..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ...#. ..#.. .#... .....
	..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. .....
	####. .#### #.##. .#### ###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#...
	#...# #...# ##..# #.... .#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.#
	#...# #...# #.... .###. .#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#.
	####. .#### #.... ....# .#..# #..## .#.#. #.#.# .#.#. .#### .#... ..#.. ..#.. ..#.. .....
	#.... ....# #.... ####. ..##. .##.# ..#.. .#.#. #...# ....# ##### ...#. ..#.. .#... .....
	#.... ....# ..... ..... ..... ..... ..... ..... ..... .###. ..... ..... ..... ..... .....
	`,
}

// missing is drawn for a rune the font lacks: a hollow box.
var missing = glyph{0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111, 0}

// font holds the glyphs of ' ' … '~', parsed from glyphBands.
var font = mustParseFont(glyphBands[:])

// firstGlyph and lastGlyph are the runes the font covers.
const firstGlyph, lastGlyph = ' ', '~'

func mustParseFont(bands []string) []glyph {
	f, err := parseFont(bands)
	if err != nil {
		panic("plot: the font table is malformed: " + err.Error()) // the table is constant data
	}
	return f
}

// parseFont reads the bands: GlyphHeight rows each, every row holding the
// band's glyphs as GlyphWidth-character runs of '#' and '.' separated by
// one space. Leading tabs and the blank lines around a band are ignored.
func parseFont(bands []string) ([]glyph, error) {
	var f []glyph
	for b, band := range bands {
		var rows []string
		for _, line := range strings.Split(band, "\n") {
			if line = strings.TrimLeft(line, "\t"); line != "" {
				rows = append(rows, line)
			}
		}
		if len(rows) != GlyphHeight {
			return nil, fmt.Errorf("band %d has %d rows, want %d", b, len(rows), GlyphHeight)
		}
		n := (len(rows[0]) + 1) / Advance
		first := len(f)
		f = append(f, make([]glyph, n)...)
		for r, row := range rows {
			if len(row) != n*Advance-1 {
				return nil, fmt.Errorf("band %d row %d is %d characters, want %d", b, r, len(row), n*Advance-1)
			}
			for i, ch := range []byte(row) {
				k, c := i/Advance, i%Advance
				switch {
				case c == GlyphWidth && ch == ' ':
				case c < GlyphWidth && ch == '#':
					f[first+k][r] |= 1 << (GlyphWidth - 1 - c)
				case c < GlyphWidth && ch == '.':
				default:
					return nil, fmt.Errorf("band %d row %d column %d: unexpected %q", b, r, i, ch)
				}
			}
		}
	}
	if want := int(lastGlyph - firstGlyph + 1); len(f) != want {
		return nil, fmt.Errorf("%d glyphs, want %d (%q…%q)", len(f), want, firstGlyph, lastGlyph)
	}
	return f, nil
}

// Glyph returns r's pixels: row y (0 at the top), column x (0 at the left)
// is on when bit GlyphWidth−1−x of rows[y] is set. ok is false for a rune
// the font lacks (anything outside printable ASCII), whose glyph is a
// hollow box.
func Glyph(r rune) (rows [GlyphHeight]uint8, ok bool) {
	if r < firstGlyph || r > lastGlyph {
		return missing, false
	}
	return font[r-firstGlyph], true
}

// TextWidth is the width in pixels of s drawn at scale: Advance·scale per
// rune, less the space after the last.
func TextWidth(s string, scale int) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return (n*Advance - 1) * scale
}

// TextHeight is the height in pixels of a line of text at scale.
func TextHeight(scale int) int { return GlyphHeight * scale }
