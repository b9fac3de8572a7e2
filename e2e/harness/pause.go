package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Pause stops the process group with SIGSTOP and waits until every thread
// of the process is stopped, or ctx is done.
//
// kill(2) returns once SIGSTOP is queued, not once the process stopped:
// the kernel wakes one thread to take the signal, and that thread stops
// the others only when it gets a CPU. Until then the other threads keep
// running, so on a loaded machine a stopped service can still answer a
// request sent right after the kill. A test that wants "nothing answers
// from now on" calls Pause, not Signal(SIGSTOP).
func (p *Process) Pause(ctx context.Context) error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	err := WaitFor(ctx, func() (bool, error) {
		running, err := p.runningThreads()
		if err != nil {
			return false, Permanent(err)
		}
		return len(running) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s to stop: %w", p.name, err)
	}
	return nil
}

// Resume continues a paused (or SIGSTOPped) process group with SIGCONT.
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }

// runningThreads returns the "tid:state" of the process's threads that
// are not stopped (state T or t in /proc/<pid>/task/<tid>/stat). An exited
// process has none.
func (p *Process) runningThreads() ([]string, error) {
	if p.Exited() {
		return nil, nil
	}
	dir := fmt.Sprintf("/proc/%d/task", p.Pid())
	tids, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list threads of %s: %w", p.name, err)
	}
	var running []string
	for _, tid := range tids {
		stat, err := os.ReadFile(filepath.Join(dir, tid.Name(), "stat"))
		if err != nil {
			continue // the thread exited
		}
		if state := threadState(string(stat)); state != "T" && state != "t" && state != "Z" && state != "X" {
			running = append(running, tid.Name()+":"+state)
		}
	}
	return running, nil
}

// threadState returns the state field of a /proc/<pid>/task/<tid>/stat
// line: the first field after the parenthesised command name (which may
// hold spaces and parentheses itself).
func threadState(stat string) string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}
