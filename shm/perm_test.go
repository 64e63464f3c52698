package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/userbpf/userbpf/internal/proctest"
)

// nobody is the user the permission test's child runs as.
const nobody = 65534

// The child tries to attach to args[0] and says how it went: "uid N ok",
// "uid N permission: ERROR" or "uid N other: ERROR".
var _ = proctest.Register("open-as-other-user", func(args []string) error {
	r, err := Open(args[0])
	uid := os.Geteuid()
	switch {
	case err == nil:
		fmt.Printf("uid %d ok\n", uid)
		return r.Close()
	case errors.Is(err, ErrPermission):
		fmt.Printf("uid %d permission: %v\n", uid, err)
	default:
		fmt.Printf("uid %d other: %v\n", uid, err)
	}
	return nil
})

// TestPermission: a region created 0600 by root cannot be attached by
// another user, and the error says so; one created 0666 can (which proves
// the child really gets as far as opening the file).
func TestPermission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	// Every directory on the way to the region and to the test binary must
	// be traversable by the other user: t.TempDir's top directory is 0700.
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "shm.test")
	copyFile(t, os.Args[0], bin)
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}

	run := func(path string) string {
		cmd := proctest.Command("open-as-other-user", path)
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		c := proctest.StartCmd(t, "open-as-other-user", cmd)
		line := c.Line(t)
		c.Wait(t)
		return line
	}

	private := filepath.Join(dir, "private")
	r, err := Create(private, Options{SizeLimit: smallLimit})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := fmt.Sprintf("uid %d permission: open region %s: permission denied", nobody, private)
	if got := run(private); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("other user opening a 0600 region: %q\nwant it to start with %q", got, want)
	}
	if ps := r.Processes(); len(ps) != 1 {
		t.Fatalf("a refused process is in the table: %+v", ps)
	}

	shared := filepath.Join(dir, "shared")
	r2, err := Create(shared, Options{SizeLimit: smallLimit, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if got, want := run(shared), fmt.Sprintf("uid %d ok", nobody); got != want {
		t.Fatalf("other user opening a 0666 region: %q, want %q", got, want)
	}
	// The child detached cleanly: nothing for a reaper to do.
	if n := r2.ReapDead(); n != 0 {
		t.Fatalf("ReapDead reaped %d processes after a clean detach", n)
	}
	mustCheck(t, r2)
}
