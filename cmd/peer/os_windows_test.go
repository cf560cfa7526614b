package main

import (
	"os"
	"testing"
)

// terminate would ask a daemon process to stop cleanly; Windows has no signal one process can
// send another for that, so the tests that check a clean stop are skipped there.
func terminate(tb testing.TB, _ *os.Process) error {
	tb.Skip("a clean stop needs a signal (SIGTERM), which Windows cannot send")
	return nil
}

// processesUnder would list the processes whose command line mentions dir; Windows does not
// show other processes' command lines, so the tests that count leftover daemons skip there.
func processesUnder(t *testing.T, _ string) []int {
	t.Skip("listing processes by command line is not available on Windows")
	return nil
}
