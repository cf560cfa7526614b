package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/internal/config"
)

func TestDefaultsAskForNoTraffic(t *testing.T) {
	c := config.Default()
	require.NoError(t, c.Validate())
	require.Empty(t, c.Bootstrap)
	require.False(t, c.MDNS || c.AutoNAT || c.HolePunching || c.RelayClient || c.PortMapping || c.DHTPublicOnly)
	require.Equal(t, "127.0.0.1:5040", c.API)
	require.Equal(t, "auto", c.DHTMode)
}

func TestProfiles(t *testing.T) {
	lan := config.Default()
	require.NoError(t, lan.ApplyProfile("lan"))
	require.True(t, lan.MDNS)
	require.Empty(t, lan.Bootstrap)

	pub := config.Default()
	require.NoError(t, pub.ApplyProfile("public"))
	require.True(t, pub.MDNS && pub.AutoNAT && pub.HolePunching && pub.RelayClient && pub.PortMapping && pub.DHTPublicOnly)
	require.Equal(t, config.PublicBootstrap, pub.Bootstrap)

	require.Error(t, pub.ApplyProfile("fast"))
}

func TestGetSet(t *testing.T) {
	c := config.Default()
	cases := []struct{ key, value, want string }{
		{"api", "127.0.0.1:0", "127.0.0.1:0"},
		{"mdns", "true", "true"},
		{"conn_high", "500", "500"},
		{"reprovide", "1h30m", "1h30m0s"},
		{"listen", "/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/udp/0/quic-v1", `["/ip4/127.0.0.1/tcp/0","/ip4/127.0.0.1/udp/0/quic-v1"]`},
		{"bootstrap", `["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQi1G759xSxZ9v5mtiGmeCiS13r5WBV2KLfkZZjiqG3BP"]`, `["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQi1G759xSxZ9v5mtiGmeCiS13r5WBV2KLfkZZjiqG3BP"]`},
		{"bootstrap", "", "[]"},
		{"network", "lab", "lab"},
	}
	for _, tc := range cases {
		require.NoError(t, c.Set(tc.key, tc.value), tc.key)
		got, err := c.Get(tc.key)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, tc.key)
	}
	require.Equal(t, 90*time.Minute, time.Duration(c.Reprovide))
	require.Len(t, c.Listen, 2)
	_, err := c.Get("nope")
	require.ErrorContains(t, err, "unknown setting")
	require.Contains(t, config.Keys(), "swarm_key")
}

// Every key takes the values the daemon can use, in the forms people write, and refuses the rest
// with an error that names the key; a refused value changes nothing.
func TestSetEveryKey(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "swarm.key")
	require.NoError(t, os.WriteFile(keyFile, []byte("/key/swarm/psk/1.0.0/\n/base16/\n"+strings.Repeat("ab", 32)+"\n"), 0o600))
	notKey := filepath.Join(t.TempDir(), "notkey")
	require.NoError(t, os.WriteFile(notKey, []byte("hello"), 0o600))
	const boot = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQi1G759xSxZ9v5mtiGmeCiS13r5WBV2KLfkZZjiqG3BP"

	type good struct{ value, get string }
	cases := map[string]struct {
		good []good
		bad  []string
	}{
		"listen": {
			good: []good{{"/ip4/127.0.0.1/tcp/0", `["/ip4/127.0.0.1/tcp/0"]`}, {`["/ip6/::1/udp/0/quic-v1"]`, `["/ip6/::1/udp/0/quic-v1"]`}},
			bad:  []string{"garbage", "", "/ip4/127.0.0.1/tcp/0, nonsense", "/ip4/999.0.0.1/tcp/1", `["/ip4/1.2.3.4/tcp/1"`},
		},
		"api": {
			good: []good{{"127.0.0.1:5041", "127.0.0.1:5041"}, {"localhost:0", "localhost:0"}, {"[::1]:5040", "[::1]:5040"}},
			bad:  []string{"garbage", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http", ":5040", ""},
		},
		"bootstrap": {
			good: []good{{boot, `["` + boot + `"]`}, {"", "[]"}},
			bad:  []string{"garbage", "/ip4/127.0.0.1/tcp/1", boot + ",junk"},
		},
		"network": {
			good: []good{{"lab-1", "lab-1"}, {"", ""}},
			bad:  []string{"a/b", "two words", strings.Repeat("x", 64)},
		},
		"conn_low":  {good: []good{{"0", "0"}, {"50", "50"}}, bad: []string{"-1", "x", "1.5", "100000", "99999999999"}},
		"conn_high": {good: []good{{"400", "400"}, {"1000", "1000"}}, bad: []string{"-5", "10", "many"}},
		"reprovide": {
			good: []good{{"1d", "24h0m0s"}, {"7d", "168h0m0s"}, {"1.5d", "36h0m0s"}, {"1d12h", "36h0m0s"}, {"22h", "22h0m0s"}, {"90s", "1m30s"}},
			bad:  []string{"soon", "1", "-1h", "-2d", "d", "1w"},
		},
		"catalog_ttl":       {good: []good{{"2d", "48h0m0s"}}, bad: []string{"forever", "-1s"}},
		"bootstrap_timeout": {good: []good{{"30s", "30s"}, {"0s", "0s"}}, bad: []string{"30", "-3s"}},
		"upload_limit": {
			good: []good{{"10MB", "10000000"}, {"1.5GiB", "1610612736"}, {"64 KiB", "65536"}, {"2mb/s", "2000000"}, {"1000", "1000"}, {"0", "0"}},
			bad:  []string{"-5", "-5MB", "fast", "MB", "1e400", "NaN"},
		},
		"download_limit": {
			good: []good{{"20MB", "20000000"}, {"64 KiB", "65536"}, {"0", "0"}},
			bad:  []string{"-5", "slow", "1e400"},
		},
		"max_fetches": {good: []good{{"1", "1"}, {"4", "4"}, {"256", "256"}}, bad: []string{"0", "-1", "257", "many"}},
		"swarm_key":   {good: []good{{keyFile, keyFile}, {"", ""}}, bad: []string{notKey, filepath.Join(t.TempDir(), "missing")}},
		"gateway":     {good: []good{{"127.0.0.1:8080", "127.0.0.1:8080"}, {"[::1]:0", "[::1]:0"}, {"", ""}}, bad: []string{"8080", "localhost", "127.0.0.1:99999"}},
		"dht_mode":    {good: []good{{"server", "server"}, {"client", "client"}, {"auto", "auto"}}, bad: []string{"sometimes", "SERVER"}},
	}
	for _, key := range []string{"mdns", "autonat", "hole_punching", "relay_client", "port_mapping", "dht_public_only", "rendezvous", "bitswap"} {
		cases[key] = struct {
			good []good
			bad  []string
		}{
			good: []good{{"yes", "true"}, {"no", "false"}, {"on", "true"}, {"OFF", "false"}, {"true", "true"}, {"false", "false"}, {"1", "true"}, {"0", "false"}},
			bad:  []string{"maybe", "", "2"},
		}
	}
	require.ElementsMatch(t, config.Keys(), func() []string {
		var ks []string
		for k := range cases {
			ks = append(ks, k)
		}
		return ks
	}(), "every key is tested")

	for key, tc := range cases {
		t.Run(key, func(t *testing.T) {
			for _, g := range tc.good {
				c := config.Default()
				require.NoError(t, c.Set(key, g.value), "%s %q", key, g.value)
				got, err := c.Get(key)
				require.NoError(t, err)
				require.Equal(t, g.get, got, "%s %q", key, g.value)
				require.NoError(t, c.Validate())
				shown, err := c.Show(key)
				require.NoError(t, err)
				require.NotEmpty(t, shown)
			}
			for _, b := range tc.bad {
				c := config.Default()
				before := c
				err := c.Set(key, b)
				require.Error(t, err, "%s %q is refused", key, b)
				require.Equal(t, before, c, "a failed set changes nothing")
				require.NotContains(t, err.Error(), "MarshalJSON")
			}
		})
	}
}

func TestShow(t *testing.T) {
	c := config.Default()
	require.NoError(t, c.Set("upload_limit", "10MB"))
	s, err := c.Show("upload_limit")
	require.NoError(t, err)
	require.Equal(t, "10 MB/s (10000000 bytes/s)", s)
	require.NoError(t, c.Set("upload_limit", "0"))
	s, _ = c.Show("upload_limit")
	require.Equal(t, "0 (no cap)", s)
	require.NoError(t, c.Set("download_limit", "20MB"))
	s, _ = c.Show("download_limit")
	require.Equal(t, "20 MB/s (20000000 bytes/s)", s)
	s, _ = c.Show("bootstrap")
	require.Equal(t, "(none)", s)
	require.NoError(t, c.Set("reprovide", "7d"))
	s, _ = c.Show("reprovide")
	require.Equal(t, "168h0m0s", s)
	_, err = c.Show("nope")
	require.Error(t, err)
}

func TestLoadRefusesWhatTheDaemonCannotUse(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, config.FileName), []byte(`{"bootstrap":["garbage"]}`), 0o600))
	c, err := config.Load(dir)
	var inv *config.InvalidError
	require.ErrorAs(t, err, &inv)
	require.ErrorContains(t, err, "bootstrap")
	require.Equal(t, []string{"garbage"}, c.Bootstrap, "the file as read, so it can be fixed")
	require.NoError(t, c.Set("bootstrap", ""))
	require.NoError(t, config.Save(dir, c))
	_, err = config.Load(dir)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(dir, config.FileName), []byte(`{"reprovide":"2d"}`), 0o600))
	c, err = config.Load(dir)
	require.NoError(t, err, "a hand-written file may count days too")
	require.Equal(t, 48*time.Hour, time.Duration(c.Reprovide))
}

func TestUnits(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "1048576": 1 << 20, "64KiB": 64 << 10, "10MB": 10e6, "10 mb": 10e6, "1.5GiB": 1.5 * (1 << 30), "2M/s": 2e6, "7B": 7, "3kB": 3000, "1TB": 1e12} {
		got, err := config.ParseBytes(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "x", "-1", "MB", "NaN", "inf", "1e400", "5 bits"} {
		_, err := config.ParseBytes(in)
		require.Error(t, err, in)
	}
	for n, want := range map[float64]string{0: "0 B", 999: "999 B", 1000: "1 kB", 1500: "1.5 kB", 10e6: "10 MB", 1 << 30: "1.1 GB", 999_999: "1 MB", 73400320: "73.4 MB"} {
		require.Equal(t, want, config.FormatBytes(n), "%v", n)
	}
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 645 << 20: "645 MiB", 1 << 30: "1 GiB", 1_500_000: "1.4 MiB"} {
		require.Equal(t, want, config.FormatSize(n), "%d", n)
	}
	for in, want := range map[string]time.Duration{"1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "0.5d": 12 * time.Hour, "2d3h": 51 * time.Hour, "90m": 90 * time.Minute} {
		got, err := config.ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "d", "xd", "1d-1h", "soon", "1y"} {
		_, err := config.ParseDuration(in)
		require.Error(t, err, in)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Load(dir)
	require.NoError(t, err)
	require.Equal(t, config.Default(), c, "a missing file gives the defaults")
	require.NoError(t, c.Set("network", "lab"))
	require.NoError(t, config.Save(dir, c))
	st, err := os.Stat(filepath.Join(dir, config.FileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	got, err := config.Load(dir)
	require.NoError(t, err)
	require.Equal(t, c, got)

	// Settings missing from an older file keep their defaults.
	require.NoError(t, os.WriteFile(filepath.Join(dir, config.FileName), []byte(`{"network":"old"}`), 0o600))
	got, err = config.Load(dir)
	require.NoError(t, err)
	require.Equal(t, "old", got.Network)
	require.True(t, got.Rendezvous)
	require.True(t, got.Bitswap)
	require.Equal(t, config.Default().Listen, got.Listen)
}
