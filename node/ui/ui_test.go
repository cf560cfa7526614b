package ui_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/node/api"
	"peer/node/ui"
)

// startServer runs an API server with the dashboard and two plain routes.
func startServer(t *testing.T) *api.Server {
	t.Helper()
	s, err := api.New(api.Config{Addr: "127.0.0.1:0", RepoDir: t.TempDir()})
	require.NoError(t, err)
	s.HandleFunc("GET /secret", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	})
	s.HandleFunc("POST /change", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"changed": "yes"})
	})
	ui.Register(s)
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// noRedirects is a client that shows redirects rather than following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type req struct {
	method, url string
	body        string
	header      map[string]string
	cookie      *http.Cookie
}

func send(t *testing.T, r req) (*http.Response, string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	hr, err := http.NewRequestWithContext(t.Context(), r.method, r.url, strings.NewReader(r.body))
	require.NoError(t, err)
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	resp, err := noRedirects.Do(hr)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func bearer(s *api.Server) map[string]string {
	return map[string]string{"Authorization": "Bearer " + s.Token()}
}

// code asks for a one-time login URL with the token.
func code(t *testing.T, s *api.Server) string {
	t.Helper()
	c := api.NewClient(s.URL(), s.Token())
	uc, err := c.UICode(t.Context())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(uc.URL, s.URL()+api.PathUILogin+"?code="), uc.URL)
	require.Regexp(t, `^[0-9a-f]{64}$`, uc.Code)
	require.Equal(t, uc.Code, strings.TrimPrefix(uc.URL, s.URL()+api.PathUILogin+"?code="), "the token is not in the URL, the code is")
	require.NotContains(t, uc.URL, s.Token())
	return uc.URL
}

// login trades a fresh code for the session cookie and reads the page's CSRF token.
func login(t *testing.T, s *api.Server) (*http.Cookie, string) {
	t.Helper()
	resp, _ := send(t, req{url: code(t, s)})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, api.PathUI, resp.Header.Get("Location"))
	cookie := sessionCookie(t, s, resp)
	page, body := send(t, req{url: s.URL() + api.PathUI, cookie: cookie})
	require.Equal(t, http.StatusOK, page.StatusCode)
	m := regexp.MustCompile(`<meta name="peer-csrf" content="([0-9a-f]{64})">`).FindStringSubmatch(body)
	require.NotNil(t, m, "the app page carries the CSRF token in a meta tag:\n%s", body)
	return cookie, m[1]
}

func sessionCookie(t *testing.T, s *api.Server, resp *http.Response) *http.Cookie {
	t.Helper()
	var got *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == s.CookieName() {
			got = c
		}
	}
	require.NotNil(t, got, "the answer sets %s; cookies: %v", s.CookieName(), resp.Header.Values("Set-Cookie"))
	u, err := url.Parse(s.URL())
	require.NoError(t, err)
	require.Equal(t, "peer-session-"+u.Port(), got.Name, "the cookie is named for the API's port")
	require.True(t, got.HttpOnly, "HttpOnly")
	require.Equal(t, http.SameSiteStrictMode, got.SameSite)
	require.Equal(t, "/", got.Path)
	require.Empty(t, got.Domain, "a host-only cookie")
	require.Regexp(t, `^[0-9a-f]{64}$`, got.Value)
	return &http.Cookie{Name: got.Name, Value: got.Value}
}

func TestALoginCodeWorksOnce(t *testing.T) {
	s := startServer(t)
	u := code(t, s)
	resp, _ := send(t, req{url: u})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	cookie := sessionCookie(t, s, resp)

	again, body := send(t, req{url: u})
	require.Equal(t, http.StatusUnauthorized, again.StatusCode, "a code is valid once")
	require.Contains(t, body, "expired or was used already")
	require.Empty(t, again.Cookies())

	forged, _ := send(t, req{url: s.URL() + api.PathUILogin + "?code=" + strings.Repeat("a", 64)})
	require.Equal(t, http.StatusUnauthorized, forged.StatusCode)
	empty, _ := send(t, req{url: s.URL() + api.PathUILogin})
	require.Equal(t, http.StatusUnauthorized, empty.StatusCode)

	ok, _ := send(t, req{url: s.URL() + "/secret", cookie: cookie})
	require.Equal(t, http.StatusOK, ok.StatusCode, "the session cookie authorizes a GET (EventSource sends no header)")
	none, _ := send(t, req{url: s.URL() + "/secret"})
	require.Equal(t, http.StatusUnauthorized, none.StatusCode)
	wrong, _ := send(t, req{url: s.URL() + "/secret", cookie: &http.Cookie{Name: cookie.Name, Value: strings.Repeat("b", 64)}})
	require.Equal(t, http.StatusUnauthorized, wrong.StatusCode)
}

func TestGettingACodeNeedsTheToken(t *testing.T) {
	s := startServer(t)
	resp, _ := send(t, req{method: http.MethodPost, url: s.URL() + api.PathUICode})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = send(t, req{method: http.MethodGet, url: s.URL() + api.PathUICode, header: bearer(s)})
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestSessionChangesNeedTheCSRFHeader(t *testing.T) {
	s := startServer(t)
	cookie, csrf := login(t, s)
	cases := []struct {
		name   string
		header map[string]string
		cookie *http.Cookie
		want   int
	}{
		{"cookie without header", nil, cookie, http.StatusForbidden},
		{"cookie with a wrong header", map[string]string{api.CSRFHeader: strings.Repeat("0", 64)}, cookie, http.StatusForbidden},
		{"cookie with the header", map[string]string{api.CSRFHeader: csrf}, cookie, http.StatusOK},
		{"header without cookie", map[string]string{api.CSRFHeader: csrf}, nil, http.StatusUnauthorized},
		{"bearer token alone", bearer(s), nil, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := send(t, req{method: http.MethodPost, url: s.URL() + "/change", header: c.header, cookie: c.cookie})
			require.Equal(t, c.want, resp.StatusCode, body)
		})
	}
	// Another session's CSRF token is not this one's.
	_, other := login(t, s)
	resp, _ := send(t, req{method: http.MethodPost, url: s.URL() + "/change", header: map[string]string{api.CSRFHeader: other}, cookie: cookie})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestAnotherOriginIsRefusedEvenWithTheCookie(t *testing.T) {
	s := startServer(t)
	cookie, csrf := login(t, s)
	for _, origin := range []string{"http://evil.example", "null", "http://127.0.0.1:1"} {
		resp, _ := send(t, req{method: http.MethodPost, url: s.URL() + "/change", cookie: cookie,
			header: map[string]string{api.CSRFHeader: csrf, "Origin": origin}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
		resp, _ = send(t, req{url: s.URL() + "/secret", cookie: cookie, header: map[string]string{"Origin": origin}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
	}
	// DNS rebinding: the page of a name that resolves to 127.0.0.1.
	hr, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+api.PathUI, nil)
	require.NoError(t, err)
	hr.Host = "rebind.example:80"
	resp, err := noRedirects.Do(hr)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	resp, _ = send(t, req{method: http.MethodPost, url: s.URL() + "/change", cookie: cookie,
		header: map[string]string{api.CSRFHeader: csrf, "Origin": s.URL()}})
	require.Equal(t, http.StatusOK, resp.StatusCode, "the page's own origin passes")
}

func TestTheLoginFormTakesTheToken(t *testing.T) {
	s := startServer(t)
	page, body := send(t, req{url: s.URL() + api.PathUI})
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, body, `<form method="post" action="/ui/login"`, "without a session the page asks for the token")
	require.NotContains(t, body, "peer-csrf")

	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": s.URL()}
	resp, body := send(t, req{method: http.MethodPost, url: s.URL() + api.PathUILogin, body: "token=" + strings.Repeat("0", 64), header: form})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, body, "not this daemon&#39;s API token")
	require.Empty(t, resp.Cookies())

	resp, _ = send(t, req{method: http.MethodPost, url: s.URL() + api.PathUILogin, body: "token=" + s.Token(), header: form})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	cookie := sessionCookie(t, s, resp)
	ok, _ := send(t, req{url: s.URL() + "/secret", cookie: cookie})
	require.Equal(t, http.StatusOK, ok.StatusCode)

	form["Origin"] = "http://evil.example"
	resp, _ = send(t, req{method: http.MethodPost, url: s.URL() + api.PathUILogin, body: "token=" + s.Token(), header: form})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a form on another site cannot log the browser in")
}

func TestLogoutEndsTheSession(t *testing.T) {
	s := startServer(t)
	cookie, csrf := login(t, s)
	resp, _ := send(t, req{method: http.MethodPost, url: s.URL() + api.PathUILogout, cookie: cookie})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "logging out is a change: it needs the header")
	resp, _ = send(t, req{method: http.MethodPost, url: s.URL() + api.PathUILogout, cookie: cookie, header: map[string]string{api.CSRFHeader: csrf}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = send(t, req{url: s.URL() + "/secret", cookie: cookie})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestEveryAnswerCarriesTheCSPAndNosniff(t *testing.T) {
	s := startServer(t)
	cookie, _ := login(t, s)
	for _, r := range []req{
		{url: s.URL() + api.PathUI},
		{url: s.URL() + api.PathUI, cookie: cookie},
		{url: s.URL() + api.PathUILogin + "?code=x"},
		{url: s.URL() + "/ui/assets/app.js"},
		{url: s.URL() + "/ui/assets/app.css"},
		{url: s.URL() + "/secret", cookie: cookie},
		{url: s.URL() + "/nothing"},
	} {
		resp, _ := send(t, r)
		require.Equal(t, api.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"), r.url)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), r.url)
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), r.url)
		require.Equal(t, "same-origin", resp.Header.Get("Referrer-Policy"), r.url)
	}
	require.Equal(t, "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'", api.ContentSecurityPolicy)
	resp, _ := send(t, req{url: s.URL() + "/ui/assets/app.js"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "javascript")
	resp, _ = send(t, req{url: s.URL() + "/"})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, api.PathUI, resp.Header.Get("Location"))
}

// The assets load nothing from elsewhere, run no inline script, and the script never parses
// data as HTML.
func TestAssetsAreSelfContained(t *testing.T) {
	dir := "assets"
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`)
	scripts := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	handlers := regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	require.NoError(t, fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err)
		text := string(b)
		require.NotRegexp(t, external, text, "%s loads nothing from another site", p)
		require.NotContains(t, text, "@import", p)
		require.NotContains(t, text, "url(http", p)
		if strings.HasSuffix(p, ".html") {
			for _, m := range scripts.FindAllStringSubmatch(text, -1) {
				require.Contains(t, m[1], `src="/ui/assets/`, "%s: a script comes from the assets", p)
				require.Empty(t, strings.TrimSpace(m[2]), "%s has no inline script", p)
			}
			require.Equal(t, strings.Count(strings.ToLower(text), "<script"), len(scripts.FindAllString(text, -1)), p)
			require.NotRegexp(t, handlers, text, "%s has no inline event handler", p)
			require.NotContains(t, text, "style=", "%s has no inline style (style-src 'self')", p)
		}
		if strings.HasSuffix(p, ".js") {
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
				require.NotContains(t, text, bad, "%s builds the page from text, never HTML", p)
			}
		}
		return nil
	}))
}
