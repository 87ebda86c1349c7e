package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// statTimes are the fields of /proc/<pid>/stat that treeCPUSeconds
// needs: the parent's pid (field 4), and the process's own CPU (utime +
// stime, fields 14 and 15) and its waited-for children's (cutime +
// cstime, fields 16 and 17), in clock ticks (proc(5)).
type statTimes struct {
	ppid       int
	self, kids int64
}

// parseStatTimes reads statTimes from the content of /proc/<pid>/stat,
// counting fields from the last ')' as parseStat does. Returns an error if
// the content is not of that form.
func parseStatTimes(b []byte) (statTimes, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statTimes{}, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return statTimes{}, fmt.Errorf("stat: %d fields after the command name, want at least 15", len(f))
	}
	var n [5]int64
	for j, k := range []int{1, 11, 12, 13, 14} { // ppid, utime, stime, cutime, cstime
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil || v < 0 {
			return statTimes{}, fmt.Errorf("stat: field %d is %q", k+3, f[k])
		}
		n[j] = v
	}
	return statTimes{ppid: int(n[0]), self: n[1] + n[2], kids: n[3] + n[4]}, nil
}

// treeCPUSeconds returns the CPU time used so far by process pid, its
// exited children and its live children (one level: PostgreSQL's
// postmaster and its backends), in seconds.
func treeCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	root, err := parseStatTimes(b)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	ticks := root.self + root.kids
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // ended meanwhile
		}
		if st, err := parseStatTimes(b); err == nil && st.ppid == pid {
			ticks += st.self
		}
	}
	return float64(ticks) / clockTicks, nil
}
