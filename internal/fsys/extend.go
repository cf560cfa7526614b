package fsys

import "os"

// extend makes f at least size bytes long (a sparse tail where the file system has holes).
func extend(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() >= size {
		return nil
	}
	return f.Truncate(size)
}
