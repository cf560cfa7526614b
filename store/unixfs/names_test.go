package unixfs_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store/unixfs"
)

// Names Windows reserves or cannot hold are refused for "windows" and allowed elsewhere; names
// that only look like them pass everywhere.
func TestCheckNameOnRefusesWindowsReservedNames(t *testing.T) {
	refused := []string{
		"CON", "con", "Con.txt", "PRN", "aux.tar.gz", "NUL", "nul.", "NUL .txt", "COM1", "com9.log",
		"LPT1", "lpt5.txt", "COM¹", "conin$", "a:b", "stream:$DATA", "x<y", "x>y", `q"q`, "p|p",
		"what?", "star*", "trailing.", "trailing ",
	}
	for _, name := range refused {
		require.Error(t, unixfs.CheckNameOn("windows", name), name)
		if unixfs.CheckName(name) == nil {
			require.NoError(t, unixfs.CheckNameOn("linux", name), name)
			require.NoError(t, unixfs.CheckNameOn("darwin", name), name)
		}
	}
	allowed := []string{"CONSOLE", "console.txt", "COM0", "COM10", "LPT", "nul_", "auxiliary", "lpt1x", "con-1.txt", "日本語", "a.b.c"}
	for _, name := range allowed {
		require.NoError(t, unixfs.CheckNameOn("windows", name), name)
	}
	// What CheckName refuses, every system refuses.
	for _, name := range []string{"", ".", "..", "a/b", `a\b`, "nul\x00"} {
		require.Error(t, unixfs.CheckNameOn("linux", name), name)
		require.Error(t, unixfs.CheckNameOn("windows", name), name)
	}
}
