package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"peer/internal/config"
)

func init() { register(newStatusCmd) }

func newStatusCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "one screen about the running daemon: peers, DHT, files, transfers, traffic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.needDaemon(cmd.Context(), "status")
			if err != nil {
				return err
			}
			s, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, s)
			}
			network := s.Network
			if network == "" {
				network = "public IPFS"
			}
			if s.Private {
				network += " (private, swarm key)"
			}
			tw := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "peer ID\t%s\n", s.ID)
			fmt.Fprintf(tw, "network\t%s\n", network)
			fmt.Fprintf(tw, "uptime\t%s\n", s.Uptime)
			fmt.Fprintf(tw, "peers\t%d\n", s.Peers)
			fmt.Fprintf(tw, "DHT\t%s, %s, %d in routing table\n", s.DHT.Protocol, s.DHT.Mode, s.DHT.RoutingTable)
			fmt.Fprintf(tw, "provides\t%d roots, %d pending, %d done, %d failed\n", s.DHT.ProvidedRoots, s.DHT.ProvidesPending, s.DHT.ProvidesDone, s.DHT.ProvidesFailed)
			fmt.Fprintf(tw, "files\t%d, %s\n", s.Files, config.FormatSize(s.FilesBytes))
			if s.DiskFree > 0 {
				fmt.Fprintf(tw, "disk\t%s free\n", config.FormatSize(s.DiskFree))
			}
			tc := s.Transfers
			fmt.Fprintf(tw, "transfers\t%d running, %d queued, %d paused; %s\n", tc.Running, tc.Queued, tc.Paused, plural(tc.Uploads, "upload"))
			fmt.Fprintf(tw, "traffic\t%s in, %s out\n", byteSize(s.BytesIn), byteSize(s.BytesOut))
			if s.Gateway != "" {
				fmt.Fprintf(tw, "gateway\t%s/ipfs/\n", s.Gateway)
			}
			for _, a := range s.Addrs {
				fmt.Fprintf(tw, "address\t%s\n", a)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func byteSize(n int64) string { return config.FormatSize(uint64(max(n, 0))) }
