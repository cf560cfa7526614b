package fsys

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// control runs fn on f's handle.
func control(f *os.File, fn func(h windows.Handle) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(h uintptr) { ferr = fn(windows.Handle(h)) }); err != nil {
		return err
	}
	return ferr
}

// SyncDir does nothing on Windows: NTFS makes directory changes durable with the file system's
// own journal, and a directory cannot be opened for FlushFileBuffers by ordinary means.
func SyncDir(string) error { return nil }

// lockOffset is where Lock's one locked byte lies: far past the end of any lock or log file, so
// that the file's contents (the holder's PID, the log's events) stay readable by others while it
// is held. Windows allows locking a range beyond the end of a file.
const lockOffset = 1 << 62

func lockOverlapped() *windows.Overlapped {
	return &windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
}

// Lock takes an exclusive, non-blocking LockFileEx lock on f; ErrLocked when another handle holds
// it. Windows drops it when the handle closes or the process ends.
func Lock(f *os.File) error {
	err := control(f, func(h windows.Handle) error {
		return windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, lockOverlapped())
	})
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return ErrLocked
	}
	return err
}

// Unlock releases Lock's lock on f.
func Unlock(f *os.File) error {
	return control(f, func(h windows.Handle) error { return windows.UnlockFileEx(h, 0, 1, 0, lockOverlapped()) })
}

// IsConnRefused reports whether err is a refused connection (nothing listens there).
func IsConnRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}

// IsAddrInUse reports whether err is a bind to an address another socket holds.
func IsAddrInUse(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE) || errors.Is(err, syscall.EADDRINUSE)
}

// OpenNoFollow opens path for reading and writing, refusing a symbolic link or junction there.
// (Between the check and the open a link could be planted; Windows lets only privileged users
// create symbolic links.)
func OpenNoFollow(path string) (*os.File, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode()&(os.ModeSymlink|os.ModeIrregular) != 0 {
		return nil, fmt.Errorf("%s is a link", path)
	}
	return os.OpenFile(path, os.O_RDWR, 0)
}

// ProcessRunning reports whether a process with that pid exists and has not exited.
func ProcessRunning(pid int) bool {
	if pid <= 0 {
		return false
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var code uint32
	const stillActive = 259
	return windows.GetExitCodeProcess(h, &code) == nil && code == stillActive
}

// IsConnReset reports whether err is a connection the other end reset.
func IsConnReset(err error) bool {
	return errors.Is(err, windows.WSAECONNRESET) || errors.Is(err, syscall.ECONNRESET)
}

// IsAddrFamilyUnavailable reports whether err means this machine cannot bind that kind of
// address at all (IPv6 disabled, or the address not configured here).
func IsAddrFamilyUnavailable(err error) bool {
	return errors.Is(err, windows.WSAEAFNOSUPPORT) || errors.Is(err, windows.WSAEADDRNOTAVAIL) ||
		errors.Is(err, windows.WSAEPROTONOSUPPORT) || errors.Is(err, syscall.EAFNOSUPPORT)
}

// CreateNew creates path for writing; anything already there, a link included, is an error
// (O_EXCL: CREATE_NEW, which does not follow a link at the final component).
func CreateNew(path string, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}
