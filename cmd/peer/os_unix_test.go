//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
)

// terminate asks a daemon process to stop cleanly (SIGTERM, as a service manager does).
func terminate(_ testing.TB, p *os.Process) error { return p.Signal(syscall.SIGTERM) }
