// Package graph keeps the kernel's lock-guarded graph containers in region
// memory: objects a program allocates with bpf_obj_new, red-black trees
// (struct bpf_rb_root / bpf_rb_node) and doubly linked lists (struct
// bpf_list_head / bpf_list_node), encoded inside the kernel's opaque sizes.
//
// Every link is a region offset, never a process address: each process
// maps the region at its own address, and any of them may walk, change or
// drain a container. Links are data another process (or a buggy program)
// wrote, so every offset is checked before it is followed; a bad one is
// ErrCorrupt, never a fault or a write outside the region's heap.
//
// The package does no locking of its own. A container is guarded by the
// bpf_spin_lock of the map value or object that holds it; callers take that
// lock around every operation (programs' kfuncs, Map.WithLock, the drain of
// a deleted value). Reference counts and a node's owner word are atomic, as
// two containers with different locks may race for one refcounted object.
//
// Type tables (Table) describe the objects and values: their size and
// special fields. They are stored once in the region and never freed, so an
// object's header can name its type by (table offset, index) for as long
// as the region lives.
package graph
