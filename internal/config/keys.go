package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
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

// Set changes one setting from its text form. Strings and durations take the bare text
// ("1h30m"); lists take a JSON array or comma-separated values ("" for an empty list); booleans
// and numbers take their JSON form. The result is validated.
func (c *Config) Set(key, value string) error {
	m, err := c.fields()
	if err != nil {
		return err
	}
	cur, ok := m[key]
	if !ok {
		return fmt.Errorf("unknown setting %q (known: %s)", key, strings.Join(Keys(), ", "))
	}
	var raw []byte
	switch t := bytes.TrimSpace(cur); {
	case len(t) > 0 && t[0] == '"':
		raw, _ = json.Marshal(value)
	case len(t) > 0 && (t[0] == '[' || string(t) == "null"):
		v := strings.TrimSpace(value)
		if strings.HasPrefix(v, "[") {
			raw = []byte(v)
		} else {
			list := []string{}
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			raw, _ = json.Marshal(list)
		}
	default:
		raw = []byte(strings.TrimSpace(value))
	}
	m[key] = raw
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	next := *c
	// Lists are replaced, not merged: clear them before decoding.
	next.Listen, next.Bootstrap = nil, nil
	if err := json.Unmarshal(b, &next); err != nil {
		return fmt.Errorf("setting %s to %q: %w", key, value, err)
	}
	if err := next.Validate(); err != nil {
		return err
	}
	*c = next
	return nil
}
