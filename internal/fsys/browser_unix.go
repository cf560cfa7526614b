//go:build unix && !darwin

package fsys

import "os/exec"

// OpenBrowser opens url in the user's default browser (xdg-open) and does not wait for it.
func OpenBrowser(url string) error { return startDetached(exec.Command("xdg-open", url)) }
