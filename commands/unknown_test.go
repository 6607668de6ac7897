package commands

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/bot/markdown"
	"github.com/jingminhub/jingmin/configs"
)

// An unregistered group that speaks reaches the admins who can register
// it, once: the station's admins when someone of the station is there, the
// district admins otherwise.
func TestUnknownGroupTellsItsAdminsOnce(t *testing.T) {
	withDistrictAdmin := func(cfg *configs.Config, _ *Options) {
		cfg.Officers = append(cfg.Officers, configs.Officer{Code: "qian", Station: "taiping", Name: "钱局", Roles: []string{"district_admin"},
			Identities: map[string]string{"playground": "qian"}})
	}
	for _, tc := range []struct {
		name   string
		edit   func(*configs.Config, *Options)
		sender string
		admin  string
		not    string
	}{
		{"no district admin: the station admins", nil, "res-1", "zhao", ""},
		{"station unknown: the district admins", withDistrictAdmin, "res-1", "qian", "zhao"},
		{"an officer of the station speaks there: its admins", withDistrictAdmin, "li", "zhao", "qian"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, weekdayMorning, tc.edit)
			var all []bot.Outbound
			for range 3 {
				e := &bot.Event{ID: fmt.Sprintf("playground:m%d", r.seq.Add(1)), Platform: bot.Playground,
					Chat:   bot.ChatRef{Platform: bot.Playground, ID: "gr-new-77", Type: bot.Group, Name: "枫林苑*业主*群"},
					Sender: bot.User{ID: tc.sender, Name: "某人"}, Kind: bot.KindText, Text: "请问这里能找民警吗",
					AddressedToBot: true, Mentions: []bot.Mention{{Name: "社区警务助手", IsBot: true}}}
				r.handle(e)
				all = append(all, r.sent()...)
			}
			dms := to(all, tc.admin)
			if len(dms) != 1 {
				t.Fatalf("%s got %d notices for three messages, want 1:\n%s", tc.admin, len(dms), texts(all))
			}
			// The group's name comes from outside: escaped for the DM's markdown.
			for _, want := range []string{"playground", "gr-new-77", markdown.Escape(bot.Playground, "枫林苑*业主*群"), "groups", "jingmin sync"} {
				if !strings.Contains(dms[0].Text, want) {
					t.Errorf("the notice lacks %q:\n%s", want, dms[0].Text)
				}
			}
			if tc.not != "" && len(to(all, tc.not)) != 0 {
				t.Errorf("%s was told too:\n%s", tc.not, texts(all))
			}
			if n := len(to(all, "gr-new-77")); n != 3 {
				t.Errorf("the group got %d replies for three messages, want 3", n)
			}
		})
	}
}
