package ringbuf_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/userbpf/userbpf"
	"github.com/userbpf/userbpf/maps"
	"github.com/userbpf/userbpf/ringbuf"
)

// A ring buffer shared by processes: any of them produces, one consumes.
// Here both sides run in one process for brevity; a consumer in another
// process opens the map by name (Region.OpenMap) and does the same.
func Example() {
	dir, _ := os.MkdirTemp("", "ringbuf-example")
	defer os.RemoveAll(dir)
	r, err := userbpf.CreateRegion(filepath.Join(dir, "demo"), userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	m, err := r.CreateMap(maps.Spec{Name: "events", Type: maps.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		panic(err)
	}

	// Producer: reserve in place, fill, submit; or Output a copy.
	ring, err := ringbuf.Open(m)
	if err != nil {
		panic(err)
	}
	defer ring.Close()
	rec, err := ring.Reserve(5)
	if err != nil {
		panic(err) // ringbuf.ErrFull when there is no room: the record is dropped and counted
	}
	copy(rec, "hello")
	ring.Submit(rec, 0)
	ring.Output([]byte("world"), 0)

	// Consumer: Read sleeps until a record is committed (or ctx is done).
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		panic(err)
	}
	defer rd.Close()
	for range 2 {
		r, err := rd.Read(context.Background())
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s (%d bytes left)\n", r.RawSample, r.Remaining)
	}
	// Output:
	// hello (16 bytes left)
	// world (0 bytes left)
}

// A USER_RINGBUF carries records from user space to programs, which drain
// it with bpf_user_ringbuf_drain; Drain does the same from Go.
func ExampleRing_Drain() {
	dir, _ := os.MkdirTemp("", "ringbuf-example")
	defer os.RemoveAll(dir)
	r, err := userbpf.CreateRegion(filepath.Join(dir, "demo"), userbpf.RegionOptions{SizeLimit: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	m, err := r.CreateMap(maps.Spec{Name: "commands", Type: maps.UserRingBuf, MaxEntries: 4096})
	if err != nil {
		panic(err)
	}
	ring, err := ringbuf.Open(m)
	if err != nil {
		panic(err)
	}
	defer ring.Close()
	ring.Output([]byte("start"), 0)
	ring.Output([]byte("stop"), 0)
	n, err := ring.Drain(func(sample []byte) bool {
		fmt.Println(string(sample))
		return false // go on
	}, 0)
	fmt.Println(n, err)
	// Output:
	// start
	// stop
	// 2 <nil>
}
