package discovery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDoublesToItsCapAndResets(t *testing.T) {
	b := newBackoff(time.Second, 10*time.Second)
	var got []time.Duration
	for range 6 {
		got = append(got, b.next())
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)
	b.reset()
	require.Equal(t, time.Second, b.next())
}
