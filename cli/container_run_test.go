package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// runAgent is a fake agent for run: create answers testID, attach streams
// frames, wait answers status once start was called, start answers
// startErr (if any).
func runAgent(t *testing.T, frames []byte, status int, startCode int, startErr string) *fakeAgent {
	f := newFakeAgent(t)
	f.json("POST /containers/create", http.StatusCreated, container.CreateResponse{ID: testID})
	started := make(chan struct{})
	f.handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		if startErr != "" {
			w.WriteHeader(startCode)
			_ = json.NewEncoder(w).Encode(apiErr(startErr))
			return
		}
		close(started)
		w.WriteHeader(http.StatusNoContent)
	})
	f.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprint(buf, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		_ = buf.Flush()
		select {
		case <-started:
		case <-r.Context().Done():
		}
		_, _ = conn.Write(frames)
	})
	f.handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-started:
		case <-r.Context().Done():
			return
		}
		_ = json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: int64(status)})
	})
	return f
}

func TestRunCreateRequest(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	os.WriteFile(envFile, []byte("# comment\n  FROMFILE=1\n\nMOSS_TEST_UNSET_XYZ\n"), 0o644)
	labelFile := filepath.Join(dir, "labels")
	os.WriteFile(labelFile, []byte("fromfile=yes\n"), 0o644)
	t.Setenv("MOSS_TEST_FROM_HOST", "h")
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, req container.CreateRequest, q map[string][]string)
	}{
		{"env and labels", []string{"-e", "A=1", "-e", "MOSS_TEST_FROM_HOST", "-e", "MOSS_TEST_UNSET_XYZ", "-e", "EMPTY=",
			"--env-file", envFile, "-l", "k=v", "-l", "flag", "--label-file", labelFile, "img", "true"},
			func(t *testing.T, req container.CreateRequest, q map[string][]string) {
				want := []string{"FROMFILE=1", "A=1", "MOSS_TEST_FROM_HOST=h", "EMPTY="}
				if !reflect.DeepEqual(req.Config.Env, want) {
					t.Errorf("env %q, want %q", req.Config.Env, want)
				}
				wantL := map[string]string{"k": "v", "flag": "", "fromfile": "yes"}
				if !reflect.DeepEqual(req.Config.Labels, wantL) {
					t.Errorf("labels %v, want %v", req.Config.Labels, wantL)
				}
			}},
		{"command and options", []string{"--name", "web", "--rm", "-w", "/w", "-u", "www:staff", "-h", "box",
			"--entrypoint", "/bin/echo", "--network", "none", "--stop-signal", "SIGUSR1", "--stop-timeout", "0",
			"--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--privileged", "--read-only", "--security-opt", "no-new-privileges",
			"--init", "img", "a", "-b", "--c"},
			func(t *testing.T, req container.CreateRequest, q map[string][]string) {
				c, h := req.Config, req.HostConfig
				if c.Image != "img" || !reflect.DeepEqual([]string(c.Cmd), []string{"a", "-b", "--c"}) ||
					!reflect.DeepEqual([]string(c.Entrypoint), []string{"/bin/echo"}) || c.User != "www:staff" ||
					c.WorkingDir != "/w" || c.Hostname != "box" || c.StopSignal != "SIGUSR1" ||
					c.StopTimeout == nil || *c.StopTimeout != 0 || !c.AttachStdout || !c.AttachStderr || c.AttachStdin {
					t.Errorf("config %+v", c)
				}
				if !h.AutoRemove || h.NetworkMode != "none" || !h.Privileged || !h.ReadonlyRootfs ||
					h.CapAdd[0] != "NET_ADMIN" || h.CapDrop[0] != "ALL" || h.SecurityOpt[0] != "no-new-privileges" ||
					h.Init == nil || !*h.Init {
					t.Errorf("host config %+v", h)
				}
				if q["name"][0] != "web" {
					t.Errorf("name query %v", q)
				}
			}},
		{"empty entrypoint resets", []string{"--entrypoint", "", "img"},
			func(t *testing.T, req container.CreateRequest, q map[string][]string) {
				if !reflect.DeepEqual([]string(req.Config.Entrypoint), []string{""}) || req.Config.StopTimeout != nil || req.HostConfig.Init != nil {
					t.Errorf("config %+v host %+v", req.Config, req.HostConfig)
				}
				if _, ok := q["name"]; ok {
					t.Errorf("name sent without --name: %v", q)
				}
			}},
		{"detached", []string{"-d", "img"},
			func(t *testing.T, req container.CreateRequest, q map[string][]string) {
				if req.Config.AttachStdout || req.Config.AttachStderr {
					t.Errorf("detached config attaches: %+v", req.Config)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.json("POST /containers/create", http.StatusCreated, container.CreateResponse{ID: testID})
			f.handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
			r := moss("", append([]string{"create"}, tc.args...)...)
			if tc.args[0] == "-d" {
				r = moss("", append([]string{"run"}, tc.args...)...)
			}
			if r.code != 0 || r.stdout != testID+"\n" {
				t.Fatalf("got %+v", r)
			}
			req, ok := f.find("POST", "/containers/create")
			if !ok {
				t.Fatalf("no create request: %v", f.calls())
			}
			var cr container.CreateRequest
			if err := json.Unmarshal(req.Body, &cr); err != nil {
				t.Fatal(err)
			}
			tc.check(t, cr, req.Query)
		})
	}
}

func TestRunAttached(t *testing.T) {
	frames := bytes.Join([][]byte{frame(1, "out1\n"), frame(2, "err\n"), frame(1, "out2\n")}, nil)
	for _, rm := range []bool{false, true} {
		t.Run(fmt.Sprint("rm=", rm), func(t *testing.T) {
			f := runAgent(t, frames, 3, 0, "")
			args := []string{"run", "img", "sh", "-c", "exit 3"}
			if rm {
				args = []string{"run", "--rm", "img", "sh", "-c", "exit 3"}
			}
			r := moss("", args...)
			if r.code != 3 || r.stdout != "out1\nout2\n" || r.stderr != "err\n" {
				t.Fatalf("got %+v", r)
			}
			want := []string{"POST /containers/create", "POST /containers/" + testID + "/attach",
				"POST /containers/" + testID + "/wait", "POST /containers/" + testID + "/start"}
			if got := f.calls(); !reflect.DeepEqual(got, want) {
				t.Fatalf("requests %v, want %v", got, want)
			}
			att, _ := f.find("POST", "/containers/"+testID+"/attach")
			if att.Query["stream"][0] != "1" || att.Query["stdout"][0] != "1" || att.Query["stderr"][0] != "1" {
				t.Errorf("attach query %v", att.Query)
			}
			wait, _ := f.find("POST", "/containers/"+testID+"/wait")
			cond := map[bool]string{false: "next-exit", true: "removed"}[rm]
			if wait.Query["condition"][0] != cond {
				t.Errorf("wait condition %v, want %s", wait.Query, cond)
			}
		})
	}
}

func TestRunDetached(t *testing.T) {
	f := runAgent(t, nil, 0, 0, "")
	r := moss("", "run", "-d", "--name", "x", "img")
	if r.code != 0 || r.stdout != testID+"\n" {
		t.Fatalf("got %+v", r)
	}
	want := []string{"POST /containers/create", "POST /containers/" + testID + "/start"}
	if got := f.calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("requests %v", got)
	}
}

func TestRunExitCodes(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		createErr string // create answers 404 with this message
		startCode int
		startErr  string
		status    int
		code      int
		stderr    string
		noRequest bool
	}{
		{name: "container status", args: []string{"img"}, status: 42, code: 42},
		{name: "not found", args: []string{"img", "nope"}, startCode: 404,
			startErr: `failed to create task for container: exec: "nope": executable file not found in $PATH`, code: 127,
			stderr: `moss: Error response from daemon: failed to create task for container: exec: "nope": executable file not found in $PATH.`},
		{name: "no such file", args: []string{"img", "/x"}, startCode: 404,
			startErr: "exec /x: no such file or directory", code: 127},
		{name: "permission denied", args: []string{"img", "/etc/passwd"}, startCode: 400,
			startErr: "exec /etc/passwd: permission denied", code: 126},
		{name: "other start error", args: []string{"img"}, startCode: 500, startErr: "boom", code: 125,
			stderr: "moss: Error response from daemon: boom."},
		{name: "no such image", args: []string{"--pull", "never", "nope:1"}, createErr: "No such image: nope:1", code: 125,
			stderr: "Error response from daemon: No such image: nope:1"},
		{name: "no such image, pulled", args: []string{"nope:1"}, createErr: "No such image: nope:1", code: 125,
			stderr: "Unable to find image 'nope:1' locally"},
		{name: "malformed env", args: []string{"-e", "=VALUE", "img"}, code: 125,
			stderr: `invalid environment variable: =VALUE`, noRequest: true},
		{name: "unknown flag", args: []string{"--no-such-flag", "img"}, code: 125,
			stderr: "moss: unknown flag: --no-such-flag\nSee 'moss run --help'.", noRequest: true},
		{name: "no image", args: nil, code: 125, stderr: `"moss run" requires at least 1 argument.`, noRequest: true},
		{name: "bad attach", args: []string{"-a", "foo", "img"}, code: 125, stderr: "valid streams are STDIN, STDOUT and STDERR", noRequest: true},
		{name: "bad pull", args: []string{"--pull", "sometimes", "img"}, code: 125, stderr: `invalid pull option: "sometimes"`, noRequest: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := runAgent(t, frame(1, "hi\n"), tc.status, tc.startCode, tc.startErr)
			if tc.createErr != "" {
				f.json("POST /containers/create", http.StatusNotFound, apiErr(tc.createErr))
			}
			r := moss("", append([]string{"run"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %+v", r.code, tc.code, r)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
			if tc.noRequest && len(f.calls()) > 0 {
				t.Fatalf("requests sent: %v", f.calls())
			}
		})
	}
}

func TestParseEnv(t *testing.T) {
	t.Setenv("MOSS_TEST_FROM_HOST", "h")
	cases := []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{in: []string{"A=1", "B=x=y", "C="}, want: []string{"A=1", "B=x=y", "C="}},
		{in: []string{"MOSS_TEST_FROM_HOST", "MOSS_TEST_UNSET_XYZ"}, want: []string{"MOSS_TEST_FROM_HOST=h"}},
		{in: []string{"=VALUE"}, wantErr: "invalid environment variable: =VALUE"},
		{in: []string{"="}, wantErr: "invalid environment variable"},
	}
	for _, tc := range cases {
		got, err := parseEnv(tc.in, nil)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "env")
	os.WriteFile(bad, []byte("OK=1\nA B=2\n"), 0o644)
	if _, err := parseEnv(nil, []string{bad}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("env file with whitespace in a name: %v", err)
	}
	if _, err := parseEnv(nil, []string{filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing env file accepted")
	}
}

func TestDemux(t *testing.T) {
	cases := []struct {
		name           string
		in             []byte
		stdout, stderr string
		wantErr        bool
	}{
		{"interleaved", bytes.Join([][]byte{frame(1, "out1\n"), frame(2, "err\n"), frame(1, "out2\n")}, nil), "out1\nout2\n", "err\n", false},
		{"empty frame", append(frame(1, ""), frame(2, "e")...), "", "e", false},
		{"large frame", frame(1, strings.Repeat("x", 100000)), strings.Repeat("x", 100000), "", false},
		{"truncated payload", frame(1, "truncated")[:12], "", "", true},
		{"truncated header", frame(1, "x")[:5], "", "", true},
		{"system error", frame(3, "agent failed"), "", "", true},
		{"unknown stream", frame(7, "x"), "", "", true},
		{"eof", nil, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := demux(bytes.NewReader(tc.in), &out, &errb)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && (out.String() != tc.stdout || errb.String() != tc.stderr) {
				t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
			}
		})
	}
}

// seqWriter records what each stream got, in the order of the writes.
type seqWriter struct {
	all *[]string
	tag string
}

func (w seqWriter) Write(p []byte) (int, error) {
	*w.all = append(*w.all, w.tag+string(p))
	return len(p), nil
}

// Large frames go out directly, small ones buffered: the order across
// stdout and stderr stays that of the frames.
func TestDemuxOrder(t *testing.T) {
	var in []byte
	var want []string
	for i := 0; i < 200; i++ {
		id, tag := byte(1), "o:"
		if i%3 == 2 {
			id, tag = 2, "e:"
		}
		p := fmt.Sprintf("%d\n", i)
		if i%5 == 0 {
			p = strings.Repeat(fmt.Sprint(i%10), 20000+i) + "\n"
		}
		in = append(in, frame(id, p)...)
		want = append(want, tag+p)
	}
	var got []string
	// A small reader buffer splits the large frames.
	br := bufio.NewReaderSize(bytes.NewReader(in), 32<<10)
	if err := demux(br, seqWriter{&got, "o:"}, seqWriter{&got, "e:"}); err != nil {
		t.Fatal(err)
	}
	// Merge consecutive writes of a stream, then compare runs.
	runs := func(l []string) []string {
		var out []string
		for _, s := range l {
			if n := len(out); n > 0 && out[n-1][:2] == s[:2] {
				out[n-1] += s[2:]
				continue
			}
			out = append(out, s)
		}
		return out
	}
	g, w := runs(got), runs(want)
	if len(g) != len(w) {
		t.Fatalf("%d runs, want %d", len(g), len(w))
	}
	for i := range w {
		if g[i] != w[i] {
			t.Fatalf("run %d: %.40q…, want %.40q…", i, g[i], w[i])
		}
	}
}
