package main

import (
	"io"
	"strings"
	"unicode"

	"github.com/mattn/go-runewidth"
)

// table lines up columns by their width on a terminal, so that names in wide characters (CJK,
// emoji) keep the columns after them aligned, which text/tabwriter, counting runes, does not.
// Control characters in cells (a name from the network may hold any) are shown as '?'.
type table struct {
	w    io.Writer
	rows [][]string
}

func newTable(w io.Writer, header ...string) *table {
	return &table{w: w, rows: [][]string{header}}
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return '?'
			}
			return r
		}, c)
	}
	t.rows = append(t.rows, cells)
}

// flush writes the rows, each column padded to its widest cell plus two spaces; the last column
// is not padded.
func (t *table) flush() error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], runewidth.StringWidth(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-runewidth.StringWidth(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}
