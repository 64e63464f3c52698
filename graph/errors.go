package graph

import (
	"errors"
	"fmt"

	"github.com/userbpf/userbpf/shm"
)

// ErrCorrupt is returned when a container, object header or type table
// holds an offset or value that cannot be right (another process or a
// program scribbled on it). It wraps shm.ErrCorrupt.
var ErrCorrupt = fmt.Errorf("graph: %w", shm.ErrCorrupt)

// ErrInvalidTable is returned when a type table is malformed (sizes,
// offsets, a root without a lock, a cycle of containment).
var ErrInvalidTable = errors.New("invalid graph type table")

// corruption is panicked inside the package's tree and list code when a
// link does not check out, and recovered at the exported entry points: the
// red-black code then need not thread an error through every rotation.
type corruption struct{ err error }

func corrupt(format string, args ...any) {
	panic(corruption{fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)})
}

// catch turns a corruption panic into *err; other panics go on.
func catch(err *error) {
	if r := recover(); r != nil {
		c, ok := r.(corruption)
		if !ok {
			panic(r)
		}
		*err = c.err
	}
}
