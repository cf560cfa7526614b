package fsys

import "os/exec"

// OpenBrowser opens url in the user's default browser (open) and does not wait for it.
func OpenBrowser(url string) error { return startDetached(exec.Command("open", url)) }
