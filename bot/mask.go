package bot

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
)

// Residents write phone numbers and ID numbers into their questions. Handlers
// do not log message text at all; this is the second line of defence for
// whatever string reaches a log line anyway (an error that quotes input, a
// display name that is a phone number).
//
// A number is a run of digits (ASCII or full-width, as Chinese input
// methods type them), optionally with a "+86"/"86" prefix and single
// spaces or hyphens between digit groups ("138-1234-5678", "138 1234
// 5678"), and an ID number's final X.
var numberRun = regexp.MustCompile(`(?:(?:\+|＋)(?:86|８６)[ \-]?)?[0-9０-９]+(?:[ \-][0-9０-９]+)*[XxＸｘ]?`)

var digitGroup = regexp.MustCompile(`[0-9０-９]+[XxＸｘ]?`)

// Mask hides Chinese ID numbers (18 characters, and the old 15-digit ones)
// and mobile numbers (11 digits from 13x to 19x, with or without +86) in s,
// keeping enough of each to tell two apart ("138****5678",
// "310101********123X"). Other numbers (ticket numbers, landlines, dates)
// stay readable.
func Mask(s string) string {
	return numberRun.ReplaceAllStringFunc(s, maskNumber)
}

func maskNumber(run string) string {
	// Work on the digits alone: full-width ones made ASCII, separators
	// and the country code dropped.
	var d []byte
	for _, r := range run {
		switch {
		case r >= '0' && r <= '9':
			d = append(d, byte(r))
		case r >= '０' && r <= '９':
			d = append(d, byte(r-'０'+'0'))
		case r == 'X' || r == 'x' || r == 'Ｘ' || r == 'ｘ':
			d = append(d, 'X')
		}
	}
	prefixed := strings.HasPrefix(run, "+") || strings.HasPrefix(run, "＋")
	if prefixed && len(d) > 2 {
		d = d[2:] // the 86
	}
	if !prefixed && len(d) == 13 && string(d[:2]) == "86" && mobile(d[2:]) {
		d = d[2:]
	}
	x := len(d) > 0 && d[len(d)-1] == 'X'
	switch {
	case len(d) == 18 && allDigits(d[:17]):
		return string(d[:6]) + "********" + string(d[14:])
	case len(d) == 15 && !x:
		return string(d[:6]) + "******" + string(d[12:])
	case !x && mobile(d):
		return string(d[:3]) + "****" + string(d[7:])
	case prefixed:
		return "+86****"
	}
	if strings.ContainsAny(run, " -") && !x {
		// Groups that are not a phone or ID number together may still
		// hold one each ("13812345678 13987654321").
		return digitGroup.ReplaceAllStringFunc(run, maskNumber)
	}
	return run
}

func mobile(d []byte) bool {
	return len(d) == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9' && allDigits(d)
}

func allDigits(d []byte) bool {
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Residents' platform ids (an Official Account openid, the id of a
// resident's direct chat, a sender's id) identify a person across systems,
// so log lines carry LogID(id) instead: a short keyed hash, the same for the
// same id everywhere in one deployment (lines about one resident can be
// followed) and meaningless without the key.
//
// The key is JINGMIN_LOG_KEY when set (give every process of a deployment
// the same one, e.g. `openssl rand -hex 32`, to follow a resident across
// processes and restarts); otherwise a random key per process.
const EnvLogKey = "JINGMIN_LOG_KEY"

var logKey = sync.OnceValue(func() []byte { return logKeyFrom(os.LookupEnv) })

func logKeyFrom(lookup func(string) (string, bool)) []byte {
	if k, ok := lookup(EnvLogKey); ok && k != "" {
		return []byte(k)
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read does not fail
	return k
}

// LogID is id as log lines show it: "id:" and twelve hex digits of
// HMAC-SHA256 under the deployment's log key. The empty id stays empty.
func LogID(id string) string { return logIDWith(logKey(), id) }

func logIDWith(key []byte, id string) string {
	if id == "" {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	return "id:" + hex.EncodeToString(m.Sum(nil)[:6])
}

// LogChat is a chat as log lines show it: a group's key as it is (a group
// is no one's identity), a direct chat's with the id replaced by LogID.
func LogChat(c ChatRef) string {
	if c.Type == Group {
		return c.Key()
	}
	return string(c.Platform) + ":" + string(c.Type) + ":" + LogID(c.ID)
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
