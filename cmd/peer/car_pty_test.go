//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// export refuses to write binary to a terminal.
func TestExportRefusesATerminal(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "r")
	initRepo(t, repo)
	scr, wait := runOnTerminal(t, "--repo", repo, "export", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	require.NotZero(t, wait())
	require.Contains(t, strings.Join(scr.text(), "\n"), "refusing to write a CAR (binary) to a terminal")
}
