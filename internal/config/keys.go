package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/pnet"
)

// Keys lists the settings' names as they appear in the config file.
func Keys() []string {
	m, _ := Default().fields()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c Config) fields() (map[string]json.RawMessage, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// Get returns the value of one setting as it reads in the config file (JSON), except that a
// string is returned bare.
func (c Config) Get(key string) (string, error) {
	m, err := c.fields()
	if err != nil {
		return "", err
	}
	v, ok := m[key]
	if !ok {
		return "", fmt.Errorf("unknown setting %q (known: %s)", key, strings.Join(Keys(), ", "))
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	return string(v), nil
}

// kind is how a setting's text form is read.
type kind int

const (
	kindString kind = iota
	kindBool
	kindInt
	kindDuration
	kindBytes
	kindList
)

// setters maps every key to how its text form is read and where it goes. Values are checked by
// Validate (the same checks the daemon's start depends on) before they are kept.
var setters = map[string]struct {
	kind kind
	set  func(c *Config, v any)
}{
	"listen":            {kindList, func(c *Config, v any) { c.Listen = v.([]string) }},
	"api":               {kindString, func(c *Config, v any) { c.API = v.(string) }},
	"gateway":           {kindString, func(c *Config, v any) { c.Gateway = v.(string) }},
	"bootstrap":         {kindList, func(c *Config, v any) { c.Bootstrap = v.([]string) }},
	"network":           {kindString, func(c *Config, v any) { c.Network = v.(string) }},
	"mdns":              {kindBool, func(c *Config, v any) { c.MDNS = v.(bool) }},
	"autonat":           {kindBool, func(c *Config, v any) { c.AutoNAT = v.(bool) }},
	"hole_punching":     {kindBool, func(c *Config, v any) { c.HolePunching = v.(bool) }},
	"relay_client":      {kindBool, func(c *Config, v any) { c.RelayClient = v.(bool) }},
	"port_mapping":      {kindBool, func(c *Config, v any) { c.PortMapping = v.(bool) }},
	"conn_low":          {kindInt, func(c *Config, v any) { c.ConnLow = int(v.(int64)) }},
	"conn_high":         {kindInt, func(c *Config, v any) { c.ConnHigh = int(v.(int64)) }},
	"reprovide":         {kindDuration, func(c *Config, v any) { c.Reprovide = Duration(v.(time.Duration)) }},
	"catalog_ttl":       {kindDuration, func(c *Config, v any) { c.CatalogTTL = Duration(v.(time.Duration)) }},
	"swarm_key":         {kindString, func(c *Config, v any) { c.SwarmKey = v.(string) }},
	"upload_limit":      {kindBytes, func(c *Config, v any) { c.UploadLimit = v.(int64) }},
	"download_limit":    {kindBytes, func(c *Config, v any) { c.DownloadLimit = v.(int64) }},
	"max_fetches":       {kindInt, func(c *Config, v any) { c.MaxFetches = int(v.(int64)) }},
	"dht_mode":          {kindString, func(c *Config, v any) { c.DHTMode = v.(string) }},
	"dht_public_only":   {kindBool, func(c *Config, v any) { c.DHTPublicOnly = v.(bool) }},
	"bootstrap_timeout": {kindDuration, func(c *Config, v any) { c.BootstrapTimeout = Duration(v.(time.Duration)) }},
	"rendezvous":        {kindBool, func(c *Config, v any) { c.Rendezvous = v.(bool) }},
	"bitswap":           {kindBool, func(c *Config, v any) { c.Bitswap = v.(bool) }},
}

// Set changes one setting from its text form and checks the result as the daemon would at start;
// on error c is unchanged. Strings take the bare text; booleans yes/no, true/false, on/off or 1/0;
// durations Go syntax or days (90s, 22h, 7d); upload_limit and download_limit a rate in bytes per second with an
// optional unit (10MB, 1.5GiB; 0 is no cap); lists a JSON array or comma-separated values ("" for
// an empty list).
func (c *Config) Set(key, value string) error {
	s, ok := setters[key]
	if !ok {
		return fmt.Errorf("unknown setting %q (known: %s)", key, strings.Join(Keys(), ", "))
	}
	v, err := parseValue(s.kind, value)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if key == "api" && v == "" {
		return errors.New("api: want HOST:PORT, such as 127.0.0.1:5040 (the other commands reach the daemon there)")
	}
	if key == "swarm_key" && v != "" {
		if v, err = checkSwarmKey(v.(string)); err != nil {
			return fmt.Errorf("swarm_key: %w", err)
		}
	}
	next := *c
	s.set(&next, v)
	if err := next.Validate(); err != nil {
		return err
	}
	*c = next
	return nil
}

// checkSwarmKey reads a pre-shared key file as the daemon does and returns its absolute path, so
// the setting means the same file whatever directory the daemon starts in.
func checkSwarmKey(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := pnet.DecodeV1PSK(f); err != nil {
		return "", fmt.Errorf("%s: %v (want the /key/swarm/psk/1.0.0/ format, as IPFS swarm.key files)", abs, err)
	}
	return abs, nil
}

func parseValue(k kind, value string) (any, error) {
	v := strings.TrimSpace(value)
	switch k {
	case kindBool:
		return ParseBool(v)
	case kindInt:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", value)
		}
		if n < 0 {
			return nil, fmt.Errorf("%d: must not be negative", n)
		}
		return n, nil
	case kindDuration:
		d, err := ParseDuration(v)
		if err != nil {
			return nil, err
		}
		if d < 0 {
			return nil, fmt.Errorf("%q: must not be negative", value)
		}
		return d, nil
	case kindBytes:
		n, err := ParseBytes(v)
		if err != nil {
			return nil, fmt.Errorf("%w (0 means no cap)", err)
		}
		if n > math.MaxInt64/2 {
			return nil, fmt.Errorf("%q is too large", value)
		}
		return int64(math.Round(n)), nil
	case kindList:
		list := []string{}
		if strings.HasPrefix(v, "[") {
			if err := json.Unmarshal([]byte(v), &list); err != nil {
				return nil, fmt.Errorf("%q is not a JSON list of strings: %w", value, err)
			}
			return list, nil
		}
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		return list, nil
	}
	return v, nil
}

// Show describes one setting for people: sizes and rates in units, durations in Go syntax, lists
// as comma-separated values ("none" when empty), an empty string as "(none)".
func (c Config) Show(key string) (string, error) {
	s, ok := setters[key]
	if !ok {
		return "", fmt.Errorf("unknown setting %q (known: %s)", key, strings.Join(Keys(), ", "))
	}
	if key == "upload_limit" || key == "download_limit" {
		limit := c.UploadLimit
		if key == "download_limit" {
			limit = c.DownloadLimit
		}
		if limit == 0 {
			return "0 (no cap)", nil
		}
		return fmt.Sprintf("%s/s (%d bytes/s)", FormatBytes(float64(limit)), limit), nil
	}
	v, err := c.Get(key)
	if err != nil {
		return "", err
	}
	switch s.kind {
	case kindList:
		var list []string
		_ = json.Unmarshal([]byte(v), &list)
		if len(list) == 0 {
			return "(none)", nil
		}
		return strings.Join(list, ", "), nil
	case kindString:
		if v == "" {
			return "(none)", nil
		}
	}
	return v, nil
}
