package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// chartIn is the SVG of the chart in the element with id, or "".
func chartIn(body, id string) string {
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := body[i:]
	if j := strings.Index(rest, "</svg>"); j >= 0 {
		return rest[:j]
	}
	return ""
}

var chartBar = regexp.MustCompile(`class="bar" data-n="(\d+)"><title>([^<]+)</title>`)

func barTitles(svg string) string {
	var out []string
	for _, m := range chartBar.FindAllStringSubmatch(svg, -1) {
		out = append(out, m[2])
	}
	return strings.Join(out, " ")
}

// The Stats page draws the first-response median and p90 per day and the
// SLA breaches per station, group and officer from the same query layer as
// `jingmin stats`, exports each as CSV, and an empty range draws charts
// that say there is nothing, not an error.
func TestConsoleStatsResponseTimesAndBreaches(t *testing.T) {
	h := startConsoleHub(t, broadcastConfig(t, 0), at("2026-11-23 10:00"))
	for _, q := range [][3]string{{"hexie", "res-1", "问题一"}, {"hexie", "res-2", "问题二"}, {"yangguang", "res-3", "问题三"}} {
		h.say(q[0], q[1], "居民", "@社区警务助手 "+q[2])
		h.settle()
	}
	h.Clock.Set(at("2026-11-23 10:04"))
	h.dm("wang", "#1 答复一")
	h.settle()
	h.Clock.Set(at("2026-11-23 10:10"))
	h.dm("wang", "#2 答复二")
	h.settle()
	h.Clock.Set(at("2026-11-23 10:30")) // #3 breaches the 15-minute SLA
	if err := h.rules.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()

	c := h.client(t)
	c.signIn("wang", "wang")
	r := c.get("/stats?from=2026-11-22&to=2026-11-24")
	if r.code != http.StatusOK {
		t.Fatalf("stats: HTTP %d\n%s", r.code, r.body)
	}
	resp := chartIn(r.body, "chart-response")
	dots := regexp.MustCompile(`<title>([^<]+)</title></circle>`).FindAllStringSubmatch(resp, -1)
	var got []string
	for _, d := range dots {
		got = append(got, d[1])
	}
	if strings.Join(got, " | ") != "11-23 中位数：4.0 分钟 | 11-23 P90：10.0 分钟" {
		t.Errorf("response chart points %q, want the median 4 and p90 10 minutes on 11-23 only", got)
	}
	if got := barTitles(chartIn(r.body, "chart-breach-stations")); got != "太平派出所：1" {
		t.Errorf("station breach bars %q, want 太平派出所 with 1", got)
	}
	if got := barTitles(chartIn(r.body, "chart-breach-groups")); !strings.Contains(got, "和谐小区业主群：0") || !strings.Contains(got, "阳光花园邻里群：1") {
		t.Errorf("group breach bars %q, want 和谐小区 0 and 阳光花园 1", got)
	}
	officers := chartBar.FindAllStringSubmatch(chartIn(r.body, "chart-breach-officers"), -1)
	breaches := 0
	for _, m := range officers {
		if m[1] == "1" {
			breaches++
		}
	}
	if len(officers) == 0 || breaches != 1 {
		t.Errorf("officer breach bars %q, want the one breach at the officer holding #3", barTitles(chartIn(r.body, "chart-breach-officers")))
	}

	csv := c.get("/stats.csv?table=response&from=2026-11-22&to=2026-11-24")
	mustContain(t, "response CSV", csv.body, "day,questions,answered,first_response_median_min,first_response_p90_min", "2026-11-22,0,0,,", "2026-11-23,3,2,4.0,10.0", "2026-11-24,0,0,,")
	csv = c.get("/stats.csv?table=officers&from=2026-11-22&to=2026-11-24")
	mustContain(t, "officers CSV", csv.body, "officer,questions,answered,sla_breaches", "王建国,")
	csv = c.get("/stats.csv?table=stations&from=2026-11-22&to=2026-11-24")
	mustContain(t, "stations CSV", csv.body, "太平派出所,3,1,4.0,10.0")

	empty := c.get("/stats?from=2026-10-01&to=2026-10-07")
	if empty.code != http.StatusOK {
		t.Fatalf("an empty range: HTTP %d\n%s", empty.code, empty.body)
	}
	if !strings.Contains(chartIn(empty.body, "chart-response"), "该时段没有答复") {
		t.Error("an empty range's response chart does not say there were no answers")
	}
	for _, id := range []string{"chart-breach-stations", "chart-breach-groups", "chart-breach-officers"} {
		if svg := chartIn(empty.body, id); !strings.Contains(svg, "该时段没有超时升级") {
			t.Errorf("an empty range's %s does not say there were no breaches: %q", id, svg)
		}
	}
}
