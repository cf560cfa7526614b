//go:build unix && !linux

package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// processesUnder lists the live (not zombie) processes whose command line mentions dir, from
// ps (macOS and the BSDs have no /proc).
func processesUnder(t *testing.T, dir string) []int {
	t.Helper()
	out, err := exec.Command("ps", "-axww", "-o", "pid=,stat=,command=").Output()
	require.NoError(t, err)
	var pids []int
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[1], "Z") || !strings.Contains(line, dir) {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}
