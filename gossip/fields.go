package gossip

import "strconv"

// Fields this node sets (see docs/GOSSIP.md). A node that does not know a field ignores it.
const (
	// FieldDir is "1" when the root is a folder.
	FieldDir = "dir"
	// FieldFiles is how many files a folder holds, in decimal.
	FieldFiles = "files"
)

// FolderFields are the fields that say an announcement names a folder of files files.
func FolderFields(files uint64) map[string]string {
	return map[string]string{FieldDir: "1", FieldFiles: strconv.FormatUint(files, 10)}
}

// Folder reports whether a says its root is a folder, and how many files it holds (0 when the
// count is missing or not a decimal number).
func (a Announcement) Folder() (dir bool, files uint64) {
	if a.Fields[FieldDir] != "1" {
		return false, 0
	}
	n, err := strconv.ParseUint(a.Fields[FieldFiles], 10, 64)
	if err != nil {
		return true, 0
	}
	return true, n
}
