package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestLogin(t *testing.T) {
	t.Setenv("REGISTRY_AUTH_FILE", "")
	f := newFakeAgent(t)
	var got []loginRequest
	f.handle("POST /moss/v1/login", func(w http.ResponseWriter, r *http.Request) {
		var req loginRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		got = append(got, req)
		switch {
		case req.Username == "" && req.ServerAddress == "saved.example":
			w.Write([]byte(`{"Status":"Login Succeeded","Registry":"saved.example"}`))
		case req.Username == "":
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(apiErr("not logged in to " + req.ServerAddress))
		case req.Password != "secret":
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(apiErr("login to " + req.ServerAddress + ": unauthorized: wrong user name or password"))
		default:
			w.Write([]byte(`{"Status":"Login Succeeded","Registry":"` + req.ServerAddress + `"}`))
		}
	})
	r := moss("secret\n", "login", "-u", "me", "--password-stdin", "127.0.0.1:5000")
	if r.code != 0 || r.stdout != "Login Succeeded\n" {
		t.Fatalf("--password-stdin: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if last := got[len(got)-1]; last.Username != "me" || last.Password != "secret" || last.ServerAddress != "127.0.0.1:5000" {
		t.Fatalf("sent %+v", last)
	}
	r = moss("", "login", "-u", "me", "-p", "wrong", "127.0.0.1:5000")
	if r.code != 1 || !strings.Contains(r.stderr, "WARNING! Using --password") || !strings.Contains(r.stderr, "Error response from daemon: login to 127.0.0.1:5000: unauthorized") {
		t.Fatalf("wrong password: exit %d stderr %q", r.code, r.stderr)
	}
	r = moss("", "login", "--authfile", "/tmp/x/auth.json", "saved.example")
	if r.code != 0 || !strings.Contains(r.stdout, "existing credentials for saved.example") || got[len(got)-1].AuthFile != "/tmp/x/auth.json" {
		t.Fatalf("saved credentials: exit %d stdout %q stderr %q (%+v)", r.code, r.stdout, r.stderr, got[len(got)-1])
	}
	r = moss("", "login", "other.example")
	if r.code != 1 || !strings.Contains(r.stderr, "non TTY") {
		t.Fatalf("no credentials, no terminal: exit %d stderr %q", r.code, r.stderr)
	}
	for _, bad := range []struct {
		args []string
		msg  string
	}{
		{[]string{"login", "--password-stdin", "x.example"}, "--username with --password-stdin"},
		{[]string{"login", "-u", "me", "-p", "x", "--password-stdin", "x.example"}, "mutually exclusive"},
	} {
		if r := moss("", bad.args...); r.code != 1 || !strings.Contains(r.stderr, bad.msg) {
			t.Errorf("%v: exit %d stderr %q", bad.args, r.code, r.stderr)
		}
	}
}

func TestLogout(t *testing.T) {
	t.Setenv("REGISTRY_AUTH_FILE", "")
	f := newFakeAgent(t)
	f.handle("POST /moss/v1/logout", func(w http.ResponseWriter, r *http.Request) {
		var req loginRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		removed := req.ServerAddress == "in.example"
		json.NewEncoder(w).Encode(map[string]interface{}{"Registry": req.ServerAddress, "Removed": removed})
	})
	for args, want := range map[string]string{
		"logout in.example":  "Removing login credentials for in.example\n",
		"logout out.example": "Not logged in to out.example\n",
		"logout -a":          "Removed login credentials for all registries\n",
	} {
		if r := moss("", strings.Fields(args)...); r.code != 0 || r.stdout != want {
			t.Errorf("%s: exit %d stdout %q stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := moss("", "logout", "-a", "x.example"); r.code == 0 {
		t.Error("logout -a SERVER succeeded")
	}
}
