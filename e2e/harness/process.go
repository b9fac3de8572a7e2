package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopTimeout = 5 * time.Second

// logTailLines is how many lines of a process's log a failed test shows.
const logTailLines = 80

// ProcessSpec describes a process to start.
type ProcessSpec struct {
	Name string   // label in test logs and the log file name
	Bin  string   // path of the executable
	Args []string // arguments, without the program name
	Env  []string // extra KEY=VALUE entries added to the test's environment
	Dir  string   // working directory; empty means the test's
}

// Process is a child process in its own process group. Its stdout and
// stderr go to a log file. It is killed with its group and waited for when
// the test that started it ends.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
	stopMu  sync.Mutex
}

// StartProcess starts bin with args as a process called name.
func StartProcess(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	return StartProcessSpec(t, ProcessSpec{Name: name, Bin: bin, Args: args})
}

// StartProcessSpec starts the process spec describes. It fails the test when
// the process cannot be started.
func StartProcessSpec(t testing.TB, spec ProcessSpec) *Process {
	t.Helper()
	p, err := startProcess(t.TempDir(), spec)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		p.cleanup()
		if t.Failed() {
			t.Logf("harness: last %d lines of %s output (%s):\n%s",
				logTailLines, p.name, p.logPath, p.LogTail(logTailLines))
		}
	})
	return p
}

func startProcess(dir string, spec ProcessSpec) (*Process, error) {
	logPath := filepath.Join(dir, sanitize(spec.Name)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", spec.Name, err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := exec.Command(spec.Bin, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", spec.Name, spec.Bin, err)
	}
	p := &Process{name: spec.Name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == os.PathSeparator {
			return '_'
		}
		return r
	}, name)
}

// Name returns the label of the process.
func (p *Process) Name() string { return p.name }

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath returns the file that holds the process's stdout and stderr.
func (p *Process) LogPath() string { return p.logPath }

// Logs returns everything the process has written so far.
func (p *Process) Logs() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p.logPath, err)
	}
	return string(b)
}

// LogTail returns the last n lines the process has written.
func (p *Process) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitLog waits until the process's output contains substr. It fails early
// when the process exits without having written it.
func (p *Process) WaitLog(ctx context.Context, substr string) error {
	err := WaitFor(ctx, func() (bool, error) {
		b, err := os.ReadFile(p.logPath)
		if err == nil && bytes.Contains(b, []byte(substr)) {
			return true, nil
		}
		if p.Exited() {
			return false, Permanent(fmt.Errorf("%s exited: %v", p.name, p.waitErr))
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("wait for %q in %s output: %w", substr, p.name, err)
	}
	return nil
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits until the process exits or ctx is done. It returns the
// process's exit error (nil for exit status 0), or ctx's error.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-ctx.Done():
		return fmt.Errorf("wait for %s to exit: %w", p.name, ctx.Err())
	}
}

// ExitCode returns the exit code of an exited process, -1 when it was
// killed by a signal or has not exited.
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) error {
	err := syscall.Kill(-p.Pid(), sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("send %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// Stop sends SIGTERM to the process group, then SIGKILL when the process
// has not exited after StopTimeout, and waits for it. It returns the exit
// error (an *exec.ExitError when the process did not exit with status 0).
func (p *Process) Stop() error {
	return p.StopWithin(StopTimeout)
}

// StopWithin is Stop with timeout in place of StopTimeout.
func (p *Process) StopWithin(timeout time.Duration) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		_ = p.Signal(syscall.SIGKILL) // leftovers in the group, if any
		return p.waitErr
	case <-timer.C:
	}
	return p.Kill()
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return p.waitErr
}

// cleanup kills the process group and waits for the process.
func (p *Process) cleanup() {
	_ = p.Kill()
}
