/* Whether this host can run plugvirt-vmm: /dev/kvm opens read-write and answers
 * KVM_GET_API_VERSION. Tests that boot plugvirt-vmm skip, saying why, when it cannot. */
#ifndef PLUGVIRT_TEST_KVM_CHECK_H
#define PLUGVIRT_TEST_KVM_CHECK_H

#include <stddef.h>

/* 0 when /dev/kvm is usable; otherwise -errno and `reason` (may be NULL) holds one line
 * without a trailing newline: "/dev/kvm is not available: <errno text> (...)". */
int test_kvm_check(char *reason, size_t size);

#endif
