//go:build !linux

package main

import "testing"

// rssMiB needs /proc: the benchmarks that report memory run on Linux.
func rssMiB(tb testing.TB, _ int) float64 {
	tb.Skip("RSS figures are read from /proc (Linux)")
	return 0
}

// peakRSSMiB needs /proc: the benchmarks that report memory run on Linux.
func peakRSSMiB(tb testing.TB, _ int) float64 {
	tb.Skip("RSS figures are read from /proc (Linux)")
	return 0
}
