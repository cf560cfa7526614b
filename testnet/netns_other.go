//go:build !linux

package testnet

import (
	"context"
	"errors"
	"net"
)

// CanNetns says that network namespaces need Linux.
func CanNetns() error {
	return errors.New("--netns needs Linux (network namespaces)")
}

// dialIn dials addr from this process's network namespace; there are no others here.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	if ns != "" {
		return nil, CanNetns()
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
