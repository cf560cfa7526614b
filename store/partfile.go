package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"peer/internal/fsys"
)

// ErrUnknownPart means a download's partial file exists but the log does not record it as that
// file's partial file: it may belong to someone else, so it is neither resumed nor overwritten.
var ErrUnknownPart = errors.New("a partial file this repo did not start is in the way")

// openPart creates the partial file at path exclusively, or, when known (the log records it as
// this download's), opens the one there without following a link. It reports whether the file
// already held bytes.
func openPart(path string, known bool) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		return f, false, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, fmt.Errorf("creating partial file: %w", err)
	}
	if !known {
		return nil, false, fmt.Errorf("%w: %s (remove it, or fetch into another directory)", ErrUnknownPart, path)
	}
	if f, err = fsys.OpenNoFollow(path); err != nil {
		return nil, false, fmt.Errorf("opening partial file %s: %w", path, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("partial file %s is not a regular file", path)
	}
	if err != nil {
		_ = f.Close()
		return nil, false, err
	}
	return f, st.Size() > 0, nil
}
