package fsys

import (
	"fmt"
	"os/exec"
)

// startDetached starts cmd and lets it run on its own: a browser opener may stay until the
// browser exits, which the caller does not wait for.
func startDetached(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	go func() { _ = cmd.Wait() }() // reaps it if the caller lives on
	return nil
}
