// Package proctest runs parts of a test in real, separate OS processes: the
// test binary re-executes itself with an environment variable naming a child
// function registered with Register. Cross-process tests use it instead of
// goroutines pretending to be processes.
//
// A test package wires it up once:
//
//	func TestMain(m *testing.M) { proctest.Main(m) }
//
// and registers children at package level:
//
//	var _ = proctest.Register("counter", func(args []string) error { ... })
package proctest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const envChild = "USERBPF_PROCTEST_CHILD"

var (
	mu       sync.Mutex
	children = map[string]func(args []string) error{}
)

// Register names a child function. It returns true so it can initialize a
// package-level variable.
func Register(name string, fn func(args []string) error) bool {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := children[name]; dup {
		panic("proctest: child " + name + " registered twice")
	}
	children[name] = fn
	return true
}

// Main runs the registered child named in the environment, if any, and
// exits with its result; otherwise it runs the tests.
func Main(m *testing.M) {
	name := os.Getenv(envChild)
	if name == "" {
		os.Exit(m.Run())
	}
	mu.Lock()
	fn := children[name]
	mu.Unlock()
	if fn == nil {
		fmt.Fprintf(os.Stderr, "proctest: no child %q\n", name)
		os.Exit(3)
	}
	var args []string
	if a := os.Getenv(envChild + "_ARGS"); a != "" {
		args = strings.Split(a, "\x1f")
	}
	if err := fn(args); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Child is a running child process.
type Child struct {
	Cmd    *exec.Cmd
	Name   string
	lines  chan string
	stderr lockedWriter
	done   chan struct{}
	err    error
}

// Command prepares (without starting) a child running the function name.
// Use it to set SysProcAttr; then call StartCmd.
func Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// atexit_sleep_ms: a race-enabled child would otherwise linger a second at exit.
	cmd.Env = append(os.Environ(), envChild+"="+name, envChild+"_ARGS="+strings.Join(args, "\x1f"), "GORACE=atexit_sleep_ms=0")
	return cmd
}

// Start starts a child running the function name with args. Each line the
// child prints on stdout can be read with Line. The child is killed when
// the test ends if it is still running.
func Start(t testing.TB, name string, args ...string) *Child {
	t.Helper()
	return StartCmd(t, name, Command(name, args...))
}

// StartCmd starts a child from a Command.
func StartCmd(t testing.TB, name string, cmd *exec.Cmd) *Child {
	t.Helper()
	c := &Child{Cmd: cmd, Name: name, lines: make(chan string, 1024), done: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// Line returns the next line the child printed; it fails the test if the
// child exits first or prints nothing for a minute (a hung child).
func (c *Child) Line(t testing.TB) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.done
			t.Fatalf("child %s exited before printing a line: %v\n%s", c.Name, c.err, c.Stderr())
		}
		return l
	case <-time.After(time.Minute):
		t.Fatalf("child %s printed nothing for a minute\n%s", c.Name, c.Stderr())
	}
	return ""
}

// Expect reads the next line and fails unless it equals want.
func (c *Child) Expect(t testing.TB, want string) {
	t.Helper()
	if got := c.Line(t); got != want {
		t.Fatalf("child %s said %q, want %q\n%s", c.Name, got, want, c.Stderr())
	}
}

// Wait waits for the child to exit and fails the test if it failed.
func (c *Child) Wait(t testing.TB) {
	t.Helper()
	for range c.lines {
	}
	<-c.done
	if c.err != nil {
		t.Fatalf("child %s: %v\n%s", c.Name, c.err, c.Stderr())
	}
}

// Kill sends SIGKILL and waits until the process is gone (reaped, so it is
// not mistaken for a live zombie).
func (c *Child) Kill(t testing.TB) {
	t.Helper()
	c.Cmd.Process.Signal(syscall.SIGKILL)
	for range c.lines {
	}
	<-c.done
}

// Stderr is what the child wrote on stderr so far.
func (c *Child) Stderr() string {
	c.stderr.mu.Lock()
	defer c.stderr.mu.Unlock()
	return c.stderr.b.String()
}

// Ready prints a line for the parent (children use it to report progress).
func Ready(line string) { fmt.Println(line) }

type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
