package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/internal/config"
)

// runPeer runs one command line in this process and returns stdout, stderr and the exit code.
func runPeer(t testing.TB, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestConfigSetChecksAndSaysWhatItSet(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, errOut, code := runPeer(t, "", "--repo", repo, "init")
	require.Zero(t, code, errOut)

	good := []struct{ key, value, says string }{
		{"upload_limit", "10MB", "upload_limit = 10 MB/s (10000000 bytes/s)\n"},
		{"upload_limit", "1.5GiB", "upload_limit = 1.6 GB/s (1610612736 bytes/s)\n"},
		{"mdns", "yes", "mdns = true\n"},
		{"mdns", "off", "mdns = false\n"},
		{"reprovide", "1d", "reprovide = 24h0m0s\n"},
		{"bootstrap", "", "bootstrap = (none)\n"},
		{"api", "127.0.0.1:5041", "api = 127.0.0.1:5041\n"},
	}
	for _, g := range good {
		out, errOut, code := runPeer(t, "", "--repo", repo, "config", "set", g.key, g.value)
		require.Zero(t, code, "%s %s: %s", g.key, g.value, errOut)
		require.Equal(t, g.says, out)
	}
	bad := []struct{ key, value, says string }{
		{"bootstrap", "garbage", "bootstrap address"},
		{"listen", "garbage", "listen address"},
		{"api", "garbage", "api address"},
		{"upload_limit", "-5", "must not be negative"},
		{"upload_limit", "fast", "not a size"},
		{"mdns", "maybe", "want yes or no"},
		{"reprovide", "soon", "not a duration"},
	}
	for _, b := range bad {
		_, errOut, code := runPeer(t, "", "--repo", repo, "config", "set", b.key, b.value)
		require.NotZero(t, code, "%s %s is refused", b.key, b.value)
		require.Contains(t, errOut, b.says, "%s %s", b.key, b.value)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
		require.NotContains(t, errOut, "MarshalJSON")
		require.NotContains(t, errOut, "unknown shorthand flag")
	}
	c, err := config.Load(repo)
	require.NoError(t, err, "nothing refused was written")
	require.Equal(t, int64(1610612736), c.UploadLimit)
	require.Equal(t, "127.0.0.1:5041", c.API)
	require.Empty(t, c.Bootstrap)

	_, errOut, code = runPeer(t, "", "--repo", repo, "config", "set", "api", "0.0.0.0:5040")
	require.Zero(t, code, errOut)
	require.Contains(t, errOut, "--api-allow-remote")
	_, errOut, code = runPeer(t, "", "--repo", repo, "config", "set", "api", "127.0.0.1:5041")
	require.Zero(t, code, errOut)
	require.Empty(t, errOut)

	// "--" works too, and flags still go before KEY.
	out, errOut, code := runPeer(t, "", "--repo", repo, "config", "set", "--", "upload_limit", "0")
	require.Zero(t, code, errOut)
	require.Equal(t, "upload_limit = 0 (no cap)\n", out)
	out, errOut, code = runPeer(t, "", "config", "set", "--repo", repo, "conn_low", "10")
	require.Zero(t, code, errOut)
	require.Equal(t, "conn_low = 10\n", out)
}
