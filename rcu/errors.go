package rcu

import (
	"fmt"

	"github.com/userbpf/userbpf/shm"
)

var errNoSlots = fmt.Errorf("%w: all %d RCU reader slots are taken", shm.ErrRegionFull, shm.MaxReaders)
