package eventlog

// Flushes returns how many batches l has written, each with one write and one fsync.
func Flushes(l *Log) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushes
}

// Accepted returns how many records have been taken into batches since Open.
func Accepted(l *Log) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

// WrapSync replaces l's fsync with wrap(current).
func WrapSync(l *Log, wrap func(sync func() error) func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sync = wrap(l.sync)
}

// WrapWriteAt replaces l's positioned write with wrap(current).
func WrapWriteAt(l *Log, wrap func(w func([]byte, int64) (int, error)) func([]byte, int64) (int, error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeAt = wrap(l.writeAt)
}

// SetTruncate replaces the truncate l uses to undo a failed append.
func SetTruncate(l *Log, fn func(size int64) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.truncate = fn
}
