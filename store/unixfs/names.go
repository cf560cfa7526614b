package unixfs

import (
	"fmt"
	"strings"
)

// CheckNameOn is CheckName and, for goos "windows", what Windows refuses or misreads in a file
// name: the reserved device names CON, PRN, AUX, NUL, COM1 to COM9 and LPT1 to LPT9 (in any case,
// with any extension: "nul.txt" names the device too, as do "COM¹" to "COM³"), the characters
// < > : " | ? * (':' opens an alternate data stream), and a trailing dot or space, which Windows
// strips, so that two names would land on one file. A fetch writes a folder's entries under
// these rules for the system it runs on (runtime.GOOS).
func CheckNameOn(goos, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if goos != "windows" {
		return nil
	}
	if i := strings.IndexAny(name, `<>:"|?*`); i >= 0 {
		return fmt.Errorf("entry %q: name contains %q, which Windows does not allow", name, name[i])
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return fmt.Errorf("entry %q: Windows drops a trailing dot or space from a name", name)
	}
	if isWindowsDevice(name) {
		return fmt.Errorf("entry %q: a reserved device name on Windows", name)
	}
	return nil
}

// isWindowsDevice reports whether name, up to its first dot and without trailing spaces, is one
// of Windows' reserved device names.
func isWindowsDevice(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) < 4 || (base[:3] != "COM" && base[:3] != "LPT") {
		return false
	}
	switch d := base[3:]; d {
	case "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
		return true
	}
	return false
}
