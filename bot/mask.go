package bot

import (
	"context"
	"log/slog"
	"regexp"
)

// Residents write phone numbers and ID numbers into their questions. Handlers
// do not log message text at all; this is the second line of defence for
// whatever string reaches a log line anyway (an error that quotes input, a
// display name that is a phone number).
var digitRun = regexp.MustCompile(`[0-9]+[Xx]?`)

// Mask hides Chinese ID numbers (18 characters) and mobile numbers (11
// digits from 13x to 19x) in s, keeping enough of each to tell two apart
// ("138****5678", "310101********123X"). Other numbers (ticket numbers,
// landlines, dates) stay readable.
func Mask(s string) string {
	return digitRun.ReplaceAllStringFunc(s, func(run string) string {
		switch {
		case len(run) == 18:
			return run[:6] + "********" + run[14:]
		case len(run) == 11 && run[0] == '1' && run[1] >= '3' && run[1] <= '9':
			return run[:3] + "****" + run[7:]
		}
		return run
	})
}

// MaskingHandler is a slog.Handler that masks personal data in the message
// and in every string attribute before passing the record on.
type MaskingHandler struct{ inner slog.Handler }

var _ slog.Handler = MaskingHandler{}

// NewMaskingHandler wraps inner.
func NewMaskingHandler(inner slog.Handler) slog.Handler { return MaskingHandler{inner} }

func (h MaskingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h MaskingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Mask(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(maskAttr(a)); return true })
	return h.inner.Handle(ctx, out)
}

func (h MaskingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(as))
	for i, a := range as {
		masked[i] = maskAttr(a)
	}
	return MaskingHandler{h.inner.WithAttrs(masked)}
}

func (h MaskingHandler) WithGroup(name string) slog.Handler {
	return MaskingHandler{h.inner.WithGroup(name)}
}

func maskAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Mask(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		masked := make([]any, len(attrs))
		for i, g := range attrs {
			masked[i] = maskAttr(g)
		}
		return slog.Group(a.Key, masked...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, Mask(err.Error()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
