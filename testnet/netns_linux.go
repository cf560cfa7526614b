package testnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// CanNetns says whether this process can create network namespaces (root, with `ip`), and if
// not, why.
func CanNetns() error {
	if os.Geteuid() != 0 {
		return errors.New("--netns needs root (it creates network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("--netns needs the ip command (iproute2)")
	}
	// Root in a container may lack the capabilities: CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21).
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "CapEff:"); ok {
				caps, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
				if err == nil && (caps&(1<<12) == 0 || caps&(1<<21) == 0) {
					return errors.New("--netns needs CAP_NET_ADMIN and CAP_SYS_ADMIN, which this process lacks")
				}
			}
		}
	}
	return nil
}

// dialIn dials addr from inside the named network namespace ("" is this process's own). The
// socket is created on a locked thread that has joined the namespace; the thread is discarded
// afterwards, and the connection works from any goroutine.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if ns == "" {
		return d.DialContext(ctx, network, addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the goroutine ends with the thread locked, so the runtime ends the
		// thread instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			ch <- result{err: fmt.Errorf("namespace %s: %w", ns, err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("entering namespace %s: %w", ns, err)}
			return
		}
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
