package commands

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
)

// Where the platform shows the hub every message of a group, an emergency
// needs no @; chatter still draws nothing, and where only @-messages
// arrive nothing changes.
func TestEmergencyWithoutAnAtWhereThePlatformShowsEverything(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seesAll   bool
		text      string
		emergency bool
	}{
		{"playground: an emergency", true, "楼下有人打架了！快来人", true},
		{"playground: chatter", true, "今天天气不错，晚上一起散步", false},
		{"@-only platform: an emergency without an @ never arrives as one", false, "楼下有人打架了！快来人", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, when("2026-11-23 23:00"), nil)
			e := &bot.Event{ID: fmt.Sprintf("playground:m%d", r.seq.Add(1)), Platform: bot.Playground,
				Chat:   bot.ChatRef{Platform: bot.Playground, ID: "hexie", Type: bot.Group},
				Sender: bot.User{ID: "res-1", Name: "刘阿姨"}, Kind: bot.KindText, Text: tc.text, SeesAllMessages: tc.seesAll}
			r.handle(e)
			got := r.sent()
			group := to(got, "hexie")
			if !tc.emergency {
				if len(got) != 0 {
					t.Errorf("the hub reacted:\n%s", texts(got))
				}
				return
			}
			if len(group) != 1 || !strings.Contains(group[0].Text, "110") {
				t.Fatalf("the group got:\n%s\nwant the emergency guidance", texts(group))
			}
			if len(to(got, "zhao")) != 1 {
				t.Errorf("the leader was not paged:\n%s", texts(got))
			}
		})
	}
}
