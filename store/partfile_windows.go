//go:build windows

package store

import (
	"fmt"
	"os"
)

// openNoFollow opens path for reading and writing, refusing a symbolic link or junction there.
func openNoFollow(path string) (*os.File, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode()&(os.ModeSymlink|os.ModeIrregular) != 0 {
		return nil, fmt.Errorf("%s is a link", path)
	}
	return os.OpenFile(path, os.O_RDWR, 0)
}
