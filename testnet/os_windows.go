package testnet

import (
	"os"
	"os/exec"
	"path/filepath"
	"peer/internal/fsys"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/windows"
)

// detach starts the daemon in a process group of its own, so a Ctrl-C in this console does not
// reach it and terminate can send it Ctrl-Break alone.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP}
}

// terminate asks the daemon to stop: Ctrl-Break to its process group, which Go delivers as an
// interrupt (the daemon closes its repo cleanly). A daemon on no console does not get it; down
// then kills it after its grace period.
func terminate(pid int) { _ = windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(pid)) }

// kill ends the daemon at once (TerminateProcess). Windows has no process groups to kill; the
// daemon starts no children.
func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
		_ = p.Release()
	}
}

// running reports whether pid is a process that has not exited.
func running(pid int) bool { return fsys.ProcessRunning(pid) }

// alive reports whether pid is a running process that holds repo, so that a reused pid is never
// killed. Windows keeps other processes' command lines out of easy reach; the daemon writes its
// pid into the repo's lock file while it holds the lock (see store.Open), which says the same.
func alive(pid int, repo string) bool {
	if !running(pid) {
		return false
	}
	b, err := os.ReadFile(filepath.Join(repo, "lock"))
	return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid)
}

// raiseFileLimit does nothing on Windows, which has no per-process descriptor limit to raise.
func raiseFileLimit(uint64) error { return nil }

// readRSS is 0 on Windows: the figure is not read there.
func readRSS() int64 { return 0 }
