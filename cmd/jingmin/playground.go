package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jingminhub/jingmin/adapters/playground"
	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// playgroundRecord is the playground's view of the database: the chats'
// history after a restart (the adapter keeps transcripts in memory only)
// and, from the rules, which tickets a viewer may answer.
type playgroundRecord struct {
	store *store.Store
	rules *commands.Hub
}

var _ playground.Record = playgroundRecord{}

// History merges the messages the hub sent into the chat and the
// questions residents filed from it: what the page showed, less residents'
// chatter the hub never kept and officers' commands. Messages are in the
// order they were written; a question goes just before the first message
// about its ticket (its acknowledgement, written in the ticket's own
// transaction), or by its time when the chat got none.
func (r playgroundRecord) History(ctx context.Context, t bot.ChatType, id string) ([]playground.Line, error) {
	sent, err := r.store.SentToChat(ctx, string(bot.Playground), string(t), id, playground.MaxLines)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	asked, err := r.store.TicketsFromChat(ctx, string(bot.Playground), string(t), id, playground.MaxLines)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	first := map[uint]int{} // ticket → its first message's index in sent
	for i, m := range sent {
		if m.TicketID != nil {
			if _, ok := first[*m.TicketID]; !ok {
				first[*m.TicketID] = i
			}
		}
	}
	type written struct {
		at   time.Time
		line playground.Line
	}
	question := func(tk store.Ticket, at time.Time) written {
		name := tk.ResidentName
		if name == "" {
			name = tk.ResidentID
		}
		return written{at, playground.Line{From: tk.ResidentID, FromName: name, Text: tk.Question, Time: tk.CreatedAt, Key: tk.SourceEventID}}
	}
	before := map[int][]store.Ticket{}
	var loose []store.Ticket
	for _, tk := range asked {
		if i, ok := first[tk.ID]; ok {
			before[i] = append(before[i], tk)
		} else {
			loose = append(loose, tk)
		}
	}
	all := make([]written, 0, len(sent)+len(asked))
	for i, m := range sent {
		for _, tk := range before[i] {
			all = append(all, question(tk, m.CreatedAt))
		}
		l := playground.Line{From: "bot", FromName: playground.BotName, Bot: true, Text: m.Text, Format: m.Format, Time: m.CreatedAt, Key: m.Key}
		if m.SentAt != nil {
			l.Time = *m.SentAt
		}
		if m.AtUsers != "" {
			l.At = strings.Split(m.AtUsers, ",")
		}
		if m.TicketID != nil {
			l.TicketID = *m.TicketID
		}
		all = append(all, written{m.CreatedAt, l})
	}
	for _, tk := range loose {
		i, _ := slices.BinarySearchFunc(all, tk.CreatedAt, func(w written, at time.Time) int {
			if w.at.After(at) {
				return 1
			}
			return -1
		})
		all = slices.Insert(all, i, question(tk, tk.CreatedAt))
	}
	all = all[max(0, len(all)-playground.MaxLines):]
	lines := make([]playground.Line, len(all))
	for i, w := range all {
		lines[i] = w.line
	}
	return lines, nil
}

// Tickets asks the rules which tickets user reaches, and which are open.
func (r playgroundRecord) Tickets(ctx context.Context, user string, ticketIDs []uint) (map[uint]playground.TicketState, error) {
	own, err := r.rules.OwnTickets(ctx, bot.Playground, user, ticketIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[uint]playground.TicketState, len(own))
	for id, t := range own {
		out[id] = playground.TicketState{Number: t.Number, Open: t.Open}
	}
	return out, nil
}
