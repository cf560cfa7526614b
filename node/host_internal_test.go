package node

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The connection manager must trim before the resource manager refuses inbound connections,
// or strangers holding every inbound slot lock honest peers out.
func TestConnWatermarksBelowInboundLimit(t *testing.T) {
	l := Limits()
	in := int(l.ToPartialLimitConfig().System.ConnsInbound)
	require.Positive(t, in)
	low, high := connWatermarks(100, 400, l) // the defaults
	require.Less(t, high, in)
	require.LessOrEqual(t, low, high/2)
	low, high = connWatermarks(10, 50, l) // already below: kept
	require.Equal(t, [2]int{10, 50}, [2]int{low, high})
}
