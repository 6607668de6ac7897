package main

import (
	"strings"
	"testing"
)

func TestDisplayWidthCountsChineseAsTwoColumns(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int
	}{
		{"", 0}, {"abc", 3}, {"派出所", 6}, {"（合计）", 8}, {"P90（分钟）", 11}, {"—", 1}, {"平安群🏠", 8}, {"e\u0301", 1},
	} {
		if got := displayWidth(tc.s); got != tc.want {
			t.Errorf("displayWidth(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
	var b strings.Builder
	tb := table{header: []string{"群", "提问"}, right: []bool{false, true}}
	tb.add("和谐小区业主群", "12")
	tb.add("abc", "3")
	tb.write(&b)
	want := "群              提问\n和谐小区业主群    12\nabc                3\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
