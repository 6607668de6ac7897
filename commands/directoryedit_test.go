package commands_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// An unknown chat registered in one click is routed from the next
// question on, and the registration is audited.
func TestRegisterUnknownGroup(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	r.handle(r.ask("new-chat", "res-9", "周先生", "小区门口有人摆摊"))
	unknown, err := r.st.UnknownChats(r.ctx())
	if err != nil || len(unknown) != 1 {
		t.Fatalf("unknown chats %+v, %v", unknown, err)
	}
	r.written()
	a := commands.Actor{OfficerID: r.id("zhao"), Name: "zhao 赵刚", Via: store.AuditConsole}
	li := r.id("li")
	if _, err := r.hub.SaveGroup(r.ctx(), a, commands.GroupInput{Platform: unknown[0].Platform, ChatID: unknown[0].ChatID, Name: "新登记的群",
		StationID: r.stations["taiping"], OfficerID: &li, Tags: []string{"住宅"}}); err != nil {
		t.Fatal(err)
	}
	r.handle(r.ask("new-chat", "res-9", "周先生", "小区门口有人摆摊"))
	r.expect("a question in the registered group",
		msg{bot.PurposeAck, "group new-chat @res-9", []string{"工单 #1", "李明"}},
		msg{bot.PurposeAssign, "dm li", []string{"新登记的群"}})
	if rows := r.audit("directory.group.create"); len(rows) != 1 || !strings.Contains(rows[0].After, "新登记的群") {
		t.Errorf("audit: %+v", rows)
	}
}

// Edits of a row another admin changed or deleted meanwhile are refused
// as conflicts; bad input is refused with its reason.
func TestDirectoryEditsRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	a := commands.Actor{OfficerID: r.id("zhao"), Name: "zhao 赵刚", Via: store.AuditConsole}
	other := r.secondHub()
	var hexie *store.Group
	for _, g := range r.hub.Groups(r.stations["taiping"]) {
		if g.ChatID == "hexie" {
			hexie = g
		}
	}
	in := commands.GroupInput{ID: hexie.ID, Version: hexie.Version, Name: "和谐小区业主一群", StationID: hexie.StationID, OfficerID: hexie.OfficerID}
	if _, err := r.hub.SaveGroup(r.ctx(), a, in); err != nil {
		t.Fatal(err)
	}
	in.Name = "和谐小区业主二群"
	if _, err := other.SaveGroup(r.ctx(), a, in); !errors.Is(err, store.ErrConflict) {
		t.Errorf("edit over another admin's edit: %v", err)
	}
	if err := r.hub.DeleteGroup(r.ctx(), a, hexie.ID, hexie.Version+1); err != nil {
		t.Fatal(err)
	}
	in.Version++
	if _, err := other.SaveGroup(r.ctx(), a, in); !errors.Is(err, store.ErrConflict) {
		t.Errorf("edit of a group deleted meanwhile: %v", err)
	}
	sun := r.id("sun")
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"another station's leader", r.hub.UpdateStation(r.ctx(), a, commands.StationInput{ID: r.stations["taiping"], Name: "太平派出所", SLAMinutes: 15, LeaderID: &sun}), "孙强属于新成派出所"},
		{"zero SLA", r.hub.UpdateStation(r.ctx(), a, commands.StationInput{ID: r.stations["taiping"], Name: "太平派出所", SLAMinutes: 0}), "1 到 1440"},
		{"unknown role", func() error {
			_, err := r.hub.SaveOfficer(r.ctx(), a, commands.OfficerInput{StationID: r.stations["taiping"], Code: "x", Name: "新人", Roles: []string{"boss"}})
			return err
		}(), "角色 \"boss\" 不认识"},
		{"customer group without owner", func() error {
			_, err := r.hub.SaveGroup(r.ctx(), a, commands.GroupInput{Platform: "wechat", ChatID: "wr1", Name: "客户群", StationID: r.stations["taiping"], Kind: store.GroupKindCustomer})
			return err
		}(), "群主"},
		{"template losing a placeholder", r.hub.SaveTemplate(r.ctx(), commands.Actor{Via: store.AuditCLI}, "ack", "收到。", 0), "{number}"},
	}
	for _, c := range cases {
		var bad *commands.InvalidError
		if !errors.As(c.err, &bad) || !strings.Contains(bad.Msg, c.want) {
			t.Errorf("%s: %v, want %q", c.name, c.err, c.want)
		}
	}
	if err := r.hub.SaveTemplate(r.ctx(), a, "ack", "收到 #{number} {assignee}", 0); !errors.Is(err, commands.ErrForbidden) {
		t.Errorf("a station admin changing shared templates: %v", err)
	}
}

// "Try a question" names the entry the rules would answer with.
func TestTryFAQ(t *testing.T) {
	t.Parallel()
	r := newRig(t, "2026-11-23 10:00")
	for q, want := range map[string]string{"请问居住证怎么办": "居住证", "身份证丢了要补办": "身份证", "楼上噪音太大": "非警务求助", "我家猫丢了": ""} {
		f, err := r.hub.TryFAQ(r.stations["taiping"], q)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if f != nil {
			got = f.Topic
		}
		if got != want {
			t.Errorf("%q answered by %q, want %q", q, got, want)
		}
	}
	if p := commands.PreviewTemplate("收到，已登记为工单 #{number}。{assignee}会尽快答复您。"); p != "收到，已登记为工单 #128。王警官会尽快答复您。" {
		t.Errorf("preview: %s", p)
	}
}
