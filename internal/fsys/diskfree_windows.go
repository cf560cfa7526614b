package fsys

import "golang.org/x/sys/windows"

// DiskFree is the bytes the calling user can still write on the volume that holds path
// (GetDiskFreeSpaceEx, which honours quotas).
func DiskFree(path string) (uint64, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, err
	}
	var free, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, &total, &totalFree); err != nil {
		return 0, err
	}
	return free, nil
}
