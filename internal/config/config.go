package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"peer/discovery"
)

// FileName is the config file's name inside the repo.
const FileName = "config.json"

// Duration is a time.Duration that writes as a string such as "22h0m0s" and reads Go syntax or
// days ("7d").
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1h30m\": %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Config is the content of the repo's config file. Every field has a default in Default.
type Config struct {
	// Listen is the multiaddrs the node listens on. Default: all interfaces, TCP and QUIC, port 4040.
	Listen []string `json:"listen"`
	// API is where the local HTTP API listens. Default 127.0.0.1:5040 (loopback only).
	API string `json:"api"`
	// Gateway is where the read-only HTTP gateway (GET /ipfs/CID[/path], no token) listens.
	// Default "": no gateway. Loopback unless the daemon runs with --allow-remote-gateway.
	Gateway string `json:"gateway"`
	// Bootstrap is the peers dialled at start. Default: none.
	Bootstrap []string `json:"bootstrap"`
	// Network names a private network: DHT prefix /peer/NAME and its own gossip topic.
	// Default "": the public IPFS DHT prefix /ipfs.
	Network string `json:"network"`
	// MDNS finds peers on the local network by multicast. Default false.
	MDNS bool `json:"mdns"`
	// NAT traversal for nodes on real networks. Default: all off.
	AutoNAT      bool `json:"autonat"`
	HolePunching bool `json:"hole_punching"`
	RelayClient  bool `json:"relay_client"`
	PortMapping  bool `json:"port_mapping"`
	// ConnLow and ConnHigh are the connection manager's watermarks. Default 100 and 400.
	ConnLow  int `json:"conn_low"`
	ConnHigh int `json:"conn_high"`
	// Reprovide is how often shared roots are provided again on the DHT. Default 22h.
	Reprovide Duration `json:"reprovide"`
	// CatalogTTL is how long an announcement stays in the catalog without being seen again. Default 48h.
	CatalogTTL Duration `json:"catalog_ttl"`
	// SwarmKey is the path of a libp2p pre-shared key file (private network, TCP only). Default "".
	SwarmKey string `json:"swarm_key"`
	// UploadLimit caps what the node sends to peers, in bytes per second. Default 0: no cap.
	UploadLimit int64 `json:"upload_limit"`
	// DownloadLimit caps what the node's fetches receive, in bytes per second, all together.
	// Default 0: no cap.
	DownloadLimit int64 `json:"download_limit"`
	// MaxFetches is how many of the daemon's transfers download at once; the others wait in
	// the queue. Default 4.
	MaxFetches int `json:"max_fetches"`
	// DHTMode is "auto", "server" or "client". Auto serves the DHT on a named network and, unless
	// DHTPublicOnly, when the node listens only on loopback or private addresses (LANs,
	// testnets); with DHTPublicOnly (the public profile) AutoNAT's reachability decides: only
	// private addresses start as a client, a public one serves until found unreachable.
	// Default "auto".
	DHTMode string `json:"dht_mode"`
	// DHTPublicOnly keeps private and loopback addresses out of the DHT (for nodes on the public
	// IPFS DHT). Default false, so LANs and loopback testnets work; the public profile sets it.
	DHTPublicOnly bool `json:"dht_public_only"`
	// BootstrapTimeout bounds how long the daemon waits at start for its DHT routing table to
	// hold a peer when bootstrap peers are given. Default 10s.
	BootstrapTimeout Duration `json:"bootstrap_timeout"`
	// Rendezvous advertises and looks up the network's rendezvous key on the DHT so peers of one
	// network find each other. It only talks to peers the DHT already knows. Default true.
	Rendezvous bool `json:"rendezvous"`
	// Bitswap answers IPFS peers (Kubo and any Bitswap 1.0.0–1.2.0 client) for every block of
	// the files the node holds, bounded per peer. Default true.
	Bitswap bool `json:"bitswap"`
}

// Default returns the settings of a new repo.
func Default() Config {
	return Config{
		Listen: []string{
			"/ip4/0.0.0.0/tcp/4040",
			"/ip4/0.0.0.0/udp/4040/quic-v1",
			"/ip6/::/tcp/4040",
			"/ip6/::/udp/4040/quic-v1",
		},
		API:              "127.0.0.1:5040",
		Bootstrap:        []string{},
		ConnLow:          100,
		ConnHigh:         400,
		Reprovide:        Duration(22 * time.Hour),
		CatalogTTL:       Duration(48 * time.Hour),
		DHTMode:          "auto",
		BootstrapTimeout: Duration(10 * time.Second),
		Rendezvous:       true,
		Bitswap:          true,
		MaxFetches:       4,
	}
}

// PublicBootstrap is the well-known IPFS bootstrap peers that the public profile sets.
var PublicBootstrap = []string{
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
	"/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
}

// Profiles lists the names ApplyProfile accepts.
var Profiles = []string{"default", "lan", "public"}

// ApplyProfile turns on what a profile needs: "lan" enables mDNS; "public" adds the public IPFS
// bootstrap peers, NAT traversal and mDNS, and keeps private addresses out of the DHT;
// "default" changes nothing.
func (c *Config) ApplyProfile(name string) error {
	switch name {
	case "", "default":
	case "lan":
		c.MDNS = true
	case "public":
		c.MDNS = true
		c.Bootstrap = append([]string(nil), PublicBootstrap...)
		c.AutoNAT, c.HolePunching, c.RelayClient, c.PortMapping = true, true, true, true
		c.DHTPublicOnly = true
	default:
		return fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(Profiles, ", "))
	}
	return nil
}

// Validate checks values that would otherwise fail later and less clearly, with the parsers the
// daemon uses at start: multiaddrs for listen, /p2p/ multiaddrs for bootstrap, HOST:PORT for api.
func (c Config) Validate() error {
	if len(c.Listen) == 0 {
		return errors.New("listen: at least one address is needed, such as /ip4/0.0.0.0/tcp/4040")
	}
	for _, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("listen address %q is not a multiaddr (such as /ip4/0.0.0.0/tcp/4040): %v", s, err)
		}
	}
	for _, s := range c.Bootstrap {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			return fmt.Errorf("bootstrap address %q: want a multiaddr ending in /p2p/ID, such as /ip4/192.0.2.7/tcp/4040/p2p/12D3KooW…: %v", s, err)
		}
	}
	if c.Gateway != "" {
		if err := checkHostPort(c.Gateway); err != nil {
			return fmt.Errorf("gateway address %q: %w", c.Gateway, err)
		}
	}
	if c.API != "" {
		if err := checkHostPort(c.API); err != nil {
			return fmt.Errorf("api address %q: %w", c.API, err)
		}
	}
	if err := discovery.ValidateNetwork(c.Network); err != nil {
		return err
	}
	if c.ConnLow < 0 || c.ConnHigh < c.ConnLow {
		return fmt.Errorf("conn_low (%d) and conn_high (%d) must satisfy 0 <= low <= high", c.ConnLow, c.ConnHigh)
	}
	if c.UploadLimit < 0 {
		return errors.New("upload_limit must not be negative (0 means no cap)")
	}
	if c.DownloadLimit < 0 {
		return errors.New("download_limit must not be negative (0 means no cap)")
	}
	if c.MaxFetches < 1 || c.MaxFetches > 256 {
		return fmt.Errorf("max_fetches %d: want from 1 to 256 transfers at once", c.MaxFetches)
	}
	if c.Reprovide < 0 || c.CatalogTTL < 0 || c.BootstrapTimeout < 0 {
		return errors.New("reprovide, catalog_ttl and bootstrap_timeout must not be negative")
	}
	switch c.DHTMode {
	case "", "auto", "server", "client":
	default:
		return fmt.Errorf("dht_mode %q: want auto, server or client", c.DHTMode)
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want HOST:PORT, such as 127.0.0.1:5040")
	}
	if host == "" {
		return errors.New("want HOST:PORT with a host, such as 127.0.0.1:5040")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	return nil
}

// InvalidError is a config file that reads as JSON but holds a value the node cannot use.
type InvalidError struct {
	Path string
	Err  error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s: %v (change it with `peer config set` or edit the file)", e.Path, e.Err)
}
func (e *InvalidError) Unwrap() error { return e.Err }

// Load reads the config file in repo dir. A missing file gives the defaults.
func Load(dir string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("reading %s: %w", filepath.Join(dir, FileName), err)
	}
	if err := c.Validate(); err != nil {
		return c, &InvalidError{Path: filepath.Join(dir, FileName), Err: err}
	}
	return c, nil
}

// Save writes c to the config file in repo dir atomically.
func Save(dir string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, FileName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
