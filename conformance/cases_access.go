package conformance

import (
	"golang.org/x/sys/unix"

	"github.com/userbpf/userbpf/maps"
)

// reopen returns a second handle on the same map: the kernel's by
// BPF_MAP_GET_FD_BY_ID with open_flags, ours by maps.Open with the flags.
func (p *pair) reopen(flags uint32) *pair {
	c := p.c
	fd, ke := kernelReopen(p.k.fd, flags)
	km := &kernelMap{fd: fd, keySize: int(p.s.KeySize)}
	if ke == 0 {
		c.closers = append(c.closers, km.close)
	}
	um, uerr := maps.Open(c.r.region, c.r.rcu, p.name, flags)
	if ke != 0 || uerr != nil {
		c.fatal("open %s with flags %s: kernel %s, ours %s%s", p.name, createFlagsString(flags), errName(ke), errName(errnoOf(uerr)), ourMsg(uerr))
	}
	q := *p
	q.k, q.u = km, &userMap{m: um}
	return &q
}

func accessCases() []caseDef {
	var cs []caseDef
	for _, t := range allTypes {
		tn := typeName(t)
		s := mapSpec{Type: t, KeySize: 4, ValueSize: 8, MaxEntries: 64}
		if !isArray(t) {
			s.Flags = fZeroSeed
		}
		cs = append(cs,
			caseDef{"access/" + tn + "/rdonly_handle", func(c *caseCtx) {
				p := c.create(s)
				p.update(k32(1), p.val(1), bpfAny).want(0)
				q := p.reopen(fRdOnly)
				q.update(k32(1), p.val(2), bpfAny).want(unix.EPERM)
				q.update(k32(1), p.val(2), 3).want(unix.EPERM) // permission before flags
				q.update(k32(1000), p.val(2), bpfAny).want(unix.EPERM)
				q.del(k32(1)).want(unix.EPERM)
				q.lookup(k32(1), 0).want(0)
				q.lookup(k32(1), bpfExist).want(unix.EINVAL) // flags before permission
				q.next(nil).want(0)
				q.lookupAndDelete(k32(1), 0).want(unix.EPERM)
				q.freeze().want(unix.EPERM)
				q.check("through the read-only handle")
				p.update(k32(2), p.val(2), bpfAny).want(0)
				q.check("written through the other handle")
			}},
			caseDef{"access/" + tn + "/wronly_handle", func(c *caseCtx) {
				p := c.create(s)
				q := p.reopen(fWrOnly)
				q.update(k32(1), p.val(2), bpfAny).want(0)
				q.update(k32(1), p.val(2), 3).want(unix.EINVAL)
				q.lookup(k32(1), 0).want(unix.EPERM)
				q.lookup(k32(1), bpfExist).want(unix.EINVAL)
				q.next(nil).want(unix.EPERM)
				q.next(k32(1)).want(unix.EPERM)
				q.lookupAndDelete(k32(1), 0).want(unix.EPERM)
				if isArray(t) {
					q.del(k32(1)).want(unix.EINVAL)
				} else {
					q.del(k32(1)).want(0)
				}
				p.check("written through the write-only handle")
				q.freeze().want(0)
				q.update(k32(1), p.val(2), bpfAny).want(unix.EPERM)
			}},
			caseDef{"access/" + tn + "/created_rdonly", func(c *caseCtx) {
				// test_map_rdonly: the creating fd itself is read-only.
				s := s
				s.Flags |= fRdOnly
				p := c.create(s)
				p.update(k32(1), p.val(1), bpfAny).want(unix.EPERM)
				p.lookup(k32(1), 0).want(wantOr(isArray(t), 0, unix.ENOENT))
				p.next(k32(1)).want(wantOr(isArray(t), 0, unix.ENOENT))
				p.freeze().want(unix.EPERM)
				q := p.reopen(0)
				q.update(k32(1), p.val(1), bpfAny).want(0)
				p.check("written through a read-write handle")
			}},
			caseDef{"access/" + tn + "/created_wronly", func(c *caseCtx) {
				// test_map_wronly_hash.
				s := s
				s.Flags |= fWrOnly
				p := c.create(s)
				p.update(k32(1), p.val(1), bpfAny).want(0)
				p.lookup(k32(1), 0).want(unix.EPERM)
				p.next(k32(1)).want(unix.EPERM)
				p.next(nil).want(unix.EPERM)
				q := p.reopen(fRdOnly)
				q.check("read through a read-only handle")
			}},
			caseDef{"access/" + tn + "/open_flags", func(c *caseCtx) {
				// BPF_MAP_GET_FD_BY_ID open_flags against maps.Open flags.
				p := c.create(s)
				for _, f := range []uint32{fRdOnly | fWrOnly, fRdOnlyProg, fWrOnlyProg, fNoPrealloc, fZeroSeed, 1 << 31} {
					fd, ke := kernelReopen(p.k.fd, f)
					if ke == 0 {
						unix.Close(fd)
					}
					_, uerr := maps.Open(c.r.region, c.r.rcu, p.name, f)
					c.res.Ops++
					if ue := errnoOf(uerr); ke != ue {
						c.diff("open with flags %s: kernel %s, ours %s%s", createFlagsString(f), errName(ke), errName(ue), ourMsg(uerr))
					}
				}
			}},
		)
	}
	return cs
}
