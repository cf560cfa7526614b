package main

import (
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/spf13/cobra"

	"peer/internal/config"
	"peer/testnet"
)

func init() { register(newTestnetCmd) }

func newTestnetCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "local networks of many nodes: demo, up, status, down, bench",
		Long: `Local test networks. 'peer testnet demo' shows the whole system in one command. 'up' starts
peer daemon processes on 127.0.0.1 (or in network namespaces with --netns), each with its own
repo, usable with 'peer --repo DIR/node-i ...'; 'status' and 'down' find them through
DIR/manifest.json. 'bench' runs a measured scenario on in-process nodes. See docs/TESTNET.md.`,
	}
	cmd.AddCommand(newTestnetUpCmd(app), newTestnetStatusCmd(app), newTestnetDownCmd(app),
		newTestnetDemoCmd(app), newTestnetBenchCmd(app))
	return cmd
}

func dirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "dir", testnet.DefaultDir(), "directory of the testnet: repos DIR/node-i, their logs, manifest.json")
}

func newTestnetUpCmd(app *App) *cobra.Command {
	var opts testnet.UpOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "up [--nodes N] [--dir DIR] [--network NAME] [--netns [--mdns]]",
		Short: "start N peer daemons on 127.0.0.1, node-0 the bootstrap; return once all are connected",
		Long: `Start N 'peer daemon' processes, each with its own repo DIR/node-i and log DIR/node-i/daemon.log,
on 127.0.0.1 with free ports; node-0 is the others' bootstrap. Returns once every node is
connected and its DHT routing table holds a peer, prints a table of the nodes and writes
DIR/manifest.json. The daemons keep running: use them with 'peer --repo DIR/node-i ...', stop them
with 'peer testnet down'.

--netns (root only) puts each node in its own network namespace with an address in 10.231.0.0/16
that exists only inside those namespaces; run commands there with
'ip netns exec NS peer --repo DIR/node-i ...' (NS is in the manifest and 'status'). With --mdns
the nodes bootstrap off nobody: they find each other by multicast DNS on the namespaces' shared
link, as machines on a LAN do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Netns {
				if err := testnet.CanNetns(); err != nil {
					fmt.Fprintf(app.Err, "peer: %v; staying on loopback\n", err)
					opts.Netns = false
				}
			}
			m, err := testnet.Up(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, m)
			}
			where := "127.0.0.1"
			if m.Netns {
				where = "network namespaces (" + testnet.NetnsSubnet + ")"
			}
			if m.MDNS {
				where += ", found by mDNS"
			}
			fmt.Fprintf(app.Out, "%d nodes of network %q on %s, in %s\n", len(m.Nodes), m.Network, where, m.Dir)
			testnet.PrintNodes(app.Out, "", m.Nodes)
			prefix := ""
			if m.Netns {
				prefix = "ip netns exec " + m.Nodes[1].Netns + " "
			}
			fmt.Fprintf(app.Out, "try: %speer --repo %s status; stop: peer testnet down --dir %s\n", prefix, m.Nodes[1].Repo, m.Dir)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.Nodes, "nodes", 5, "number of nodes")
	dirFlag(cmd, &opts.Dir)
	fl.StringVar(&opts.Network, "network", testnet.DefaultNetwork, "private network name (DHT /peer/NAME, its own gossip topic)")
	fl.BoolVar(&opts.Netns, "netns", false, "each node in its own network namespace (root only)")
	fl.BoolVar(&opts.MDNS, "mdns", false, "with --netns: no bootstrap; the nodes find each other by mDNS")
	fl.DurationVar(&opts.ReadyTimeout, "timeout", 0, "how long to wait for every node to be ready (default 30s + 1s per node)")
	fl.BoolVar(&asJSON, "json", false, "print the manifest as JSON")
	return cmd
}

func newTestnetStatusCmd(app *App) *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--dir DIR]",
		Short: "show each node of the testnet: running, peers, routing table, files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, nodes, err := testnet.Status(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, nodes)
			}
			running := 0
			tw := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tPID\tPEERS\tDHT\tFILES\tAPI\tNETNS")
			for _, n := range nodes {
				state := "stopped"
				if n.Running {
					state = "running"
					running++
					if n.Err != "" {
						state = "no answer"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", n.Name, state, n.PID, n.Peers, n.RoutingTable, n.Files, n.API, n.Netns)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "%d of %d nodes running, network %q, in %s\n", running, len(nodes), m.Network, m.Dir)
			return nil
		},
	}
	dirFlag(cmd, &dir)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newTestnetDownCmd(app *App) *cobra.Command {
	var dir string
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "down [--dir DIR]",
		Short: "stop every node of the testnet (SIGTERM, then SIGKILL after --timeout); keep repos and logs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := testnet.Down(cmd.Context(), dir, grace)
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "stopped %d nodes", res.Stopped+res.Killed)
			if res.Killed > 0 {
				fmt.Fprintf(app.Out, " (%d needed SIGKILL)", res.Killed)
			}
			fmt.Fprintf(app.Out, "; repos and logs stay in %s\n", dir)
			return nil
		},
	}
	dirFlag(cmd, &dir)
	cmd.Flags().DurationVar(&grace, "timeout", 10*time.Second, "how long to wait after SIGTERM before SIGKILL")
	return cmd
}

func newTestnetDemoCmd(app *App) *cobra.Command {
	var opts testnet.DemoOptions
	var size string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "five nodes on 127.0.0.1: share a file on one, find it on another, fetch it on a third, verify, clean up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := config.ParseBytes(size)
			if err != nil {
				return fmt.Errorf("--size: %w", err)
			}
			opts.Size = int64(n)
			opts.Out = app.Out
			_, err = testnet.Demo(cmd.Context(), opts)
			return err
		},
	}
	cmd.Flags().IntVar(&opts.Nodes, "nodes", 5, "number of nodes (at least 4)")
	cmd.Flags().StringVar(&size, "size", "8MiB", "size of the shared file (e.g. 8MiB, 1GB)")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep the repos and daemon logs")
	return cmd
}

func newTestnetBenchCmd(app *App) *cobra.Command {
	var opts testnet.BenchOptions
	var bandwidth, fileSize, seederRate string
	var asJSON, verbose bool
	cmd := &cobra.Command{
		Use:   "bench --scenario dht|gossip|transfer|churn [--nodes N] [--latency D] [--bandwidth B] [--out DIR]",
		Short: "run a measured scenario on in-process nodes; write results.json, CSV and plots",
		Long: `Run a scenario on N in-process nodes and print a summary; with --out, write results.json,
events.csv, summary.csv and a plot (PNG) into DIR.

  dht       provide --keys CIDs, then --lookups lookups from random nodes: CDF of lookup latency
  gossip    --messages announcements over a gossip mesh: CDF of propagation delay to each node
  transfer  fetch a --file-size file from 1, 2, ... --seeders seeders: throughput per seeder count
  churn     --files files on --replicas nodes each; kill nodes step by step up to --max-kill and
            count the files a new node can still fetch

--latency or --bandwidth (or --mocknet) runs the nodes on an in-process mocknet with those
links; otherwise they use real TCP on 127.0.0.1, unless the open file limit is too low for that
many nodes (about 100 descriptors each), when the run says so and uses a mocknet. See
docs/TESTNET.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.Bandwidth, err = config.ParseBytes(bandwidth); err != nil {
				return fmt.Errorf("--bandwidth: %w", err)
			}
			fs, err := config.ParseBytes(fileSize)
			if err != nil {
				return fmt.Errorf("--file-size: %w", err)
			}
			opts.FileSize = int64(fs)
			sr, err := config.ParseBytes(seederRate)
			if err != nil {
				return fmt.Errorf("--seeder-rate: %w", err)
			}
			opts.SeederRate = int64(sr)
			if !verbose {
				// Hundreds of nodes closing log routine errors ("listener closed"): keep the
				// terminal for the results unless asked.
				quiet := slog.NewTextHandler(app.Err, &slog.HandlerOptions{Level: slog.LevelError + 4})
				slog.SetDefault(slog.New(quiet))
				gologshim.SetDefaultHandler(quiet)
			}
			if !asJSON {
				opts.Log = app.Err
			}
			res, err := testnet.Bench(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, res)
			}
			if opts.Out != "" {
				fmt.Fprintf(app.Out, "results in %s\n", opts.Out)
			}
			return res.WriteSummary(app.Out)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Scenario, "scenario", "", "dht, gossip, transfer or churn")
	fl.IntVar(&opts.Nodes, "nodes", 20, "number of nodes")
	fl.DurationVar(&opts.Latency, "latency", 0, "one-way latency of every link (mocknet), e.g. 20ms")
	fl.StringVar(&bandwidth, "bandwidth", "0", "bandwidth of every link in bytes per second (mocknet), e.g. 10MB")
	fl.BoolVar(&opts.Mocknet, "mocknet", false, "run on an in-process mocknet even without --latency or --bandwidth")
	fl.StringVar(&opts.Out, "out", "", "directory for results.json, CSV files and plots")
	fl.Uint64Var(&opts.Seed, "seed", 1, "seed of the random choices")
	fl.IntVar(&opts.Lookups, "lookups", 100, "dht: number of lookups")
	fl.IntVar(&opts.Keys, "keys", 10, "dht: number of provided CIDs")
	fl.IntVar(&opts.Messages, "messages", 20, "gossip: number of announcements")
	fl.StringVar(&fileSize, "file-size", "0", "transfer, churn: size of each file (default 64MiB, churn 256KiB)")
	fl.IntVar(&opts.Seeders, "seeders", 0, "transfer: largest number of seeders (default min(4, nodes-1))")
	fl.StringVar(&seederRate, "seeder-rate", "0", "transfer, churn: cap on what each node serves, bytes per second (0: none)")
	fl.IntVar(&opts.Files, "files", 20, "churn: number of files")
	fl.IntVar(&opts.Replicas, "replicas", 3, "churn: nodes holding each file")
	fl.IntVar(&opts.KillSteps, "kill-steps", 6, "churn: steps from 0 to --max-kill")
	fl.Float64Var(&opts.MaxKill, "max-kill", 0.9, "churn: largest fraction of nodes killed")
	fl.DurationVar(&opts.Timeout, "timeout", 10*time.Second, "bound on one lookup, propagation or fetch")
	fl.BoolVar(&asJSON, "json", false, "print the whole result as JSON instead of the summary")
	fl.BoolVar(&verbose, "verbose", false, "show the nodes' logs")
	_ = cmd.MarkFlagRequired("scenario")
	return cmd
}
