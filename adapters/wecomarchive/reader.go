// Package wecomarchive reads WeCom customer groups (客户群), where residents
// on personal WeChat are and no robot can be added, through conversation
// archiving (会话内容存档): the vendor's C library, loaded at run time with
// purego, pulls archived messages from a sequence number; each message's
// random key is RSA-decrypted with the corp's private key of its version and
// the message opened with the library. The messages of the groups become
// bot.Events for the rules, which prepare answers that officers send with
// one tap from the chat toolbar page (toolbar.go): the hub cannot post in
// these groups.
package wecomarchive

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jingminhub/jingmin/bot"
	"github.com/jingminhub/jingmin/store"
)

// Alerts is who hears of the reader's trouble: the rules, which tell the
// admins by direct message.
type Alerts interface {
	// ArchiveTrouble: pulls have failed (or the sequence has a gap) since
	// since, longer than the configured time; told once per trouble.
	ArchiveTrouble(ctx context.Context, corp, reason string, since time.Time) error
	// ArchiveUndecryptable: a message could not be opened; it is recorded
	// with the reason and the reader went on past it.
	ArchiveUndecryptable(ctx context.Context, corp, msgID, roomID, reason string) error
}

// Reader pulls the archive into the bus. Its cursor is in the database,
// moved in the same transaction that records the messages taken; the
// events are published before that commit, so a crash in between
// publishes them again, and the bus's de-duplication on the event id (the
// archive's msgid) drops the second copy: nothing is lost, nothing is
// handled twice.
type Reader struct {
	cfg    Config
	sec    Secrets
	lib    *Library
	sdk    *SDK
	st     *store.Store
	pub    bot.Publisher
	alerts Alerts
	log    *slog.Logger
	names  func() []string
	now    func() time.Time

	contacts *wecomAPI // nil: residents' names are not looked up
	namesMu  sync.Mutex
	known    map[string]knownName // external_userid → name
}

// knownName is a resident's name as looked up, until it is looked up again.
type knownName struct {
	name  string
	until time.Time
}

// NewReader loads the library and initialises it for the corp. A missing
// or unusable library is an error naming its path (ErrLibrary).
func NewReader(cfg Config, sec Secrets, st *store.Store, pub bot.Publisher, alerts Alerts, names func() []string, log *slog.Logger) (*Reader, error) {
	cfg = cfg.WithDefaults()
	lib, err := LoadLibrary(cfg.Library)
	if err != nil {
		return nil, err
	}
	sdk, err := lib.New(cfg.CorpID, sec.Secret)
	if err != nil {
		return nil, err
	}
	if names == nil {
		names = func() []string { return nil }
	}
	r := &Reader{cfg: cfg, sec: sec, lib: lib, sdk: sdk, st: st, pub: pub, alerts: alerts, log: log, names: names, now: time.Now,
		known: map[string]knownName{}}
	if sec.ContactsSecret != "" {
		r.contacts = newWeComAPI(cfg.APIBase, cfg.CorpID, sec.ContactsSecret)
	}
	return r, nil
}

// Close releases the library's instance.
func (r *Reader) Close() { r.sdk.Close() }

// Run pulls until ctx ends: at once, on every nudge from wake (the app
// callback's msgaudit_notify), and every cfg.Every regardless, each time
// until the archive has nothing more.
func (r *Reader) Run(ctx context.Context, wake <-chan struct{}) error {
	tick := time.NewTicker(r.cfg.Every)
	defer tick.Stop()
	var backoff time.Duration
	for {
		failed := false
		for {
			n, err := r.Pull(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				failed = true
				break
			}
			if n < r.cfg.Limit {
				break
			}
		}
		// A failed pull is tried again soon (1 s, doubling up to Every):
		// what the archive holds is still there, and the nudge that
		// announced it will not come again.
		var retry *time.Timer
		var again <-chan time.Time
		if failed {
			backoff = min(max(2*backoff, time.Second), r.cfg.Every)
			retry = time.NewTimer(backoff)
			again = retry.C
		} else {
			backoff = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-wake:
		case <-again:
		}
		if retry != nil {
			retry.Stop()
		}
	}
}

// chatData is GetChatData's answer.
type chatData struct {
	ErrCode  int64  `json:"errcode"`
	ErrMsg   string `json:"errmsg"`
	ChatData []struct {
		Seq              uint64 `json:"seq"`
		MsgID            string `json:"msgid"`
		PublicKeyVer     int    `json:"publickey_ver"`
		EncryptRandomKey string `json:"encrypt_random_key"`
		EncryptChatMsg   string `json:"encrypt_chat_msg"`
	} `json:"chatdata"`
}

// Pull takes one batch: pulls from the cursor, opens and publishes each
// message, and records them with the new cursor. It reports how many
// messages the archive returned. Trouble (a pull error, a gap) is noted;
// once it has lasted cfg.AlertAfter the admins are told.
func (r *Reader) Pull(ctx context.Context) (int, error) {
	corp := r.cfg.CorpID
	from, err := r.st.ArchiveSeq(ctx, corp)
	if err != nil {
		return 0, err
	}
	got, err := r.pull(from)
	if err != nil {
		r.trouble(ctx, err.Error())
		return 0, err
	}
	if len(got.ChatData) == 0 {
		r.trouble(ctx, "")
		return 0, nil
	}
	ids := make([]string, len(got.ChatData))
	for i, c := range got.ChatData {
		ids[i] = c.MsgID
	}
	taken, err := r.st.ArchiveTaken(ctx, ids)
	if err != nil {
		return 0, err
	}
	var (
		rows   []store.ArchivedMessage
		to     = from
		gap    string
		failed []store.ArchivedMessage
		names  = r.names()
	)
	if first := got.ChatData[0].Seq; from > 0 && first > from+1 {
		gap = fmt.Sprintf("sequence gap: %d messages between %d and %d were not returned", first-from-1, from, first)
	}
	var pubErr error
	for _, c := range got.ChatData {
		if c.Seq <= to {
			continue // out of order or repeated: the cursor never goes back
		}
		if taken[c.MsgID] {
			to = c.Seq
			continue
		}
		row := store.ArchivedMessage{MsgID: c.MsgID, Seq: c.Seq, MsgTime: r.now()}
		plain, reason := r.open(c.PublicKeyVer, c.EncryptRandomKey, c.EncryptChatMsg)
		if reason != "" {
			row.Status, row.Reason = store.ArchiveUndecryptable, reason
			rows, to = append(rows, row), c.Seq
			failed = append(failed, row)
			continue
		}
		e, err := Decode(plain, names)
		switch {
		case errors.Is(err, ErrIgnored):
			row.Status = store.ArchiveSkipped
		case err != nil:
			row.Status, row.Reason = store.ArchiveSkipped, bot.Truncate(err.Error(), 200)
		default:
			row.RoomID, row.MsgTime = e.Chat.ID, e.Time
			if !e.FromStaff {
				e.Sender.Name = r.residentName(ctx, e.Sender.ID)
			}
			if pubErr = bot.PublishEvent(ctx, r.pub, e); pubErr != nil {
				break
			}
			row.Status = store.ArchivePublished
		}
		if pubErr != nil {
			break // record what was published; the rest comes again next pull
		}
		rows, to = append(rows, row), c.Seq
	}
	if to > from {
		if err := r.st.RecordArchive(ctx, corp, from, to, rows); err != nil {
			if errors.Is(err, store.ErrCursorMoved) {
				return 0, nil // another reader took this batch
			}
			return 0, err
		}
	}
	for _, f := range failed {
		r.log.Warn("archived message could not be decrypted", "msgid", f.MsgID, "seq", f.Seq, "reason", f.Reason)
		if err := r.alerts.ArchiveUndecryptable(ctx, corp, f.MsgID, f.RoomID, f.Reason); err != nil {
			r.log.Error("alert of an undecryptable archived message failed", "msgid", f.MsgID, "err", err)
		}
	}
	switch {
	case pubErr != nil:
		r.trouble(ctx, "publish to the hub: "+pubErr.Error())
		return 0, pubErr
	case gap != "":
		r.log.Warn("archive sequence gap", "detail", gap)
		r.trouble(ctx, gap)
		// Data behind a gap cannot be pulled again: the admins hear at once.
		r.alert(ctx, gap, r.now())
	default:
		r.trouble(ctx, "")
	}
	r.log.Info("archive pulled", "from", from, "to", to, "messages", len(got.ChatData), "undecryptable", len(failed))
	return len(got.ChatData), nil
}

// pull calls GetChatData and reads its answer.
func (r *Reader) pull(from uint64) (*chatData, error) {
	raw, err := r.sdk.ChatData(from, uint32(r.cfg.Limit), r.cfg.Proxy, r.sec.ProxyPassword, int(r.cfg.Timeout/time.Second))
	if err != nil {
		return nil, fmt.Errorf("pull archive from %d: %w", from, err)
	}
	var got chatData
	if err := json.Unmarshal(raw, &got); err != nil {
		return nil, fmt.Errorf("pull archive from %d: answer is not JSON: %w", from, err)
	}
	if got.ErrCode != 0 {
		return nil, fmt.Errorf("pull archive from %d: errcode %d (%s)", from, got.ErrCode, bot.Truncate(got.ErrMsg, 100))
	}
	return &got, nil
}

// open decrypts one message; reason says why it could not be.
func (r *Reader) open(ver int, encKey, encMsg string) (plain []byte, reason string) {
	key := r.sec.Keys[ver]
	if key == nil {
		return nil, fmt.Sprintf("no private key for publickey_ver %d", ver)
	}
	sealed, err := base64.StdEncoding.DecodeString(encKey)
	if err != nil {
		return nil, "encrypt_random_key is not base64"
	}
	randomKey, err := rsa.DecryptPKCS1v15(rand.Reader, key, sealed)
	if err != nil {
		return nil, fmt.Sprintf("encrypt_random_key does not decrypt with the key of version %d", ver)
	}
	plain, err = r.lib.Decrypt(string(randomKey), encMsg)
	if err != nil {
		return nil, "DecryptData: " + err.Error()
	}
	return plain, ""
}

// residentName is a resident's WeChat name, looked up once an hour at most
// per resident; "" when not configured or WeCom does not answer (the
// message goes on without it).
func (r *Reader) residentName(ctx context.Context, id string) string {
	if r.contacts == nil {
		return ""
	}
	now := r.now()
	r.namesMu.Lock()
	k, ok := r.known[id]
	r.namesMu.Unlock()
	if ok && now.Before(k.until) {
		return k.name
	}
	name, err := r.contacts.contactName(ctx, id)
	if err != nil {
		r.log.Warn("resident's name not looked up", "resident", bot.LogID(id), "err", err)
		return k.name
	}
	r.namesMu.Lock()
	if len(r.known) > 50_000 { // forget them all rather than grow without end
		r.known = map[string]knownName{}
	}
	r.known[id] = knownName{name: name, until: now.Add(time.Hour)}
	r.namesMu.Unlock()
	return name
}

// trouble notes the reader's state (reason "": well) and tells the admins
// once the trouble has lasted cfg.AlertAfter.
func (r *Reader) trouble(ctx context.Context, reason string) {
	now := r.now()
	since, err := r.st.ArchiveTrouble(ctx, r.cfg.CorpID, reason, now)
	if err != nil {
		r.log.Error("note archive trouble", "err", err)
		return
	}
	if reason == "" {
		return
	}
	r.log.Warn("archive trouble", "reason", bot.Mask(reason), "since", since)
	if now.Sub(since) >= r.cfg.AlertAfter {
		r.alert(ctx, reason, since)
	}
}

func (r *Reader) alert(ctx context.Context, reason string, since time.Time) {
	if err := r.alerts.ArchiveTrouble(ctx, r.cfg.CorpID, reason, since); err != nil {
		r.log.Error("alert of archive trouble failed", "err", err)
	}
}
