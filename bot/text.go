package bot

import "strings"

// CleanText removes from platform text the characters that change how text
// around them is shown rather than showing anything themselves: control
// characters (U+0000–U+001F except newline and tab, and U+007F) and the
// bidirectional embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069). With them a resident could make "#12 办结" read as
// something else in an officer's client, or hide part of a message. Every
// adapter applies it to residents' text and names while normalising.
func CleanText(s string) string {
	if strings.IndexFunc(s, unwanted) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unwanted(r) {
			return -1
		}
		return r
	}, s)
}

func unwanted(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
