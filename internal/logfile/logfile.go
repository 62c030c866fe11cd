// Package logfile reads the logs of Moss's background processes (the agent,
// the namespace holder) for error messages that point the user at them.
package logfile

import (
	"os"
	"strings"
)

// Tail returns the last n lines of the file at path, or "" when it cannot
// be read or is empty.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := strings.TrimRight(string(data), "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
