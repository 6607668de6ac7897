package wecomtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ArchiveSecret is the conversation-archive secret the stand-in accepts.
const ArchiveSecret = "archive-secret"

// archive is the stand-in's conversation archive (会话内容存档): messages
// in sequence, each with its random key RSA-encrypted to the corp's public
// key of its version, as GetChatData returns them. The stand-in library
// (adapters/wecomarchive/financetest) fetches them from here.
type archive struct {
	mu       sync.Mutex
	keys     map[int]*rsa.PrivateKey
	entries  []archiveEntry
	seq      uint64
	fail     []int64           // errcodes the next pulls answer
	codes    map[string]string // OAuth code → userid
	contacts map[string]string // external_userid → name
	pulls    int
}

type archiveEntry struct {
	Seq              uint64 `json:"seq"`
	MsgID            string `json:"msgid"`
	PublicKeyVer     int    `json:"publickey_ver"`
	EncryptRandomKey string `json:"encrypt_random_key"`
	EncryptChatMsg   string `json:"encrypt_chat_msg"`
}

func (s *Server) archiveRoutes(mux *http.ServeMux) {
	s.arch = &archive{keys: map[int]*rsa.PrivateKey{}, codes: map[string]string{}, contacts: map[string]string{}}
	mux.HandleFunc("GET /cgi-bin/stand_in/finance/chatdata", s.chatData)
	// The chat-toolbar page's calls: OAuth sign-in and the JS-SDK tickets.
	mux.HandleFunc("GET /cgi-bin/auth/getuserinfo", s.userInfo)
	mux.HandleFunc("GET /cgi-bin/get_jsapi_ticket", s.jsTicket(CorpJSTicket))
	mux.HandleFunc("GET /cgi-bin/ticket/get", s.jsTicket(AgentJSTicket))
	// Residents' names, for the archive reader.
	mux.HandleFunc("GET /cgi-bin/externalcontact/get", s.externalContact)
}

// AddContact names an external contact (a resident on personal WeChat).
func (s *Server) AddContact(externalUserID, name string) {
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	a.contacts[externalUserID] = name
}

func (s *Server) externalContact(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !s.tokenOK(r) {
		answer(w, 40014, "invalid access_token", nil)
		return
	}
	id := r.URL.Query().Get("external_userid")
	a := s.arch
	a.mu.Lock()
	name, ok := a.contacts[id]
	a.mu.Unlock()
	if !ok {
		answer(w, 84061, "not external contact", nil)
		return
	}
	answer(w, 0, "ok", map[string]any{"external_contact": map[string]any{"external_userid": id, "name": name, "type": 1}})
}

// The JS-SDK tickets the stand-in hands out: the corp's (wx.config) and
// the app's (wx.agentConfig).
const (
	CorpJSTicket  = "corp-jsapi-ticket"
	AgentJSTicket = "agent-jsapi-ticket"
)

// OAuthCode issues a one-time sign-in code for a member, as WeCom appends
// to the page URL after its OAuth redirect.
func (s *Server) OAuthCode(userID string) string {
	code := "code-" + hex.EncodeToString(randomBytes(6))
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	a.codes[code] = userID
	return code
}

func (s *Server) userInfo(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !s.tokenOK(r) {
		answer(w, 40014, "invalid access_token", nil)
		return
	}
	a := s.arch
	a.mu.Lock()
	uid, ok := a.codes[r.URL.Query().Get("code")]
	delete(a.codes, r.URL.Query().Get("code"))
	a.mu.Unlock()
	if !ok {
		answer(w, 40029, "invalid code", nil)
		return
	}
	answer(w, 0, "ok", map[string]any{"userid": uid})
}

func (s *Server) jsTicket(ticket string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		if !s.tokenOK(r) {
			answer(w, 40014, "invalid access_token", nil)
			return
		}
		answer(w, 0, "ok", map[string]any{"ticket": ticket, "expires_in": 7200})
	}
}

// ArchiveKey is the corp's private key of version ver (made on first use):
// what a station configures for the archive reader.
func (s *Server) ArchiveKey(ver int) *rsa.PrivateKey {
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.key(ver)
}

// ArchiveKeyPEM is ArchiveKey in PKCS#1 PEM, as WeCom's console hands it out.
func (s *Server) ArchiveKeyPEM(ver int) []byte {
	k := s.ArchiveKey(ver)
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func (a *archive) key(ver int) *rsa.PrivateKey {
	if k := a.keys[ver]; k != nil {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	a.keys[ver] = k
	return k
}

// ArchivedText is one archived chat message as the archive's plaintext
// JSON has it.
type ArchivedText struct {
	MsgID   string
	From    string // an internal userid, or an external_userid (wm…/wo…)
	RoomID  string // empty: a one-to-one chat
	To      []string
	Text    string
	At      time.Time
	MsgType string // "text" when empty; other types carry no text
}

// Plain is the archive's plaintext JSON of m.
func (m ArchivedText) Plain() []byte {
	typ := m.MsgType
	if typ == "" {
		typ = "text"
	}
	out := map[string]any{"msgid": m.MsgID, "action": "send", "from": m.From, "tolist": m.To, "roomid": m.RoomID,
		"msgtime": m.At.UnixMilli(), "msgtype": typ}
	switch typ {
	case "text":
		out["text"] = map[string]string{"content": m.Text}
	case "image":
		out["image"] = map[string]any{"md5sum": "00", "filesize": 1, "sdkfileid": "f"}
	default:
		out[typ] = map[string]any{}
	}
	b, _ := json.Marshal(out)
	return b
}

// Archive adds a message under key version ver and returns its sequence number.
func (s *Server) Archive(ver int, m ArchivedText) uint64 {
	return s.ArchiveRaw(ver, m.MsgID, m.Plain())
}

// ArchiveRaw adds a message with the given plaintext under key version ver.
func (s *Server) ArchiveRaw(ver int, msgID string, plain []byte) uint64 {
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	randomKey := hex.EncodeToString(randomBytes(16))
	encKey, err := rsa.EncryptPKCS1v15(rand.Reader, &a.key(ver).PublicKey, []byte(randomKey))
	if err != nil {
		panic(err)
	}
	sealed := append([]byte("WWFS"), plain...)
	for i := range sealed {
		sealed[i] ^= randomKey[i%len(randomKey)]
	}
	a.seq++
	a.entries = append(a.entries, archiveEntry{Seq: a.seq, MsgID: msgID, PublicKeyVer: ver,
		EncryptRandomKey: base64.StdEncoding.EncodeToString(encKey), EncryptChatMsg: hex.EncodeToString(sealed)})
	return a.seq
}

// ArchiveCorrupt adds a message whose ciphertext does not decrypt.
func (s *Server) ArchiveCorrupt(ver int, msgID string) uint64 {
	seq := s.ArchiveRaw(ver, msgID, []byte(`{}`))
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries[len(a.entries)-1].EncryptChatMsg = "00ff00ff"
	return seq
}

// ArchiveGap makes the archive skip n sequence numbers, as if messages
// were gone before they were pulled.
func (s *Server) ArchiveGap(n uint64) {
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq += n
}

// FailArchive makes the next pulls answer these errcodes, in order.
func (s *Server) FailArchive(codes ...int64) {
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = append(a.fail, codes...)
}

// ArchivePulls counts pulls the stand-in answered.
func (s *Server) ArchivePulls() int {
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pulls
}

// chatData answers the stand-in library's GetChatData: the messages after
// seq, at most limit, as WeCom's chatdata JSON.
func (s *Server) chatData(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	q := r.URL.Query()
	if q.Get("secret") != ArchiveSecret {
		answer(w, 301052, "secret invalid", nil)
		return
	}
	seq, _ := strconv.ParseUint(q.Get("seq"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	a := s.arch
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pulls++
	if len(a.fail) > 0 {
		code := a.fail[0]
		a.fail = a.fail[1:]
		answer(w, code, "stand-in failure", nil)
		return
	}
	out := []archiveEntry{}
	for _, e := range a.entries {
		if e.Seq > seq && len(out) < limit {
			out = append(out, e)
		}
	}
	answer(w, 0, "ok", map[string]any{"chatdata": out})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
