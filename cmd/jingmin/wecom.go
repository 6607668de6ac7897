package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/jingminhub/jingmin/adapters/wechat"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

const wecomUsage = `usage: jingmin wecom kf-links [-config FILE]   make (once) and print each customer group's customer-service link and welcome text
       jingmin wecom consent [-config FILE]    check archive consent in each customer group and list the residents who refused`

// cmdWeCom runs the WeCom set-up tools. They call WeCom with the app's
// token (JINGMIN_WECHAT_APP_SECRET), so they need the wechat: block of the
// config; they write only their own tables (links, consent).
func cmdWeCom(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "kf-links" && args[0] != "consent") {
		fmt.Fprintln(stderr, wecomUsage)
		return errors.New("wecom: want kf-links or consent")
	}
	fs := flag.NewFlagSet("wecom "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded example)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	h, err := openTool(ctx, *configPath)
	if err != nil {
		return err
	}
	defer h.Close()
	if h.cfg.WeChat == nil {
		return fmt.Errorf("%s has no wechat: block; these tools call WeCom with the app's token", h.cfg.Source)
	}
	admin, err := wechat.NewAdmin(*h.cfg.WeChat, nil, nil)
	if err != nil {
		return err
	}
	if args[0] == "kf-links" {
		return kfLinks(ctx, h.store, h.rules, admin, stdout)
	}
	return archiveConsent(ctx, h.store, admin, time.Now(), stdout)
}

// customerGroups are the directory's WeCom customer groups (客户群), in
// the order of their chat ids: residents there are on personal WeChat, so
// customer service and archive consent are theirs.
func customerGroups(ctx context.Context, st *store.Store) ([]store.Group, error) {
	d, err := st.LoadDirectory(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Group
	for _, g := range d.Groups {
		if g.Platform == string(bot.WeChat) && g.Customer() {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChatID < out[j].ChatID })
	return out, nil
}

// kfLinks makes the customer-service link of every customer group that has
// none yet (kf/add_contact_way with the group's scene, kept in the
// database, so a resident who comes through it is known to be the group's)
// and prints each group's link and the welcome text that points to it.
func kfLinks(ctx context.Context, st *store.Store, rules *commands.Hub, admin *wechat.Admin, out io.Writer) error {
	groups, err := customerGroups(ctx, st)
	if err != nil {
		return err
	}
	have, err := st.KFLinks(ctx)
	if err != nil {
		return err
	}
	known := map[string]string{}
	for _, l := range have {
		known[l.ChatID] = l.URL
	}
	made := 0
	for _, g := range groups {
		if known[g.ChatID] != "" {
			continue
		}
		u, err := admin.KFLink(ctx, g.ChatID)
		if err != nil {
			return fmt.Errorf("group %s (%s): %w", g.Name, g.ChatID, err)
		}
		if err := st.SaveKFLink(ctx, store.KFLink{ChatID: g.ChatID, Scene: wechat.KFScene(g.ChatID), URL: u}); err != nil {
			return err
		}
		known[g.ChatID] = u
		made++
	}
	for _, g := range groups {
		welcome, err := rules.Welcome(string(bot.WeChat), g.ChatID, known[g.ChatID])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s（%s）\n  链接：%s\n  入群欢迎语：%s\n", g.Name, g.ChatID, known[g.ChatID], welcome)
	}
	fmt.Fprintf(out, "（共 %d 个群，新建链接 %d 个）\n", len(groups), made)
	return nil
}

// archiveConsent asks WeCom which members of each customer group agreed to
// archiving, keeps the answer, and prints who refused: the hub cannot see
// those residents' messages, so the station must reach them another way.
// A group WeCom does not know as a customer group is named, not fatal.
func archiveConsent(ctx context.Context, st *store.Store, admin *wechat.Admin, now time.Time, out io.Writer) error {
	groups, err := customerGroups(ctx, st)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "群\t不同意存档的居民\t时间")
	refused := 0
	var unchecked []string
	for _, g := range groups {
		members, err := admin.RoomConsent(ctx, g.ChatID)
		if err != nil {
			unchecked = append(unchecked, fmt.Sprintf("%s（%s）未能查询：%v", g.Name, g.ChatID, err))
			continue
		}
		rows := make([]store.ArchiveConsent, 0, len(members))
		for _, m := range members {
			rows = append(rows, store.ArchiveConsent{ExternalUserID: m.ExternalUserID, Agree: m.Agree, ChangedAt: m.ChangedAt})
			if !m.Agree {
				refused++
				fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, m.ExternalUserID, m.ChangedAt.In(shanghaiLoc()).Format(time.DateTime))
			}
		}
		if err := st.SaveRoomConsent(ctx, g.ChatID, rows, now); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, u := range unchecked {
		fmt.Fprintln(out, u)
	}
	fmt.Fprintf(out, "（%d 个群，%d 位居民不同意存档，%d 个群未能查询）\n", len(groups), refused, len(unchecked))
	return nil
}

func shanghaiLoc() *time.Location {
	if l, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return l
	}
	return time.FixedZone("CST", 8*3600)
}
