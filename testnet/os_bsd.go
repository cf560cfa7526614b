//go:build unix && !linux

package testnet

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// psFields runs ps for one process and returns its output line, "" when there is no such
// process. macOS and the BSDs have no /proc; ps reads the kernel's process table (sysctl).
func psFields(pid int, fields string) string {
	out, err := exec.Command("ps", "-ww", "-o", fields, "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return "" // ps exits 1 when the process does not exist
	}
	return strings.TrimSpace(string(out))
}

// alive reports whether pid is a running (not zombie) process whose command line names repo,
// so that a reused pid is never signalled. ps prints the arguments joined by spaces, so repo
// is looked for as a whole word of it (a path with spaces still matches whole).
func alive(pid int, repo string) bool {
	if pid <= 0 {
		return false
	}
	stat, command, ok := strings.Cut(psFields(pid, "stat=,command="), " ")
	if !ok || strings.HasPrefix(stat, "Z") {
		return false
	}
	return strings.Contains(" "+strings.TrimSpace(command)+" ", " "+repo+" ")
}

// running reports whether pid is a process that has not exited (zombies have).
func running(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat := psFields(pid, "stat=")
	return stat != "" && !strings.HasPrefix(stat, "Z")
}

// readRSS is the resident set of this process, from ps (which reports KiB).
func readRSS() int64 {
	kb, err := strconv.ParseInt(psFields(os.Getpid(), "rss="), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}
