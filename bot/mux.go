package bot

import (
	"context"
	"strings"
)

// Handler handles one event. Returning an error asks the router to deliver the
// event again later; a handler must therefore be idempotent, which the Dedup
// middleware and idempotency keys on Outbound make cheap.
type Handler interface {
	Handle(ctx context.Context, e *Event) error
}

// HandlerFunc adapts a function to Handler, as http.HandlerFunc does.
type HandlerFunc func(ctx context.Context, e *Event) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, e *Event) error { return f(ctx, e) }

// Middleware wraps a handler with behaviour every event needs (recovery,
// logging, de-duplication).
type Middleware func(Handler) Handler

// Chain applies middleware so that the first listed runs outermost.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Matcher decides whether a route takes an event.
type Matcher func(e *Event) bool

// Mux dispatches an event to the first route whose matcher takes it, like
// http.ServeMux dispatches on a pattern; what no route takes goes to NotFound.
type Mux struct {
	routes   []muxRoute
	NotFound Handler
}

type muxRoute struct {
	match Matcher
	h     Handler
}

var _ Handler = (*Mux)(nil)

// Handle adds a route; routes are tried in the order they were added.
func (m *Mux) Route(match Matcher, h Handler) { m.routes = append(m.routes, muxRoute{match, h}) }

// RouteFunc is Route for a function.
func (m *Mux) RouteFunc(match Matcher, f func(ctx context.Context, e *Event) error) {
	m.Route(match, HandlerFunc(f))
}

// Handle dispatches e.
func (m *Mux) Handle(ctx context.Context, e *Event) error {
	for _, r := range m.routes {
		if r.match(e) {
			return r.h.Handle(ctx, e)
		}
	}
	if m.NotFound != nil {
		return m.NotFound.Handle(ctx, e)
	}
	return nil
}

// InChat matches events from chats of the given type.
func InChat(t ChatType) Matcher { return func(e *Event) bool { return e.Chat.Type == t } }

// OfKind matches events of the given kind.
func OfKind(k Kind) Matcher { return func(e *Event) bool { return e.Kind == k } }

// HasPrefix matches events whose text starts with any of the prefixes.
func HasPrefix(prefixes ...string) Matcher {
	return func(e *Event) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Text, p) {
				return true
			}
		}
		return false
	}
}

// All matches when every matcher does.
func All(ms ...Matcher) Matcher {
	return func(e *Event) bool {
		for _, m := range ms {
			if !m(e) {
				return false
			}
		}
		return true
	}
}
