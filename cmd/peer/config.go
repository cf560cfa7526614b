package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"peer/internal/config"
	"peer/node/api"
)

func init() { register(newConfigCmd) }

func newConfigCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config [show | get KEY | set KEY VALUE]",
		Short: "show or change the repo's settings (config.json)",
		Long: `Show or change the repo's settings. Keys are the names in config.json:
  ` + strings.Join(config.Keys(), ", ") + `
Each value is checked as the daemon reads it at start. Lists take comma-separated values or a
JSON array ("" for none); durations take Go syntax or days (90s, 22h, 7d); upload_limit takes
bytes per second with an optional unit (10MB, 1.5GiB; 0 is no cap); switches take yes/no,
true/false or on/off. A running daemon reads the settings at start: restart it to apply a change.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return configShow(app) },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "print every setting as JSON",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return configShow(app) },
	}, &cobra.Command{
		Use:   "get KEY",
		Short: "print one setting",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadConfig(app)
			if err != nil {
				return err
			}
			v, err := c.Get(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(app.Out, v)
			return nil
		},
	}, newConfigSetCmd(app))
	return cmd
}

func newConfigSetCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "change one setting, checked as the daemon would read it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadConfig(app)
			var invalid *config.InvalidError
			if err != nil && !errors.As(err, &invalid) {
				return err // a file that holds a bad value can still be fixed by setting it
			}
			if err := c.Set(args[0], args[1]); err != nil {
				return err
			}
			if err := config.Save(app.Repo(), c); err != nil {
				return err
			}
			shown, err := c.Show(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "%s = %s\n", args[0], shown)
			if args[0] == "api" && !isLoopbackHostPort(c.API) {
				fmt.Fprintln(app.Err, "note: the daemon serves a non-loopback API only with `peer daemon --api-allow-remote`")
			}
			if args[0] == "gateway" && c.Gateway != "" && !isLoopbackHostPort(c.Gateway) {
				fmt.Fprintln(app.Err, "note: the daemon serves a non-loopback gateway only with `peer daemon --allow-remote-gateway`")
			}
			if _, err := os.Stat(filepath.Join(app.Repo(), api.AddrFile)); err == nil {
				fmt.Fprintln(app.Err, "a daemon is running: restart it to apply the change")
			}
			return nil
		},
	}
	// Flags end at KEY, so a VALUE such as -5 is a value (and refused as a negative limit), not an
	// unknown flag. Flags such as --repo go before KEY.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func isLoopbackHostPort(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func loadConfig(app *App) (config.Config, error) {
	dir := app.Repo()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return config.Config{}, fmt.Errorf("no repo at %s (create it with `%s`)", dir, app.command("init"))
	}
	return config.Load(dir)
}

func configShow(app *App) error {
	c, err := loadConfig(app)
	if err != nil {
		return err
	}
	return writeJSON(app.Out, c)
}
