// Package loadertest holds the scenarios that run the testdata programs
// (repository directory testdata/) and the kernel's results for them: each
// scenario loads one object, sets up maps, runs one program a number of
// times and dumps maps. RunKernel plays a scenario on the real kernel with
// BPF_PROG_TEST_RUN; the results are stored in testdata/kernel_results.json
// so that a differential test (our VM against the kernel) can compare
// without bpf(2).
//
// Return values are BPF_PROG_TEST_RUN's retval: the low 32 bits of R0.
// Maps are named as in the object (cilium/ebpf's names: ".data", ".bss",
// ".rodata" for global data); dumps are sorted by key bytes. Ring buffers
// are dumped as their records in order. Map-in-map outer maps are not
// dumped (their values are map IDs, which differ from run to run).
package loadertest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
)

// Step is one thing a scenario does: run the program Run times, or (when
// Run is 0) update Map's element Key with Value (BPF_ANY).
type Step struct {
	Run   int    `json:",omitempty"`
	Map   string `json:",omitempty"`
	Key   []byte `json:",omitempty"`
	Value []byte `json:",omitempty"`
}

// Scenario is one program's run.
type Scenario struct {
	// Name identifies the scenario (and its results).
	Name string
	// Object is the file in testdata/ that our VM runs.
	Object string
	// KernelObject, if set, is the object the kernel runs instead (the
	// kernel refuses a bpf_spin_lock in an LRU hash; the HASH build of the
	// same source behaves the same while the map does not fill).
	KernelObject string `json:",omitempty"`
	// Program is the program's name (its C function).
	Program string
	// Constants set .rodata variables (const volatile) before loading.
	Constants map[string][]byte `json:",omitempty"`
	// Steps run in order.
	Steps []Step
	// Dump names the maps dumped after the steps.
	Dump []string
}

// Entry is one key/value pair of a map dump.
type Entry struct {
	Key   []byte
	Value []byte
}

// Result is what a scenario produced.
type Result struct {
	// Returns holds each run's return value, in order.
	Returns []uint32
	// Maps holds the dumps of key/value maps, sorted by key.
	Maps map[string][]Entry `json:",omitempty"`
	// Rings holds the records of ring buffers, in order.
	Rings map[string][][]byte `json:",omitempty"`
}

// Equal reports whether two results are the same, with a description of
// the first difference.
func (r *Result) Equal(o *Result) (bool, string) {
	if len(r.Returns) != len(o.Returns) {
		return false, fmt.Sprintf("%d returns, want %d", len(r.Returns), len(o.Returns))
	}
	for i := range r.Returns {
		if r.Returns[i] != o.Returns[i] {
			return false, fmt.Sprintf("run %d returned %d, want %d", i, r.Returns[i], o.Returns[i])
		}
	}
	for name, want := range o.Maps {
		got, ok := r.Maps[name]
		if !ok {
			return false, fmt.Sprintf("map %s not dumped", name)
		}
		if len(got) != len(want) {
			return false, fmt.Sprintf("map %s has %d entries, want %d", name, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Value, want[i].Value) {
				return false, fmt.Sprintf("map %s entry %d is %x=%x, want %x=%x", name, i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
			}
		}
	}
	if len(r.Maps) != len(o.Maps) {
		return false, fmt.Sprintf("%d maps dumped, want %d", len(r.Maps), len(o.Maps))
	}
	for name, want := range o.Rings {
		got := r.Rings[name]
		if len(got) != len(want) {
			return false, fmt.Sprintf("ring %s has %d records, want %d", name, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				return false, fmt.Sprintf("ring %s record %d is %x, want %x", name, i, got[i], want[i])
			}
		}
	}
	if len(r.Rings) != len(o.Rings) {
		return false, fmt.Sprintf("%d rings dumped, want %d", len(r.Rings), len(o.Rings))
	}
	return true, ""
}

// SortEntries sorts a dump by key bytes.
func SortEntries(e []Entry) {
	sort.Slice(e, func(i, j int) bool { return bytes.Compare(e[i].Key, e[j].Key) < 0 })
}

// Dir returns the repository's testdata directory.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "testdata"
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// Path returns the path of a testdata file.
func Path(name string) string { return filepath.Join(Dir(), name) }

// ResultsFile is the file in testdata/ holding the kernel's results.
const ResultsFile = "kernel_results.json"

// LoadResults reads the kernel's stored results, by scenario name.
func LoadResults() (map[string]*Result, error) {
	b, err := os.ReadFile(Path(ResultsFile))
	if err != nil {
		return nil, err
	}
	var m map[string]*Result
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ResultsFile, err)
	}
	return m, nil
}

// SaveResults writes the kernel's results to testdata/.
func SaveResults(m map[string]*Result) error {
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(Path(ResultsFile), append(b, '\n'), 0o644)
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func u64s(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// Scenarios returns every scenario, in a fixed order.
func Scenarios() []Scenario {
	atomicsInit := append(u64s(100, 50, 0x10, 0xffffffffffffffff, 0x0f0f, 9, 9), append(u32(0x7ffffff0), append(u32(2), append(u32(3), append(u32(0), u64(5)...)...)...)...)...)
	return []Scenario{
		{Name: "spinlock_count", Object: "spinlock_lru.o", KernelObject: "spinlock_hash.o", Program: "count",
			Steps: []Step{{Run: 10}}, Dump: []string{"counters", ".bss"}},
		{Name: "spinlock_count_hash", Object: "spinlock_hash.o", Program: "count",
			Steps: []Step{{Run: 10}}, Dump: []string{"counters", ".bss"}},
		{Name: "spinlock_lock_inc", Object: "spinlock_lru.o", KernelObject: "spinlock_hash.o", Program: "lock_inc",
			Steps: []Step{{Run: 5}, {Map: "totals", Key: u32(0), Value: u64s(0, 1000)}, {Run: 2}}, Dump: []string{"totals"}},
		{Name: "atomics_bump", Object: "atomics.o", Program: "bump",
			Steps: []Step{{Map: "stats", Key: u32(0), Value: atomicsInit}, {Run: 6}}, Dump: []string{"stats"}},
		{Name: "ringbuf_produce", Object: "ringbuf.o", Program: "produce",
			Steps: []Step{{Run: 100}}, Dump: []string{"events", ".bss"}},
		{Name: "mapinmap_record", Object: "mapinmap.o", Program: "record",
			Steps: []Step{{Run: 5}, {Map: "control", Key: u32(0), Value: u32(1)}, {Run: 5}, {Map: "control", Key: u32(0), Value: u32(0)}, {Run: 2}},
			Dump:  []string{"buf_a", "buf_b", "control", ".bss"}},
		{Name: "calls_entry", Object: "calls.o", Program: "entry",
			Steps: []Step{{Map: "vals", Key: u32(0), Value: u64(1)}, {Map: "vals", Key: u32(1), Value: u64(2)},
				{Map: "vals", Key: u32(2), Value: u64(3)}, {Map: "vals", Key: u32(3), Value: u64(0xffffffff)}, {Run: 5}},
			Dump: []string{"vals"}},
		{Name: "loops_bounded", Object: "loops.o", Program: "bounded",
			Steps: []Step{{Run: 3}}, Dump: []string{"data", ".bss"}},
		{Name: "loops_bpf_loop", Object: "loops.o", Program: "with_bpf_loop",
			Steps: []Step{{Run: 14}}, Dump: []string{"seen", ".bss"}},
		{Name: "loops_each_elem", Object: "loops.o", Program: "each_elem",
			Steps: []Step{{Map: "data", Key: u32(3), Value: u64(300)}, {Map: "data", Key: u32(12), Value: u64(1200)}, {Run: 3}},
			Dump:  []string{"data"}},
		{Name: "loops_iter_sum", Object: "loops.o", Program: "iter_sum",
			Steps: []Step{{Map: "data", Key: u32(5), Value: u64(50)}, {Run: 3}}, Dump: []string{"data"}},
		{Name: "globals_accumulate", Object: "globals.o", Program: "accumulate",
			Steps: []Step{{Run: 6}}, Dump: []string{".data", ".bss", ".rodata"}},
		{Name: "globals_accumulate_constants", Object: "globals.o", Program: "accumulate",
			Constants: map[string][]byte{"cfg_mult": u32(5), "cfg_name": []byte("ab\x00\x00\x00\x00\x00\x00")},
			Steps:     []Step{{Map: ".data", Key: u32(0), Value: append(u64(1), append(append(u32(1), u32(2)...), append(u32(3), u32(4)...)...)...)}, {Run: 4}}, Dump: []string{".data", ".bss", ".rodata"}},
		{Name: "globals_hello", Object: "globals.o", Program: "hello",
			Steps: []Step{{Run: 2}}, Dump: []string{".bss"}},
		{Name: "legacy", Object: "legacy.o", Program: "legacy",
			Steps: []Step{{Run: 7}}, Dump: []string{"legacy_counts", ".bss"}},
	}
}
