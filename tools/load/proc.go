package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports but alpha (proc(5)).
const clockTicks = 100

// parseStat returns utime+stime, in clock ticks, from the content of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses, so fields are counted from the last
// ')': after it come state (field 3), and utime and stime are fields 14
// and 15 (proc(5)). Returns an error if the content is not of that form.
func parseStat(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil || ut < 0 {
		return 0, fmt.Errorf("stat: utime %q", f[11])
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil || st < 0 {
		return 0, fmt.Errorf("stat: stime %q", f[12])
	}
	return ut + st, nil
}

// cpuSeconds returns the CPU time, user plus system over all threads,
// that process pid has used so far, in seconds, with a resolution of one
// clock tick (10 ms).
func cpuSeconds(pid int) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	t, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return float64(t) / clockTicks, nil
}

// parseRSS returns VmRSS, in KiB, from the content of /proc/<pid>/status.
func parseRSS(b []byte) (int, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[0])
		}
	}
	return 0, errors.New("status: no VmRSS")
}

// rssKiB returns the resident memory of process pid, in KiB.
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseRSS(b)
}
