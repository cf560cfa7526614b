package api_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/node/api"
)

func startServer(t *testing.T) (*api.Server, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := api.New(api.Config{Addr: "127.0.0.1:0", RepoDir: dir, MaxBody: 1024})
	require.NoError(t, err)
	s.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if api.ReadJSON(w, r, &v) {
			api.WriteJSON(w, http.StatusOK, v)
		}
	})
	s.HandleFunc("GET /secret", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	})
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, dir
}

func do(t *testing.T, method, url, token string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "no CORS headers")
	return resp
}

func TestAuth(t *testing.T) {
	s, _ := startServer(t)
	cases := []struct {
		name, path, token string
		want              int
	}{
		{"health needs no token", api.PathHealth, "", http.StatusOK},
		{"no token", "/secret", "", http.StatusUnauthorized},
		{"wrong token", "/secret", strings.Repeat("0", 64), http.StatusUnauthorized},
		{"token prefix", "/secret", s.Token()[:10], http.StatusUnauthorized},
		{"right token", "/secret", s.Token(), http.StatusOK},
		{"unknown path needs the token", "/nothing", "", http.StatusUnauthorized},
		{"unknown path", "/nothing", s.Token(), http.StatusNotFound},
		{"wrong method", "/echo", s.Token(), http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := do(t, http.MethodGet, s.URL()+c.path, c.token, nil)
			require.Equal(t, c.want, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		})
	}
}

// A request under another name (a DNS-rebinding page whose name resolves to 127.0.0.1) or from
// another site's page is refused before the token is even looked at; the API's own names pass.
func TestHostAndOrigin(t *testing.T) {
	s, _ := startServer(t)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.URL(), "http://"))
	require.NoError(t, err)
	cases := []struct {
		name, host, origin string
		want               int
	}{
		{"loopback address", "127.0.0.1:" + port, "", http.StatusOK},
		{"localhost", "localhost:" + port, "", http.StatusOK},
		{"ipv6 loopback", "[::1]:" + port, "", http.StatusOK},
		{"same origin", "127.0.0.1:" + port, "http://127.0.0.1:" + port, http.StatusOK},
		{"rebinding name", "attacker.example:" + port, "", http.StatusForbidden},
		{"rebinding name and its origin", "attacker.example:" + port, "http://attacker.example:" + port, http.StatusForbidden},
		{"another site", "127.0.0.1:" + port, "http://evil.example", http.StatusForbidden},
		{"another port", "127.0.0.1:" + port, "http://127.0.0.1:1", http.StatusForbidden},
		{"opaque origin", "127.0.0.1:" + port, "null", http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/secret", nil)
			require.NoError(t, err)
			req.Host = c.host
			req.Header.Set("Authorization", "Bearer "+s.Token())
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, c.want, resp.StatusCode)
			require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "no CORS headers")
		})
	}
}

func TestBodyCap(t *testing.T) {
	s, _ := startServer(t)
	small := []byte(`{"a":1}`)
	require.Equal(t, http.StatusOK, do(t, http.MethodPost, s.URL()+"/echo", s.Token(), small).StatusCode)

	big := []byte(`{"a":"` + strings.Repeat("x", 4096) + `"}`)
	resp := do(t, http.MethodPost, s.URL()+"/echo", s.Token(), big)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	// Without a Content-Length (chunked), the cap applies while reading.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/echo", struct{ *bytes.Reader }{bytes.NewReader(big)})
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Zero(t, req.ContentLength, "length unknown: sent chunked")
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

func TestFilesAndClient(t *testing.T) {
	s, dir := startServer(t)
	for _, f := range []string{api.AddrFile, api.TokenFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
	c, err := api.ForRepo(dir)
	require.NoError(t, err)
	require.Equal(t, s.URL(), c.URL())
	require.NoError(t, c.Health(t.Context()))
	var out map[string]string
	require.NoError(t, c.Call(t.Context(), http.MethodGet, "/secret", nil, &out))
	require.Equal(t, "yes", out["ok"])
	err = c.Call(t.Context(), http.MethodGet, "/nothing", nil, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)

	// The token survives a restart; the address file does not.
	tok := s.Token()
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(dir, api.AddrFile))
	require.ErrorIs(t, err, os.ErrNotExist, "address file removed on Close")
	got, err := api.LoadOrCreateToken(dir)
	require.NoError(t, err)
	require.Equal(t, tok, got)

	_, err = api.ForRepo(dir)
	require.ErrorIs(t, err, api.ErrNoDaemon)
	// A stale address file: the call says no daemon runs.
	require.ErrorIs(t, c.Health(t.Context()), api.ErrNoDaemon)
}

func TestRemoteNeedsFlag(t *testing.T) {
	_, err := api.New(api.Config{Addr: "0.0.0.0:0", RepoDir: t.TempDir()})
	require.ErrorContains(t, err, "--api-allow-remote")
	_, err = api.New(api.Config{Addr: "0.0.0.0:0", RepoDir: t.TempDir(), AllowRemote: true})
	require.NoError(t, err)
	_, err = api.New(api.Config{Addr: "[::1]:0", RepoDir: t.TempDir()})
	require.NoError(t, err)
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	s, err := api.New(api.Config{Addr: ln.Addr().String(), RepoDir: t.TempDir()})
	require.NoError(t, err)
	err = s.Start(context.Background())
	require.ErrorContains(t, err, "--api")
}

func TestReadSSE(t *testing.T) {
	in := "id: 1\ndata: {\"a\":1}\n\n: comment\n\ndata: x\ndata: y\n\n"
	var got []string
	require.NoError(t, api.ReadSSE(strings.NewReader(in), func(b []byte) error {
		got = append(got, string(b))
		return nil
	}))
	require.Equal(t, []string{`{"a":1}`, "x\ny"}, got)
}

// While the daemon starts, every route (the health check too) answers 503 "starting", which the
// client reports as ErrStarting; a wrong token is still refused.
func TestStartingAnswers503(t *testing.T) {
	s, _ := startServer(t)
	s.SetStarting("the daemon is starting")
	c := api.NewClient(s.URL(), s.Token())
	require.ErrorIs(t, c.Health(t.Context()), api.ErrStarting)
	err := c.Call(t.Context(), http.MethodGet, "/secret", nil, nil)
	require.ErrorIs(t, err, api.ErrStarting)
	require.Equal(t, http.StatusUnauthorized, do(t, http.MethodGet, s.URL()+"/secret", "", nil).StatusCode)
	s.SetStarting("")
	require.NoError(t, c.Health(t.Context()))
	require.NoError(t, c.Call(t.Context(), http.MethodGet, "/secret", nil, nil))
}
