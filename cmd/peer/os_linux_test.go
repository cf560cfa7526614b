package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rssMiB reads a process's resident set size from /proc.
func rssMiB(tb testing.TB, pid int) float64 { return procStatusMiB(tb, pid, "VmRSS") }

// peakRSSMiB reads a process's peak resident set size from /proc.
func peakRSSMiB(tb testing.TB, pid int) float64 { return procStatusMiB(tb, pid, "VmHWM") }

// procStatusMiB reads a kB field of /proc/PID/status, in MiB.
func procStatusMiB(tb testing.TB, pid int, field string) float64 {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	require.NoError(tb, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			require.NoError(tb, err)
			return float64(kb) / 1024
		}
	}
	tb.Fatalf("no %s in /proc status", field)
	return 0
}

// processesUnder lists the live (not zombie) processes whose command line mentions dir.
func processesUnder(t *testing.T, dir string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue // exited, waiting for its parent (init) to reap it
		}
		out = append(out, pid)
	}
	return out
}
