package agent

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// containerPids lists the host PIDs of the processes in the PID namespace
// of the container whose init is pid.
func containerPids(pid int) (map[int]bool, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	pids := map[int]bool{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			pids[p] = true
		}
	}
	return pids, nil
}

// getTop is docker top: the host's ps with ps_args (default -ef), the rows
// of the container's processes only.
func (a *Agent) getTop(w http.ResponseWriter, r *http.Request) error {
	c, err := a.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, pid := c.State.Status == "running", c.State.Pid
	c.mu.Unlock()
	if !running || pid <= 0 {
		return kindErr(errConflict, "container %s is not running", c.ID)
	}
	args := strings.Fields(r.URL.Query().Get("ps_args"))
	if len(args) == 0 {
		args = []string{"-ef"}
	}
	pids, err := containerPids(pid)
	if err != nil {
		return err
	}
	ps, err := exec.LookPath("ps")
	if err != nil {
		return fmt.Errorf("top needs ps on the host (Debian package procps): %w", err)
	}
	cmd := exec.Command(ps, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return kindErr(errInvalid, "Error running ps %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	top, err := parsePS(string(out), pids)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, top)
	return nil
}

// parsePS keeps the rows of ps output whose PID column is in pids, as
// docker does: the last column (the command) may contain blanks.
func parsePS(out string, pids map[int]bool) (*container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return nil, kindErr(errInvalid, "ps printed nothing")
	}
	titles := strings.Fields(lines[0])
	col := -1
	for i, t := range titles {
		if t == "PID" {
			col = i
		}
	}
	if col < 0 {
		return nil, kindErr(errInvalid, "Couldn't find PID field in ps output: add a PID column (for example ps -o pid,comm)")
	}
	top := &container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		p, err := strconv.Atoi(f[col])
		if err != nil || !pids[p] {
			continue
		}
		if len(f) > len(titles) { // the command's arguments
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		top.Processes = append(top.Processes, f)
	}
	return top, nil
}
