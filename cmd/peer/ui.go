package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"peer/internal/fsys"
)

func init() { register(newUICmd) }

func newUICmd(app *App) *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "ui [--print]",
		Short: "open the web dashboard of the running daemon in the default browser",
		Long: `ui asks the daemon for a one-time login code and opens the dashboard with it in the
default browser; the browser trades the code (valid once, for 2 minutes) for a session cookie.
--print prints the URL instead, to open by hand or on another browser of this machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.needDaemon(cmd.Context(), "ui")
			if err != nil {
				return err
			}
			code, err := c.UICode(cmd.Context())
			if err != nil {
				return err
			}
			if printOnly {
				fmt.Fprintln(app.Out, code.URL)
				return nil
			}
			valid := time.Until(code.Expires).Round(time.Second)
			if err := fsys.OpenBrowser(code.URL); err != nil {
				fmt.Fprintf(app.Err, "could not open a browser (%v): open this URL, valid once for %s:\n", err, valid)
				fmt.Fprintln(app.Out, code.URL)
				return nil
			}
			fmt.Fprintf(app.Err, "opened the dashboard in your browser (the link is valid once, for %s)\n", valid)
			return nil
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the login URL instead of opening a browser")
	return cmd
}
