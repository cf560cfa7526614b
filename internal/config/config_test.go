package config_test

import (
	"os"
	"path/filepath"
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

	for _, bad := range [][2]string{
		{"nope", "1"}, {"mdns", "maybe"}, {"conn_high", "-1"}, {"reprovide", "soon"}, {"dht_mode", "sometimes"},
	} {
		before := c
		require.Error(t, c.Set(bad[0], bad[1]), bad[0])
		require.Equal(t, before, c, "a failed set changes nothing")
	}
	_, err := c.Get("nope")
	require.ErrorContains(t, err, "unknown setting")
	require.Contains(t, config.Keys(), "swarm_key")
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
	require.Equal(t, config.Default().Listen, got.Listen)
}
