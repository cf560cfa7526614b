package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseBytes reads a size as people write it: a plain number of bytes (1048576), or a number with
// a decimal (kB, MB, GB, TB; K, M, G, T) or binary (KiB, MiB, GiB, TiB) unit, with or without a
// space (10MB, 1.5 GiB). Units are case-insensitive except that "b" alone is not accepted as bits.
// An optional "/s" is ignored, so rates read the same way. Negative, NaN and infinite sizes are
// refused.
func ParseBytes(s string) (float64, error) {
	in := s
	s = strings.TrimSuffix(strings.TrimSpace(s), "/s")
	units := []struct {
		suffix string
		mult   float64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12}, {"b", 1},
	}
	lower := strings.ToLower(s)
	mult := 1.0
	for _, u := range units {
		if rest, ok := strings.CutSuffix(lower, u.suffix); ok {
			s, mult = strings.TrimSpace(s[:len(rest)]), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err == nil && v < 0:
		return 0, fmt.Errorf("%q: a size must not be negative", in)
	case err != nil || math.IsNaN(v) || math.IsInf(v*mult, 0):
		return 0, fmt.Errorf("%q is not a size: want a number of bytes or one with a unit, such as 1048576, 64KiB, 10MB or 1.5GiB", in)
	}
	return v * mult, nil
}

// FormatSize writes a size for people in binary units, the family every size the node prints
// uses: 512 B, 1.5 KiB, 645 MiB, 1 GiB (one decimal below 10, none above).
func FormatSize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	switch {
	case i == 0:
		return fmt.Sprintf("%d B", n)
	case v < 9.95:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " " + units[i]
	default:
		return fmt.Sprintf("%.0f %s", v, units[i])
	}
}

// FormatBytes writes n bytes in decimal units with at most one decimal: 999 B, 1.5 kB, 10 MB,
// 1.1 GB. It is for rates (10 MB/s), which the node always gives in decimal units; sizes are
// FormatSize.
func FormatBytes(n float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	i := 0
	for math.Abs(n) >= 999.95 && i < len(units)-1 {
		n /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	s := strconv.FormatFloat(n, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + units[i]
}

// ParseDuration reads a Go duration (90s, 1h30m) that may also count days: 1d, 7d, 1.5d, 1d12h.
// A day is 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	rest := in
	var total time.Duration
	// A leading "Nd" (a number of days) is taken apart; the remainder is a Go duration.
	if i := strings.IndexByte(rest, 'd'); i > 0 {
		days, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || days < 0 || math.IsNaN(days) || days > 100*365 {
			return 0, durationError(in)
		}
		total = time.Duration(days * float64(24*time.Hour))
		rest = rest[i+1:]
		if rest == "" {
			return total, nil
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil || (total > 0 && d < 0) {
		return 0, durationError(in)
	}
	return total + d, nil
}

func durationError(s string) error {
	return fmt.Errorf("%q is not a duration: want a number with a unit, such as 90s, 30m, 22h or 7d", s)
}

// ParseBool reads yes/no, true/false, on/off and 1/0, in any case.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "y", "true", "t", "on", "1":
		return true, nil
	case "no", "n", "false", "f", "off", "0":
		return false, nil
	}
	return false, errors.New("want yes or no (also true/false, on/off, 1/0)")
}
