//go:build !unix && !windows

package fsys

// OpenBrowser is ErrUnsupported on this platform.
func OpenBrowser(string) error { return ErrUnsupported }
