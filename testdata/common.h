/* Shared by the testdata programs: the uapi, libbpf's helper declarations,
 * and the few types the Debian 6.1 uapi headers lack. */
#ifndef USERBPF_TESTDATA_COMMON_H
#define USERBPF_TESTDATA_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* An input for a tc program's BPF_PROG_TEST_RUN must be a whole
 * Ethernet header; the programs never read it, so that our VM can run them
 * on any context. Results come from map state only. */

#ifndef BPF_F_MMAPABLE
#define BPF_F_MMAPABLE (1U << 10)
#endif

#endif
