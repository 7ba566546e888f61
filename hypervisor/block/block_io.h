/* I/O on a block backend (a device's view of a drive or node, block.h). */
#ifndef PLUGVIRT_BLOCK_IO_H
#define PLUGVIRT_BLOCK_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct block_backend;

/* I/O: return the bytes transferred (always all of them) or -errno:
 * -ENOMEDIUM when nothing is inserted (after drive_del), -EACCES for writes
 * to read-only nodes, -EINVAL beyond the end. */
ssize_t block_backend_preadv(struct block_backend *backend, const struct iovec *iov, unsigned count,
                             uint64_t offset);
ssize_t block_backend_pwritev(struct block_backend *backend, const struct iovec *iov,
                              unsigned count, uint64_t offset);
int block_backend_flush(struct block_backend *backend);
/* Discard is advisory: unsupported by the host file system still means 0. */
int block_backend_discard(struct block_backend *backend, uint64_t offset, uint64_t length);
int block_backend_write_zeroes(struct block_backend *backend, uint64_t offset, uint64_t length,
                               bool may_unmap);

#endif
