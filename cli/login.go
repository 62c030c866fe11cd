package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// loginOptions are the flags of login.
type loginOptions struct {
	username, password string
	passwordStdin      bool
	authfile           string
}

// loginRequest is the body of /moss/v1/login and /moss/v1/logout.
type loginRequest struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	AuthFile      string `json:"authfile,omitempty"`
	All           bool   `json:"all,omitempty"`
}

func (a *app) loginCmd() *cobra.Command {
	o := &loginOptions{}
	c := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Long: "Log in to a registry: the credentials are checked with it and saved in the user's auth file\n" +
			"($XDG_RUNTIME_DIR/containers/auth.json, Podman's; Docker's ~/.docker/config.json is read too).\n" +
			"Without SERVER, the first of [registries] search.",
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			return a.login(o, server)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.username, "username", "u", "", "Username")
	f.StringVarP(&o.password, "password", "p", "", "Password")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "Take the password from stdin")
	f.StringVar(&o.authfile, "authfile", "", "Path of the authentication file (default $REGISTRY_AUTH_FILE, else the user's)")
	return c
}

func (a *app) login(o *loginOptions, server string) error {
	if o.password != "" {
		fmt.Fprintln(a.errw, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
		if o.passwordStdin {
			return &statusError{code: exitFailure, msg: "moss: --password and --password-stdin are mutually exclusive"}
		}
	}
	if o.passwordStdin {
		if o.username == "" {
			return &statusError{code: exitFailure, msg: "moss: must provide --username with --password-stdin"}
		}
		b, err := io.ReadAll(a.in)
		if err != nil {
			return &statusError{code: exitFailure, msg: "moss: read the password from stdin: " + err.Error()}
		}
		o.password = strings.TrimRight(string(b), "\r\n")
	}
	af, err := authFile(o.authfile)
	if err != nil {
		return err
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	req := loginRequest{Username: strings.TrimSpace(o.username), Password: o.password, ServerAddress: server, AuthFile: af}
	var res struct {
		Status, Registry string
	}
	if req.Username == "" && req.Password == "" {
		// Saved credentials that still work need no prompt, as docker's.
		err := cl.call(http.MethodPost, "/moss/v1/login", nil, req, &res)
		if err == nil {
			fmt.Fprintf(a.out, "Authenticating with existing credentials for %s\nLogin Succeeded\n", res.Registry)
			return nil
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusUnauthorized {
			return err
		}
	}
	if req.Username == "" || req.Password == "" {
		if err := a.promptCredentials(&req); err != nil {
			return err
		}
	}
	if err := cl.call(http.MethodPost, "/moss/v1/login", nil, req, &res); err != nil {
		return err
	}
	fmt.Fprintln(a.out, "Login Succeeded")
	return nil
}

// promptCredentials asks for what is missing on the terminal: the user
// name echoed, the password not.
func (a *app) promptCredentials(req *loginRequest) error {
	fd, ok := terminalFd(a.in)
	if !ok {
		return &statusError{code: exitFailure, msg: "moss: cannot perform an interactive login from a non TTY device: use -u and --password-stdin"}
	}
	if req.Username == "" {
		fmt.Fprint(a.errw, "Username: ")
		line, err := bufio.NewReader(a.in).ReadString('\n')
		if err != nil && line == "" {
			return &statusError{code: exitFailure, msg: "moss: no user name given"}
		}
		if req.Username = strings.TrimSpace(line); req.Username == "" {
			return &statusError{code: exitFailure, msg: "moss: no user name given"}
		}
	}
	if req.Password == "" {
		fmt.Fprint(a.errw, "Password: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(a.errw)
		if err != nil {
			return &statusError{code: exitFailure, msg: "moss: read the password: " + err.Error()}
		}
		if req.Password = string(b); req.Password == "" {
			return &statusError{code: exitFailure, msg: "moss: no password given"}
		}
	}
	return nil
}

func (a *app) logoutCmd() *cobra.Command {
	var all bool
	var authfile string
	c := &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Remove the credentials saved for a registry (without SERVER, the first of [registries] search).",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := loginRequest{All: all}
			if len(args) == 1 {
				if all {
					return &statusError{code: exitFailure, msg: "moss: --all takes no server"}
				}
				req.ServerAddress = args[0]
			}
			af, err := authFile(authfile)
			if err != nil {
				return err
			}
			req.AuthFile = af
			cl, err := a.client()
			if err != nil {
				return err
			}
			var res struct {
				Registry string
				Removed  bool
			}
			if err := cl.call(http.MethodPost, "/moss/v1/logout", nil, req, &res); err != nil {
				return err
			}
			switch {
			case all:
				fmt.Fprintln(a.out, "Removed login credentials for all registries")
			case res.Removed:
				fmt.Fprintf(a.out, "Removing login credentials for %s\n", res.Registry)
			default:
				fmt.Fprintf(a.out, "Not logged in to %s\n", res.Registry)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "Remove the saved credentials of every registry")
	c.Flags().StringVar(&authfile, "authfile", "", "Path of the authentication file (default $REGISTRY_AUTH_FILE, else the user's)")
	return c
}
