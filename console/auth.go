package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/jingminhub/jingmin/commands"
	"github.com/jingminhub/jingmin/store"
)

// session is a signed-in request: the stored session and its account.
type session struct {
	row     *store.ConsoleSession
	account commands.Account
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// signedIn runs h for a request with a live session. Without one it sends
// the person to sign in, saying why (an idle or absolute timeout ends the
// session, audited). needFactor: an admin who has not passed TOTP is sent
// to it first: admins neither see nor act before.
func (s *Server) signedIn(h func(w http.ResponseWriter, r *http.Request, sess *session), needFactor bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, why, err := s.session(r)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if sess == nil {
			if r.Method == http.MethodGet && r.URL.Path == "/now/events" {
				http.Error(w, "signed out", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/signin?why="+why, http.StatusSeeOther)
			return
		}
		if needFactor && sess.account.IsAdmin() && !sess.row.SecondFactor {
			http.Redirect(w, r, "/signin/totp", http.StatusSeeOther)
			return
		}
		h(w, r, sess)
	}
}

// session reads the request's session, ending it when it timed out. why
// says why there is none ("", "idle", "expired").
func (s *Server) session(r *http.Request) (*session, string, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, "", nil
	}
	ctx := r.Context()
	row, err := s.opts.Store.ConsoleSessionByHash(ctx, hashToken(c.Value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, "ended", nil
	}
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	acct, ok, err := s.accountOf(ctx, row, clientAddress(r))
	if err != nil {
		return nil, "", err
	}
	end := func(action, why string) (*session, string, error) {
		e := acct.Audit(action, now)
		e.Result, e.Reason = store.AuditDenied, why
		return nil, why, s.opts.Store.EndConsoleSession(ctx, row.ID, now, e)
	}
	switch {
	case !ok:
		return end("session.ended", "gone")
	case !now.Before(row.ExpiresAt):
		return end("session.expired", "expired")
	case now.Sub(row.LastSeen) >= s.opts.Idle:
		return end("session.idle", "idle")
	}
	// The live stream is no activity of the person: it neither keeps a
	// session alive nor needs its clock written.
	if r.URL.Path != "/now/events" && now.Sub(row.LastSeen) >= 10*time.Second {
		if err := s.opts.Store.TouchConsoleSession(ctx, row.ID, now); err != nil {
			return nil, "", err
		}
		row.LastSeen = now
	}
	return &session{row: row, account: acct}, "", nil
}

// accountOf is the account a session is for; ok is false when the officer
// left the directory (or the local admin is gone).
func (s *Server) accountOf(ctx context.Context, row *store.ConsoleSession, address string) (commands.Account, bool, error) {
	a := commands.Account{Address: address, Via: store.AuditConsole}
	switch {
	case row.OfficerID != nil:
		a.Officer = s.opts.Rules.OfficerByID(*row.OfficerID)
		return a, a.Officer != nil, nil
	case row.AdminID != nil:
		adm, err := s.opts.Store.ConsoleAdminByID(ctx, *row.AdminID)
		if errors.Is(err, store.ErrNotFound) {
			return a, false, nil
		}
		if err != nil {
			return a, false, err
		}
		a.Admin = adm
		return a, true, nil
	}
	return a, false, nil
}

// startSession stores a new session for an account and sets its cookie.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, acct commands.Account) (*store.ConsoleSession, error) {
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	row := &store.ConsoleSession{TokenHash: hashToken(token), OfficerID: acct.OfficerID(), Address: clientAddress(r),
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(Absolute)}
	if acct.Admin != nil {
		id := acct.Admin.ID
		row.AdminID = &id
	}
	if err := s.opts.Store.CreateConsoleSession(r.Context(), row, acct.Audit(commands.AuditSignIn, now)); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, Secure: !s.opts.InsecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: int(Absolute / time.Second)})
	return row, nil
}

var signInReasons = map[string]string{
	"idle":    "会话闲置超时，已自动退出，请重新登录。",
	"expired": "会话已满 12 小时，请重新登录。",
	"ended":   "会话已结束，请重新登录。",
	"gone":    "您的账号已不在通讯录中。",
	"out":     "已退出登录。",
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin", page{Title: "登录", Notice: signInReasons[r.URL.Query().Get("why")]})
}

// requestCode sends a code to the officer named. The page says the same
// whether or not the name is an officer's, so the form does not tell who
// works here.
func (s *Server) requestCode(w http.ResponseWriter, r *http.Request) {
	login := strings.TrimSpace(r.PostFormValue("login"))
	if login == "" || len([]rune(login)) > 64 {
		s.render(w, r, http.StatusBadRequest, "signin", page{Title: "登录", Error: "请输入您的姓名或警号。"})
		return
	}
	err := s.opts.Rules.RequestSignInCode(r.Context(), login, clientAddress(r))
	switch {
	case errors.Is(err, commands.ErrLockedOut):
		s.render(w, r, http.StatusTooManyRequests, "signin", page{Title: "登录", Error: "错误次数过多，请 15 分钟后再试。"})
		return
	case errors.Is(err, commands.ErrTooManyCodes):
		s.render(w, r, http.StatusTooManyRequests, "code", page{Title: "输入验证码", Login: login,
			Error: "15 分钟内已发送过多个验证码，请使用最新收到的验证码，或 15 分钟后再试。"})
		return
	case errors.Is(err, commands.ErrNoAccount):
		s.opts.Log.Info("console: sign-in code asked for no account", "address", clientAddress(r))
	case err != nil:
		s.internal(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "code", page{Title: "输入验证码", Login: login})
}

var codeErrors = []struct {
	err  error
	code int
	msg  string
}{
	{commands.ErrLockedOut, http.StatusTooManyRequests, "错误次数过多，该账号或地址已暂停登录 15 分钟。"},
	{commands.ErrCodeExpired, http.StatusUnauthorized, "验证码已过期（5 分钟内有效），请重新获取。"},
	{commands.ErrCodeUsed, http.StatusUnauthorized, "这个验证码已经用过了（每个验证码只能登录一次），请重新获取。"},
	{commands.ErrCodeWrong, http.StatusUnauthorized, "验证码不正确，请核对机器人私信中最新的验证码。"},
}

func (s *Server) checkCode(w http.ResponseWriter, r *http.Request) {
	login := strings.TrimSpace(r.PostFormValue("login"))
	o, err := s.opts.Rules.SignIn(r.Context(), login, r.PostFormValue("code"), clientAddress(r))
	for _, ce := range codeErrors {
		if errors.Is(err, ce.err) {
			s.render(w, r, ce.code, "code", page{Title: "输入验证码", Login: login, Error: ce.msg})
			return
		}
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	acct := commands.Account{Officer: o, Address: clientAddress(r), Via: store.AuditConsole}
	if _, err := s.startSession(w, r, acct); err != nil {
		s.internal(w, r, err)
		return
	}
	if acct.IsAdmin() {
		http.Redirect(w, r, "/signin/totp", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/now", http.StatusSeeOther)
}

func (s *Server) adminSignInPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin_admin", page{Title: "本地管理员登录"})
}

// adminSignIn signs the break-glass local admin in by password. Failures
// count towards the address's lockout like wrong codes.
func (s *Server) adminSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	addr := clientAddress(r)
	name := strings.TrimSpace(r.PostFormValue("name"))
	again := func(code int, msg string) {
		s.render(w, r, code, "signin_admin", page{Title: "本地管理员登录", Error: msg})
	}
	if locked, err := s.opts.Rules.LocalAdminLocked(ctx, addr); err != nil {
		s.internal(w, r, err)
		return
	} else if locked {
		again(http.StatusTooManyRequests, "错误次数过多，请 15 分钟后再试。")
		return
	}
	adm, err := s.opts.Store.ConsoleAdminByName(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(w, r, err)
		return
	}
	hash := dummyHash() // compared anyway: the time taken does not tell names
	if adm != nil {
		hash = []byte(adm.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(r.PostFormValue("password"))) != nil || adm == nil {
		if err := s.opts.Rules.LocalAdminFailed(ctx, name, addr, "wrong name or password"); err != nil {
			s.internal(w, r, err)
			return
		}
		again(http.StatusUnauthorized, "用户名或密码不正确。")
		return
	}
	if _, err := s.startSession(w, r, commands.Account{Admin: adm, Address: addr, Via: store.AuditConsole}); err != nil {
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/signin/totp", http.StatusSeeOther)
}

// dummyHash is a bcrypt hash of the same cost as real ones, compared when
// the name is unknown.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such admin"), bcryptCost)
	return h
})

// bcryptCost is the work factor of local admins' password hashes (the
// library's default, 10: about 100 ms a check on a small server).
const bcryptCost = bcrypt.DefaultCost

// CreateLocalAdmin stores a break-glass local admin with a bcrypt hash of
// the password (`jingmin console admin create`).
func CreateLocalAdmin(ctx context.Context, st *store.Store, name, password, by string, at time.Time) error {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return errors.New("give the admin a name of 1 to 64 characters")
	}
	if len(password) < 12 {
		return errors.New("the password must have at least 12 characters")
	}
	if len(password) > 72 {
		return errors.New("the password may have at most 72 bytes (bcrypt's limit)")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	e := store.AuditEntry{At: at, Actor: by, Via: store.AuditCLI, Action: "console.admin.create", Target: "admin:" + name}
	return st.CreateConsoleAdmin(ctx, &store.ConsoleAdmin{Name: name, PasswordHash: string(hash), CreatedAt: at.UTC()}, e)
}

// totpSecret is the account's enrolled secret ("" when none).
func (s *Server) totpSecret(ctx context.Context, sess *session) (string, error) {
	if sess.account.Admin != nil {
		return sess.account.Admin.TOTPSecret, nil
	}
	return s.opts.Store.OfficerTOTP(ctx, sess.account.Officer.ID)
}

func (s *Server) totpPage(w http.ResponseWriter, r *http.Request, sess *session) {
	if !sess.account.IsAdmin() || sess.row.SecondFactor {
		http.Redirect(w, r, "/now", http.StatusSeeOther)
		return
	}
	secret, err := s.totpSecret(r.Context(), sess)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	p := page{Title: "二次验证", Account: sess.account}
	if secret == "" {
		if err := s.newEnrolment(&p, sess); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	s.render(w, r, http.StatusOK, "totp", p)
}

// newEnrolment makes a fresh secret for an admin without one, shown as a
// QR code and as text; it is stored only once a code from it is typed.
func (s *Server) newEnrolment(p *page, sess *session) error {
	name := sess.account.Name()
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "警民通控制台", AccountName: name})
	if err != nil {
		return fmt.Errorf("make an authenticator secret: %w", err)
	}
	img, err := key.Image(220, 220)
	if err != nil {
		return fmt.Errorf("draw the QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("draw the QR code: %w", err)
	}
	p.Enrol = &enrolment{Secret: key.Secret(), QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))}
	return nil
}

func (s *Server) totpCheck(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	if !sess.account.IsAdmin() || sess.row.SecondFactor {
		http.Redirect(w, r, "/now", http.StatusSeeOther)
		return
	}
	secret, err := s.totpSecret(ctx, sess)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	enrolling := ""
	if secret == "" {
		// Enrolment: the secret comes back from the form. Only an account
		// without one enrols, so a session short of its second factor can
		// never replace an enrolled authenticator.
		enrolling = strings.TrimSpace(r.PostFormValue("secret"))
		secret = enrolling
	}
	now := s.now()
	ok, _ := totp.ValidateCustom(strings.TrimSpace(r.PostFormValue("code")), secret, now, totp.ValidateOpts{
		Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if secret == "" || !ok {
		e := sess.account.Audit("signin.totp_failed", now)
		e.Result, e.Reason = store.AuditFailed, "wrong authenticator code"
		if err := s.opts.Store.AppendAudit(ctx, e); err != nil {
			s.internal(w, r, err)
			return
		}
		p := page{Title: "二次验证", Account: sess.account, Error: "动态验证码不正确，请核对验证器上当前的 6 位数字。"}
		if enrolling != "" {
			p.Enrol = &enrolment{Secret: enrolling}
		}
		s.render(w, r, http.StatusUnauthorized, "totp", p)
		return
	}
	action := "signin.totp"
	if enrolling != "" {
		action = "totp.enrol"
	}
	if err := s.opts.Store.PassSecondFactor(ctx, sess.row, enrolling, now, sess.account.Audit(action, now)); err != nil {
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/now", http.StatusSeeOther)
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request, sess *session) {
	now := s.now()
	if err := s.opts.Store.EndConsoleSession(r.Context(), sess.row.ID, now, sess.account.Audit("signout", now)); err != nil {
		s.internal(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: !s.opts.InsecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	http.Redirect(w, r, "/signin?why=out", http.StatusSeeOther)
}

// TokenPrefix starts every per-account API token, so the admin API tells
// them from the deprecated shared token.
const TokenPrefix = "jm_"

// UseAPIToken finds the officer a per-account token acts as and records
// the use (audited with what was called and from where). store.ErrNotFound:
// no such live token.
func UseAPIToken(ctx context.Context, st *store.Store, rules *commands.Hub, token, call, address string) (*store.Officer, error) {
	now := rules.Clock()
	var o *store.Officer
	_, err := st.UseAPIToken(ctx, hashToken(token), now, func(t *store.APIToken) store.AuditEntry {
		if t.OfficerID != nil {
			o = rules.OfficerByID(*t.OfficerID)
		}
		e := commands.Account{Officer: o, Address: address, Via: store.AuditAPI}.Audit("token.use", now)
		e.Target = fmt.Sprintf("令牌 %s：%s", t.Name, call)
		if o == nil {
			e.Result, e.Reason = store.AuditDenied, "the token's officer left the directory"
		}
		return e
	})
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("token's officer: %w", store.ErrNotFound)
	}
	return o, nil
}
