package cli

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/moss-containers/moss/internal/escape"
)

type execOptions struct {
	detach, interactive, tty, privileged bool
	user, workdir, detachKeys            string
	env, envFile                         []string
}

func (a *app) execCmd() *cobra.Command {
	o := &execOptions{}
	c := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.exec(o, args[0], args[1:])
		},
	}
	fs := c.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	fs.StringArrayVar(&o.envFile, "env-file", nil, "Read in a file of environment variables")
	return c
}

// exec is docker exec: create the exec instance, start it attached (or
// detached with -d), copy its output, and exit with its exit code.
func (a *app) exec(o *execOptions, ctr string, cmd []string) error {
	env, err := parseEnv(o.env, o.envFile)
	if err != nil {
		return &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	req := container.ExecCreateRequest{
		User: o.user, Privileged: o.privileged, Tty: o.tty, AttachStdin: o.interactive && !o.detach,
		AttachStdout: !o.detach, AttachStderr: !o.detach, DetachKeys: o.detachKeys,
		Env: env, WorkingDir: o.workdir, Cmd: cmd,
	}
	keys, err := escape.Parse(o.detachKeys)
	if err != nil {
		return &statusError{code: exitDaemon, msg: "moss: " + err.Error()}
	}
	if o.tty {
		req.ConsoleSize = a.consoleSize()
	}
	var created container.ExecCreateResponse
	if err := cl.call(http.MethodPost, "/containers/"+url.PathEscape(ctr)+"/exec", nil, req, &created); err != nil {
		return err
	}
	start := container.ExecStartRequest{Detach: o.detach, Tty: o.tty, ConsoleSize: req.ConsoleSize}
	if o.detach {
		return cl.call(http.MethodPost, "/exec/"+created.ID+"/start", nil, start, nil)
	}
	conn, br, err := cl.hijack("/exec/"+created.ID+"/start", nil, start)
	if err != nil {
		return err
	}
	defer conn.Close()
	detached := make(chan struct{})
	if req.AttachStdin {
		in := a.input()
		if o.tty {
			restore := a.rawInput()
			defer restore()
			in = escape.NewReader(in, keys)
		}
		go func() {
			if a.copyInput(conn, in) {
				close(detached)
			}
		}()
	}
	if o.tty {
		stop := a.followSize(func(h, w uint) {
			q := url.Values{"h": {strconv.Itoa(int(h))}, "w": {strconv.Itoa(int(w))}}
			_ = cl.call(http.MethodPost, "/exec/"+created.ID+"/resize", q, nil, nil)
		})
		defer stop()
	}
	copied := a.copyOutput(br, o.tty)
	select {
	case <-detached:
		return nil
	case err := <-copied:
		if err != nil {
			return err
		}
	}
	var st container.ExecInspectResponse
	if err := cl.call(http.MethodGet, "/exec/"+created.ID+"/json", nil, nil, &st); err != nil {
		return err
	}
	if st.Running || st.ExitCode == nil {
		return errors.New("exec: the stream ended before the process")
	}
	if *st.ExitCode != 0 {
		return &statusError{code: *st.ExitCode}
	}
	return nil
}
