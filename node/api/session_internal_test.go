package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A code is good for CodeTTL and once; a session for SessionTTL; both are bounded in number.
func TestCodesAndSessionsExpire(t *testing.T) {
	ss := newSessions()
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	ss.now = func() time.Time { return now }

	code, exp, err := ss.newCode()
	require.NoError(t, err)
	require.Equal(t, now.Add(2*time.Minute), exp)
	late, _, err := ss.newCode()
	require.NoError(t, err)
	now = now.Add(CodeTTL - time.Second)
	require.True(t, ss.redeem(code), "within two minutes")
	require.False(t, ss.redeem(code), "once")
	now = now.Add(time.Second)
	require.False(t, ss.redeem(late), "not at two minutes")

	cookie, s := ss.newSession()
	got, ok := ss.get(cookie)
	require.True(t, ok)
	require.Equal(t, s.CSRF, got.CSRF)
	require.NotEqual(t, cookie, got.CSRF)
	now = now.Add(SessionTTL)
	_, ok = ss.get(cookie)
	require.False(t, ok, "a session ends after SessionTTL")

	for range maxCodes {
		_, _, err := ss.newCode()
		require.NoError(t, err)
	}
	_, _, err = ss.newCode()
	require.ErrorContains(t, err, "login codes are waiting")
	now = now.Add(CodeTTL)
	_, _, err = ss.newCode()
	require.NoError(t, err, "expired codes make room")

	first, _ := ss.newSession()
	for range maxSessions {
		now = now.Add(time.Millisecond)
		ss.newSession()
	}
	require.Len(t, ss.sessions, maxSessions)
	_, ok = ss.get(first)
	require.False(t, ok, "the oldest session gives way")
}

// Listening on every interface, the login URL names loopback, which a browser here can open.
func TestTheLoginURLOfEveryInterfaceIsLoopback(t *testing.T) {
	for listen, want := range map[string]string{
		"http://0.0.0.0:5040":   "http://127.0.0.1:5040",
		"http://[::]:5040":      "http://127.0.0.1:5040",
		"http://127.0.0.1:5040": "http://127.0.0.1:5040",
		"http://[::1]:5041":     "http://[::1]:5041",
		"http://192.0.2.7:5040": "http://192.0.2.7:5040",
	} {
		s := &Server{url: listen}
		require.Equal(t, want, s.browserURL(), listen)
	}
}
