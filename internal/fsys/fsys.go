package fsys

import "errors"

// ErrLocked means another descriptor (usually another process) holds the lock.
var ErrLocked = errors.New("locked by another process")

// ErrUnsupported means the platform or file system lacks the feature; the caller falls back.
var ErrUnsupported = errors.New("not supported on this platform")
