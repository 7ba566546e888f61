/* See kvm_check.h. */
#include "kvm_check.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int test_kvm_check(char *reason, size_t size)
{
    int rc = 0;
    const char *what = "";
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
    } else {
        int version = ioctl(fd, KVM_GET_API_VERSION, 0);
        if (version < 0) {
            rc = -errno;
            what = "KVM_GET_API_VERSION: ";
        } else if (version != KVM_API_VERSION) {
            rc = -ENOTSUP;
            what = "unexpected KVM API version: ";
        }
        close(fd);
    }
    if (rc < 0 && reason && size)
        snprintf(reason, size,
                 "/dev/kvm is not available: %s%s (this host's kernel is a kvm-pvm guest?)", what,
                 strerror(-rc));
    return rc;
}
