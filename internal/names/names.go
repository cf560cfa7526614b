package names

import (
	"strings"
	"unicode"
)

// Deceptive reports whether r changes how the text around it displays without showing
// itself: bidirectional embeddings, overrides, isolates and marks, zero-width characters,
// line and paragraph separators, and the byte order mark.
func Deceptive(r rune) bool {
	switch {
	case r == 0x061C, // Arabic letter mark
		r == 0x180E,                // Mongolian vowel separator
		0x200B <= r && r <= 0x200F, // zero width space, non-joiner, joiner; LRM, RLM
		0x2028 <= r && r <= 0x202E, // line and paragraph separators; LRE, RLE, PDF, LRO, RLO
		0x2060 <= r && r <= 0x206F, // word joiner, invisible operators; LRI, RLI, FSI, PDI; deprecated formats
		r == 0xFEFF:                // byte order mark, zero width no-break space
		return true
	}
	return false
}

// Unsafe reports whether r must not appear in a name shown or written: a control character
// or a deceptive one.
func Unsafe(r rune) bool { return unicode.IsControl(r) || Deceptive(r) }

// Strip removes every unsafe character from s.
func Strip(s string) string {
	if !strings.ContainsFunc(s, Unsafe) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if Unsafe(r) {
			return -1
		}
		return r
	}, s)
}
