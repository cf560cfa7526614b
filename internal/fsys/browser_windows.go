package fsys

import "os/exec"

// OpenBrowser opens url in the user's default browser (the URL protocol handler, through
// rundll32, which takes the URL as it is, with no shell quoting) and does not wait for it.
func OpenBrowser(url string) error {
	return startDetached(exec.Command("rundll32", "url.dll,FileProtocolHandler", url))
}
