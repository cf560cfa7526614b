//go:build unix

package fsys

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// control runs fn on f's descriptor, again while it is interrupted by a signal.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if ferr = fn(int(fd)); ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// SyncDir makes dir's entries (files created, renamed or removed in it) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// Lock takes an exclusive, non-blocking flock on f; ErrLocked when another descriptor holds it.
// The kernel drops it with the last descriptor, so a killed holder never leaves it stale.
func Lock(f *os.File) error {
	err := control(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) })
	if errors.Is(err, unix.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}

// Unlock releases Lock's lock on f.
func Unlock(f *os.File) error {
	return control(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_UN) })
}

// IsConnRefused reports whether err is a refused connection (nothing listens there).
func IsConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// IsAddrInUse reports whether err is a bind to an address another socket holds.
func IsAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// OpenNoFollow opens path for reading and writing; a symbolic link there is an error (ELOOP).
func OpenNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
}

// ProcessRunning reports whether a process with that pid exists (one of another user's too).
func ProcessRunning(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0) // signal 0 only checks
	return err == nil || errors.Is(err, syscall.EPERM)
}

// IsConnReset reports whether err is a connection the other end reset.
func IsConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// IsAddrFamilyUnavailable reports whether err means this machine cannot bind that kind of
// address at all (IPv6 disabled, or the address not configured here).
func IsAddrFamilyUnavailable(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EPROTONOSUPPORT)
}

// CreateNew creates path for writing; anything already there, a symbolic link included (even
// one pointing nowhere), is an error (EEXIST): nothing is written through a planted link.
func CreateNew(path string, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm)
}
