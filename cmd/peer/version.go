package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newVersionCmd) }

// buildVersion is what this binary says about itself, from the build information the Go
// toolchain records: the module version (a tag, a pseudo-version, or "(devel)"), the VCS
// revision and commit time with whether the tree had uncommitted changes, the Go version and
// the platform.
type buildVersion struct {
	Version    string     `json:"version"`
	Revision   string     `json:"revision,omitempty"`
	Modified   bool       `json:"modified"`
	CommitTime *time.Time `json:"commit_time,omitempty"`
	Go         string     `json:"go"`
	OS         string     `json:"os"`
	Arch       string     `json:"arch"`
}

func readBuildVersion() buildVersion { return versionOf(debug.ReadBuildInfo()) }

// versionOf reads info (ok false: the binary carries none). A build outside a git checkout, or
// with -buildvcs=false, has no revision.
func versionOf(info *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Version: "(unknown)", Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if !ok {
		return v
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				t = t.UTC()
				v.CommitTime = &t
			}
		}
	}
	return v
}

// write prints the version as `peer --version` and `peer version` do.
func (v buildVersion) write(w io.Writer) {
	fmt.Fprintf(w, "peer %s\n", v.Version)
	if v.Revision != "" {
		mod := ""
		if v.Modified {
			mod = " (with uncommitted changes)"
		}
		fmt.Fprintf(w, "revision  %s%s\n", v.Revision, mod)
	} else {
		fmt.Fprintln(w, "revision  unknown (built outside a git clone, or with -buildvcs=false)")
	}
	if v.CommitTime != nil {
		fmt.Fprintf(w, "committed %s\n", v.CommitTime.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "go        %s\n", v.Go)
	fmt.Fprintf(w, "platform  %s/%s\n", v.OS, v.Arch)
}

func newVersionCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "print the version, VCS revision, Go version and platform of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := readBuildVersion()
			if asJSON {
				return writeJSON(app.Out, v)
			}
			v.write(app.Out)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"version":…,"revision":…,"modified":…,"commit_time":…,"go":…,"os":…,"arch":…}`)
	return cmd
}

// setVersionFlag gives the root command --version, which prints what `peer version` prints.
func setVersionFlag(root *cobra.Command) {
	var b strings.Builder
	readBuildVersion().write(&b)
	root.Version = strings.TrimSuffix(b.String(), "\n")
	root.SetVersionTemplate("{{.Version}}\n")
}
