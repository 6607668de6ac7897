package bot

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// EncodeEvent and DecodeEvent are the bus payload codec for events.
func EncodeEvent(e *Event) ([]byte, error) { return json.Marshal(e) }

// DecodeEvent reads an event. Payloads are JSON as encoding/json writes
// them; every message is decoded at least once on its way through the hub,
// and the reflective decoder was a sixth of the hub's CPU time, so the form
// EncodeEvent writes is read by hand. Anything else in a payload (another
// field, a null, a number, odd escapes) goes to encoding/json, so the
// result is always what encoding/json would give.
func DecodeEvent(b []byte) (*Event, error) {
	var e Event
	if r := (jsonReader{b: b}); r.event(&e) && r.end() {
		return &e, nil
	}
	e = Event{}
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return &e, nil
}

// jsonReader reads the JSON encoding/json writes for the bus payloads. Each
// method reports false on anything it does not know, and the caller then
// hands the whole payload to encoding/json.
type jsonReader struct {
	b []byte
	i int
}

func (r *jsonReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *jsonReader) byte(c byte) bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *jsonReader) end() bool {
	r.space()
	return r.i == len(r.b)
}

// object calls field for each key of an object.
func (r *jsonReader) object(field func(key string) bool) bool {
	if !r.byte('{') {
		return false
	}
	if r.byte('}') {
		return true
	}
	for {
		key, ok := r.str()
		if !ok || !r.byte(':') || !field(key) {
			return false
		}
		if r.byte('}') {
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}

// array calls elem for each element of an array.
func (r *jsonReader) array(elem func() bool) bool {
	if !r.byte('[') {
		return false
	}
	if r.byte(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if r.byte(']') {
			return true
		}
		if !r.byte(',') {
			return false
		}
	}
}

func (r *jsonReader) boolean() (bool, bool) {
	r.space()
	switch {
	case len(r.b)-r.i >= 4 && string(r.b[r.i:r.i+4]) == "true":
		r.i += 4
		return true, true
	case len(r.b)-r.i >= 5 && string(r.b[r.i:r.i+5]) == "false":
		r.i += 5
		return false, true
	}
	return false, false
}

// str reads a string, refusing what encoding/json would read differently
// from the plain reading (invalid UTF-8, lone surrogates).
func (r *jsonReader) str() (string, bool) {
	raw, ok := r.rawString()
	if !ok {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	plain := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(body), true
	}
	if !utf8.Valid(body) {
		return "", false
	}
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(body) {
			return "", false
		}
		switch body[i+1] {
		case '"', '\\', '/':
			out = append(out, body[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r1, ok := hex4(body[i+2:])
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r1) {
				if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
					return "", false
				}
				r2, ok := hex4(body[i+2:])
				if !ok {
					return "", false
				}
				r1 = utf16.DecodeRune(r1, r2)
				if r1 == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r1)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return string(out), true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(n), err == nil
}

// rawString returns a string token with its quotes; control characters in
// it are invalid JSON, left to encoding/json to say so.
func (r *jsonReader) rawString() ([]byte, bool) {
	r.space()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, false
	}
	for j := r.i + 1; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '\\':
			j++
		case c == '"':
			raw := r.b[r.i : j+1]
			r.i = j + 1
			return raw, true
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// into reads a string into one of the string-typed fields.
func into[T ~string](r *jsonReader, dst *T) bool {
	s, ok := r.str()
	*dst = T(s)
	return ok
}

func (r *jsonReader) chat(c *ChatRef) bool {
	return r.object(func(key string) bool {
		switch key {
		case "platform":
			return into(r, &c.Platform)
		case "id":
			return into(r, &c.ID)
		case "type":
			return into(r, &c.Type)
		case "name":
			return into(r, &c.Name)
		}
		return false
	})
}

func (r *jsonReader) event(e *Event) bool {
	return r.object(func(key string) bool {
		switch key {
		case "id":
			return into(r, &e.ID)
		case "platform":
			return into(r, &e.Platform)
		case "message_id":
			return into(r, &e.MessageID)
		case "chat":
			return r.chat(&e.Chat)
		case "sender":
			return r.object(func(key string) bool {
				switch key {
				case "id":
					return into(r, &e.Sender.ID)
				case "name":
					return into(r, &e.Sender.Name)
				}
				return false
			})
		case "kind":
			return into(r, &e.Kind)
		case "text":
			return into(r, &e.Text)
		case "mentions":
			if e.Mentions != nil {
				return false // a second list merges into the first: encoding/json's to do
			}
			e.Mentions = []Mention{}
			return r.array(func() bool {
				var m Mention
				ok := r.object(func(key string) bool {
					switch key {
					case "user_id":
						return into(r, &m.UserID)
					case "name":
						return into(r, &m.Name)
					case "is_bot":
						var ok bool
						m.IsBot, ok = r.boolean()
						return ok
					}
					return false
				})
				e.Mentions = append(e.Mentions, m)
				return ok
			})
		case "addressed_to_bot":
			var ok bool
			e.AddressedToBot, ok = r.boolean()
			return ok
		case "sees_all_messages":
			var ok bool
			e.SeesAllMessages, ok = r.boolean()
			return ok
		case "archived":
			var ok bool
			e.Archived, ok = r.boolean()
			return ok
		case "from_staff":
			var ok bool
			e.FromStaff, ok = r.boolean()
			return ok
		case "quote":
			if e.Quote == nil {
				e.Quote = &Quote{}
			}
			q := e.Quote
			return r.object(func(key string) bool {
				switch key {
				case "message_id":
					return into(r, &q.MessageID)
				case "sender_id":
					return into(r, &q.SenderID)
				case "text":
					return into(r, &q.Text)
				}
				return false
			})
		case "time":
			raw, ok := r.rawString()
			return ok && e.Time.UnmarshalJSON(raw) == nil
		case "reply_handle":
			return into(r, &e.ReplyHandle)
		}
		return false
	})
}
