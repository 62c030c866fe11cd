// Package cli is the moss command line: a client of the agent's Docker
// Engine API with docker's flags, output and exit codes. It owns argument
// parsing, output formatting and starting the agent on demand; it must not
// touch containers, images or storage itself, and it must not import the
// agent (main wires `moss agent` in through AgentCommand).
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// AgentCommand runs `moss agent` with the arguments after "agent"; main sets
// it, which keeps this package free of the agent's dependencies.
var AgentCommand func(args []string) int

// Exit codes as docker's.
const (
	exitFailure = 1   // a command failed (stop, rm, inspect, …)
	exitDaemon  = 125 // moss itself failed: usage, the agent, create/start
	exitCannot  = 126 // the container's command cannot be invoked
	exitNoCmd   = 127 // the container's command was not found
)

// statusError ends the command with an exit code; msg, when set, is printed
// to stderr as it is.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// app holds one invocation's state: the global flags, the agent client and
// the standard streams (tests replace them).
type app struct {
	host string // --host/-H
	cl   *client
	out  io.Writer
	errw io.Writer
	in   io.Reader
	// deferred give commands their flags (deferFlags).
	deferred map[*cobra.Command]func()
}

// Main runs the moss command line with args (without the program name) and
// returns the process exit code.
func Main(args []string) int {
	a := &app{out: os.Stdout, errw: os.Stderr, in: os.Stdin}
	return a.main(args)
}

func (a *app) main(args []string) int {
	root := a.rootCmd()
	a.giveFlags(root, args)
	root.SetArgs(args)
	root.SetOut(a.out)
	root.SetErr(a.errw)
	root.SetIn(a.in)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var se *statusError
	if errors.As(err, &se) {
		if se.msg != "" {
			fmt.Fprintln(a.errw, se.msg)
		}
		return se.code
	}
	var ae *apiError
	if errors.As(err, &ae) {
		fmt.Fprintln(a.errw, ae.Error())
		return exitFailure
	}
	if msg, ok := strings.CutPrefix(err.Error(), "unknown command "); ok {
		// cobra: unknown command "foo" for "moss"
		name, _, _ := strings.Cut(strings.TrimPrefix(msg, `"`), `"`)
		fmt.Fprintf(a.errw, "moss: '%s' is not a moss command.\nSee 'moss --help'\n", name)
		return exitFailure
	}
	fmt.Fprintf(a.errw, "moss: %v\n", err)
	return exitDaemon
}

// deferFlags has add give c its flags only when c is the command to run
// or when the whole tree is wanted: making the flags of run and create
// took 0.8 ms of every command.
func (a *app) deferFlags(c *cobra.Command, add func()) {
	if a.deferred == nil {
		a.deferred = map[*cobra.Command]func(){}
	}
	a.deferred[c] = add
}

// giveFlags gives the deferred flags: to the command args run, when they
// name one, else (help, no command, a mistake) to every command.
func (a *app) giveFlags(root *cobra.Command, args []string) {
	if args != nil {
		if c, _, err := root.Find(args); err == nil && c != root && c.Name() != "help" {
			if add := a.deferred[c]; add != nil {
				add()
			}
			a.deferred = nil
			return
		}
	}
	for _, add := range a.deferred {
		add()
	}
	a.deferred = nil
}

// rootCmd is the command tree; flags of some commands come with giveFlags.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:               "moss [OPTIONS] COMMAND",
		Short:             "Moss: rootless containers from one binary",
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:              noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.PersistentFlags().StringVarP(&a.host, "host", "H", "", "Agent socket to connect to (unix:///path); default $MOSS_HOST or the per-user socket")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(&cobra.Command{
		Use:                "agent [OPTIONS]",
		Short:              "Run the agent (the API server) in the foreground",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if AgentCommand == nil {
				return &statusError{code: exitDaemon, msg: "moss: this binary has no agent"}
			}
			if code := AgentCommand(args); code != 0 {
				return &statusError{code: code}
			}
			return nil
		},
	})
	a.addContainerCommands(root)
	a.addCommitCommands(root)
	a.addImageCommands(root)
	a.addBuildCommands(root)
	a.addRegistryCommands(root)
	a.addSystemCommands(root)
	a.addDiskUsageCommands(root)
	a.addNetworkCommands(root)
	a.addVolumeCommands(root)
	a.addPluginCommands(root)
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// group returns a management command (container, image) that shows its help
// without arguments and rejects unknown verbs like docker.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: '%s %s' is not a moss command.\nSee '%s --help'", cmd.Name(), args[0], cmd.CommandPath())}
		},
	}
}

// usageCode is the exit code of a usage error of cmd: run and create (of
// containers, not network create) fail with 125 like docker run, the others
// with 1.
func usageCode(cmd *cobra.Command) int {
	switch cmd.Name() {
	case "run", "create":
		if p := cmd.Parent(); p == nil || !p.HasParent() || p.Name() == "container" {
			return exitDaemon
		}
	}
	return exitFailure
}

// flagError formats a flag parsing error as docker does; docker exits 125
// for flag errors of every command.
func flagError(cmd *cobra.Command, err error) error {
	return &statusError{code: exitDaemon, msg: fmt.Sprintf("moss: %v\nSee '%s --help'.", err, cmd.CommandPath())}
}

func usageError(cmd *cobra.Command, what string) error {
	return &statusError{code: usageCode(cmd), msg: fmt.Sprintf("%q %s.\nSee '%s --help'.\n\nUsage:  %s\n\n%s",
		cmd.CommandPath(), what, cmd.CommandPath(), cmd.UseLine(), cmd.Short)}
}

func plural(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

// Argument validators with docker's messages (cli/required.go).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return usageError(cmd, "accepts no arguments")
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return usageError(cmd, fmt.Sprintf("requires at least %d %s", n, plural(n)))
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return usageError(cmd, fmt.Sprintf("requires exactly %d %s", n, plural(n)))
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		if lo == 0 {
			return usageError(cmd, fmt.Sprintf("requires at most %d %s", hi, plural(hi)))
		}
		return usageError(cmd, fmt.Sprintf("requires at least %d and at most %d %s", lo, hi, plural(hi)))
	}
}

// eachArg runs fn for every argument like docker's multi-object commands:
// it prints each failure, goes on, and fails at the end if any failed. An
// error that ends the command (the agent is unreachable) stops at once.
func (a *app) eachArg(args []string, fn func(string) error) error {
	failed := false
	for _, arg := range args {
		if err := fn(arg); err != nil {
			var se *statusError
			if errors.As(err, &se) {
				return err
			}
			fmt.Fprintln(a.errw, err)
			failed = true
		}
	}
	if failed {
		return &statusError{code: exitFailure}
	}
	return nil
}
