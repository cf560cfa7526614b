//go:build unix

package testnet

import (
	"fmt"
	"os/exec"
	"syscall"
)

// detach starts the daemon in a session of its own, so it outlives this process and its
// terminal, and down can kill the whole group.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

// terminate asks the daemon to stop (SIGTERM: it closes its repo cleanly).
func terminate(pid int) { _ = syscall.Kill(pid, syscall.SIGTERM) }

// kill ends the daemon at once: its session's group (the daemon and anything it started), then
// the process itself.
func kill(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// raiseFileLimit raises this process's open file limit to at least want where it can (the soft
// limit up to the hard one; the hard one too when privileged). Every loopback connection between
// two in-process nodes costs two descriptors here, and a node's DHT keeps tens of connections.
func raiseFileLimit(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading the open file limit: %w", err)
	}
	if uint64(lim.Cur) >= want {
		return nil
	}
	if uint64(lim.Max) < want {
		var up syscall.Rlimit
		setLimit(&up.Cur, want)
		setLimit(&up.Max, want)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return nil
		}
	}
	setLimit(&lim.Cur, min(want, uint64(lim.Max)))
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	if uint64(lim.Cur) < want {
		return fmt.Errorf("the open file limit (%d) is below the ~%d descriptors this many loopback TCP nodes need", lim.Cur, want)
	}
	return nil
}

// setLimit stores v in an Rlimit field, which is unsigned on Linux and macOS, signed on FreeBSD.
func setLimit[T int64 | uint64](field *T, v uint64) { *field = T(v) }
