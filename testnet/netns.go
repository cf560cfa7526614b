package testnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NetnsSubnet is the private range of netns testnets. It exists only inside the namespaces a
// testnet creates (each node's eth0, joined by a bridge in a hub namespace); the root namespace
// has no address or route in it.
const NetnsSubnet = "10.231.0.0/16"

// netnsPlan names the namespaces and addresses of a netns testnet in dir.
type netnsPlan struct {
	hub   string   // the namespace holding the bridge
	nodes []string // one namespace per node
	ips   []string // node i's address in netnsSubnet
}

func planNetns(dir string, n int) netnsPlan {
	sum := sha256.Sum256([]byte(dir))
	prefix := fmt.Sprintf("ptn-%x", sum[:3])
	p := netnsPlan{hub: prefix + "-hub"}
	for i := range n {
		p.nodes = append(p.nodes, fmt.Sprintf("%s-%d", prefix, i))
		// Node i is host i+1 of NetnsSubnet.
		p.ips = append(p.ips, fmt.Sprintf("10.231.%d.%d", (i+1)/256, (i+1)%256))
	}
	return p
}

func ipCmd(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// setup creates the hub namespace with a bridge and, for each node, a namespace joined to the
// bridge by a veth pair, with loopback up and its address on eth0. On error it removes what it
// created.
func (p netnsPlan) setup(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, p.teardown(context.WithoutCancel(ctx)))
		}
	}()
	if err := ipCmd(ctx, "netns", "add", p.hub); err != nil {
		return err
	}
	if err := ipCmd(ctx, "-n", p.hub, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := ipCmd(ctx, "-n", p.hub, "link", "set", "br0", "up"); err != nil {
		return err
	}
	for i, ns := range p.nodes {
		veth := fmt.Sprintf("v%d", i)
		steps := [][]string{
			{"netns", "add", ns},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", p.hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"-n", p.hub, "link", "set", veth, "master", "br0", "up"},
			{"-n", ns, "addr", "add", p.ips[i] + "/" + strings.Split(NetnsSubnet, "/")[1], "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
		}
		for _, s := range steps {
			if err := ipCmd(ctx, s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// teardown deletes every namespace of the plan that exists (their veth pairs go with them).
func (p netnsPlan) teardown(ctx context.Context) error {
	var errs []error
	for _, ns := range append(append([]string(nil), p.nodes...), p.hub) {
		if _, err := os.Stat(filepath.Join("/var/run/netns", ns)); err != nil {
			continue
		}
		errs = append(errs, ipCmd(ctx, "netns", "del", ns))
	}
	return errors.Join(errs...)
}
