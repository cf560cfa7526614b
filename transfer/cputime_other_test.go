//go:build !unix

package transfer_test

import "time"

// cpuTime is not measured here: benchmark figures show 0.
func cpuTime() time.Duration { return 0 }
