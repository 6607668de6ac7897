package bot

import (
	"strings"
	"unicode"
)

// ExtractMentions takes "@名字" mentions out of text the way WeCom and the
// playground write them: a name runs from "@" to U+2005 (the separator WeChat
// inserts after a picked name), a space, or the end of the text. It returns
// the text without the mentions and the names in order. Platforms that send
// structured mentions (DingTalk) still write "@nick" into the text, so their
// adapters use it to clean the text too.
func ExtractMentions(text string) (string, []string) {
	var (
		out   strings.Builder
		names []string
	)
	rs := []rune(text)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if (r == '@' || r == '＠') && (i == 0 || rs[i-1] == '\u2005' || unicode.IsSpace(rs[i-1]) || !isNameRune(rs[i-1])) {
			j := i + 1
			for j < len(rs) && rs[j] != '\u2005' && !unicode.IsSpace(rs[j]) && rs[j] != '@' && rs[j] != '＠' {
				j++
			}
			if j > i+1 {
				names = append(names, string(rs[i+1:j]))
				i = j // skip the separator too, unless it ends the line
				if j < len(rs) && rs[j] == '\n' {
					i = j - 1
				}
				out.WriteRune(' ')
				continue
			}
		}
		out.WriteRune(r)
	}
	return tidy(out.String()), names
}

// tidy folds runs of spaces (U+2005 included) within each line and trims
// blank lines at either end, but keeps the line breaks a resident typed:
// an address on one line and the question on the next stay apart.
func tidy(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.FieldsFunc(l, func(r rune) bool { return r == '\u2005' || unicode.IsSpace(r) }), " ")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// isNameRune tells "a@b.com" (an address, not a mention) from "你好@王警官".
func isNameRune(r rune) bool { return r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) }
