package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Paths of the web dashboard's sessions.
const (
	// PathUICode (POST, token or session) answers a one-time login code and the URL that uses it.
	PathUICode = "/api/v1/ui/code"
	// PathUILogout (POST, session) ends the session of the request.
	PathUILogout = "/api/v1/ui/logout"
	// PathUI is the dashboard's page; PathUILogin takes a code (GET) or the token (POST form).
	PathUI      = "/ui/"
	PathUILogin = "/ui/login"
)

// CSRFHeader carries a session's CSRF token: a request authorized by a session cookie that
// changes anything (any method but GET and HEAD) must send it.
const CSRFHeader = "X-Peer-CSRF"

// ContentSecurityPolicy is sent with every answer: the dashboard's scripts and styles come from
// the daemon itself, no inline script runs, and no other site may frame it.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Lifetimes and bounds of codes and sessions.
const (
	CodeTTL     = 2 * time.Minute
	SessionTTL  = 12 * time.Hour
	maxCodes    = 64
	maxSessions = 256
)

// UICode is the answer of POST /api/v1/ui/code.
type UICode struct {
	Code    string    `json:"code"`
	URL     string    `json:"url"` // the dashboard's login URL with the code
	Expires time.Time `json:"expires"`
}

// Session is one browser's login: the CSRF token its page sends back with every change.
type Session struct {
	CSRF    string
	Expires time.Time
}

// sessions holds the one-time codes and the sessions, in memory only: a daemon that restarts
// forgets them (the browser logs in again). Both are kept by the SHA-256 of their secret, so
// that a comparison leaks nothing through timing and a memory dump holds no usable cookie.
type sessions struct {
	mu       sync.Mutex
	codes    map[[32]byte]time.Time // code hash → expiry
	sessions map[[32]byte]*Session  // cookie hash → session
	now      func() time.Time
}

func newSessions() *sessions {
	return &sessions{codes: map[[32]byte]time.Time{}, sessions: map[[32]byte]*Session{}, now: time.Now}
}

func secret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics if the system's source does)
	return hex.EncodeToString(b[:])
}

func hashOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// pruneLocked drops expired codes and sessions.
func (ss *sessions) pruneLocked() {
	now := ss.now()
	for k, exp := range ss.codes {
		if !now.Before(exp) {
			delete(ss.codes, k)
		}
	}
	for k, s := range ss.sessions {
		if !now.Before(s.Expires) {
			delete(ss.sessions, k)
		}
	}
}

func (ss *sessions) newCode() (string, time.Time, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.pruneLocked()
	if len(ss.codes) >= maxCodes {
		return "", time.Time{}, fmt.Errorf("%d login codes are waiting to be used: try again in %s", len(ss.codes), CodeTTL)
	}
	code := secret()
	exp := ss.now().Add(CodeTTL)
	ss.codes[hashOf(code)] = exp
	return code, exp, nil
}

// redeem consumes code: true once, within its lifetime.
func (ss *sessions) redeem(code string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := hashOf(code)
	exp, ok := ss.codes[k]
	delete(ss.codes, k)
	return ok && ss.now().Before(exp)
}

// newSession makes a session and returns its cookie value. The oldest session goes when there
// are too many.
func (ss *sessions) newSession() (string, *Session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.pruneLocked()
	if len(ss.sessions) >= maxSessions {
		var oldest [32]byte
		var first *Session
		for k, s := range ss.sessions {
			if first == nil || s.Expires.Before(first.Expires) {
				oldest, first = k, s
			}
		}
		delete(ss.sessions, oldest)
	}
	cookie := secret()
	s := &Session{CSRF: secret(), Expires: ss.now().Add(SessionTTL)}
	ss.sessions[hashOf(cookie)] = s
	return cookie, s
}

func (ss *sessions) get(cookie string) (Session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.sessions[hashOf(cookie)]
	if !ok || !ss.now().Before(s.Expires) {
		return Session{}, false
	}
	return *s, true
}

func (ss *sessions) end(cookie string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.sessions, hashOf(cookie))
}

// CookieName is the session cookie's name. Browsers share cookies between the ports of a host,
// so the name carries the API's port: two daemons on one machine keep separate sessions.
func (s *Server) CookieName() string {
	port := "0"
	if u, err := url.Parse(s.URL()); err == nil && u.Port() != "" {
		port = u.Port()
	} else if _, p, err := net.SplitHostPort(s.cfg.Addr); err == nil {
		port = p
	}
	return "peer-session-" + port
}

// SessionOf is the session a request's cookie names, if it is valid.
func (s *Server) SessionOf(r *http.Request) (Session, bool) {
	c, err := r.Cookie(s.CookieName())
	if err != nil || c.Value == "" {
		return Session{}, false
	}
	return s.sess.get(c.Value)
}

// RedeemCode consumes a one-time login code and, when it is valid, starts a session and sets
// its cookie on w.
func (s *Server) RedeemCode(w http.ResponseWriter, code string) bool {
	if code == "" || !s.sess.redeem(code) {
		return false
	}
	s.startSession(w)
	return true
}

// LoginWithToken starts a session and sets its cookie on w when token is the API's token.
func (s *Server) LoginWithToken(w http.ResponseWriter, token string) bool {
	if !s.tokenMatches(token) {
		return false
	}
	s.startSession(w)
	return true
}

func (s *Server) startSession(w http.ResponseWriter) {
	cookie, sess := s.sess.newSession()
	http.SetCookie(w, &http.Cookie{
		Name:     s.CookieName(),
		Value:    cookie,
		Path:     "/",
		Expires:  sess.Expires,
		MaxAge:   int(SessionTTL / time.Second),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) tokenMatches(got string) bool {
	tok := []byte(s.Token())
	return len(tok) > 0 && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), tok) == 1
}

// HandlePublic registers h for pattern with no token nor session needed (the dashboard's login
// page and static assets); Host and Origin are still checked and bodies capped as with Handle.
func (s *Server) HandlePublic(pattern string, h http.Handler) {
	s.pathMu.Lock()
	s.public[pattern] = true
	s.pathMu.Unlock()
	s.Handle(pattern, h)
}

func (s *Server) isPublic(r *http.Request) bool {
	_, pattern := s.mux.Handler(r)
	s.pathMu.Lock()
	defer s.pathMu.Unlock()
	return s.public[pattern]
}

// authorize lets a request through with the bearer token, or with a session cookie (and, for
// a method that changes anything, the session's CSRF header). Otherwise it answers 401, or 403
// for a session request without its CSRF header, and returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	if s.authorized(r) {
		return true
	}
	if r.Header.Get("Authorization") == "" {
		if sess, ok := s.SessionOf(r); ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				return true
			}
			got := r.Header.Get(CSRFHeader)
			if got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1 {
				return true
			}
			WriteError(w, http.StatusForbidden, fmt.Errorf("a request that changes anything needs the session's %s header (the dashboard sends it)", CSRFHeader))
			return false
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="peer"`)
	WriteError(w, http.StatusUnauthorized, fmt.Errorf("missing or wrong bearer token: send Authorization: Bearer $(cat %s)", filepath.Join(s.cfg.RepoDir, TokenFile)))
	return false
}

// securityHeaders are sent with every answer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with a
	// form's POST, which the Origin check refuses (the token form).
	h.Set("Referrer-Policy", "same-origin")
}

func (s *Server) sessionRoutes() {
	s.HandleFunc("POST "+PathUICode, func(w http.ResponseWriter, r *http.Request) {
		code, exp, err := s.sess.newCode()
		if err != nil {
			WriteError(w, http.StatusTooManyRequests, err)
			return
		}
		WriteJSON(w, http.StatusOK, UICode{Code: code, URL: s.browserURL() + PathUILogin + "?code=" + code, Expires: exp})
	})
	s.HandleFunc("POST "+PathUILogout, func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(s.CookieName()); err == nil {
			s.sess.end(c.Value)
		}
		http.SetCookie(w, &http.Cookie{Name: s.CookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
}

// browserURL is the base URL a browser on this machine opens: the listen address, or loopback
// when that is every interface (0.0.0.0, ::).
func (s *Server) browserURL() string {
	u, err := url.Parse(s.URL())
	if err != nil {
		return s.URL()
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
	}
	return u.String()
}

// UICode asks the daemon for a one-time dashboard login code (valid once, for CodeTTL).
func (c *Client) UICode(ctx context.Context) (UICode, error) {
	var code UICode
	err := c.Call(ctx, http.MethodPost, PathUICode, nil, &code)
	if err == nil && code.URL == "" {
		err = errors.New("the daemon answered no login URL")
	}
	return code, err
}
