/* The block layer's I/O path: reads, writes, flush, discard and write-zeroes on
 * a backend, O_DIRECT bounce buffers included; see block_io.h. */
#include "block/block_io.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_internal.h"

/* -------------------------------------------------------------------- I/O --- */

static size_t iov_total(const struct iovec *iov, unsigned count)
{
    size_t total = 0;
    for (unsigned i = 0; i < count; i++)
        total += iov[i].iov_len;
    return total;
}

static bool iov_aligned(const struct iovec *iov, unsigned count, unsigned alignment)
{
    for (unsigned i = 0; i < count; i++)
        if ((uintptr_t)iov[i].iov_base % alignment || iov[i].iov_len % alignment)
            return false;
    return true;
}

/* Full transfer with retries on short counts; reads past EOF give zeroes. */
static ssize_t transfer_all(int fd, const struct iovec *iov_in, unsigned count, uint64_t offset,
                            bool is_write)
{
    struct iovec local[64];
    struct iovec *iov = count <= 64 ? local : malloc(count * sizeof(*iov));
    if (!iov)
        return -ENOMEM;
    memcpy(iov, iov_in, count * sizeof(*iov));
    size_t total = iov_total(iov, count);
    size_t done = 0;
    unsigned first = 0;
    ssize_t result = 0;
    while (done < total) {
        unsigned batch = count - first > IOV_MAX ? IOV_MAX : count - first;
        ssize_t n = is_write ? pwritev(fd, iov + first, (int)batch, (off_t)(offset + done))
                             : preadv(fd, iov + first, (int)batch, (off_t)(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            result = -errno;
            break;
        }
        if (n == 0) {
            if (is_write) {
                result = -EIO;
                break;
            }
            for (unsigned i = first; i < count; i++) /* end of file: zeroes */
                memset(iov[i].iov_base, 0, iov[i].iov_len);
            done = total;
            break;
        }
        done += (size_t)n;
        size_t advance = (size_t)n;
        while (first < count && advance >= iov[first].iov_len) {
            advance -= iov[first].iov_len;
            first++;
        }
        if (first < count) {
            iov[first].iov_base = (uint8_t *)iov[first].iov_base + advance;
            iov[first].iov_len -= advance;
        }
    }
    if (iov != local)
        free(iov);
    return result < 0 ? result : (ssize_t)total;
}

static size_t copy_iov(const struct iovec *iov, unsigned count, uint8_t *buffer, bool to_buffer)
{
    size_t position = 0;
    for (unsigned i = 0; i < count; i++) {
        if (to_buffer)
            memcpy(buffer + position, iov[i].iov_base, iov[i].iov_len);
        else
            memcpy(iov[i].iov_base, buffer + position, iov[i].iov_len);
        position += iov[i].iov_len;
    }
    return position;
}

/* O_DIRECT with unaligned guest buffers: go through an aligned bounce buffer,
 * reading the partial blocks at both ends first when writing. */
static ssize_t file_bounce(struct block_node *node, const struct iovec *iov, unsigned count,
                           uint64_t offset, bool is_write)
{
    uint64_t alignment = node->alignment;
    size_t length = iov_total(iov, count);
    uint64_t start = offset & ~(alignment - 1);
    uint64_t end = (offset + length + alignment - 1) & ~(alignment - 1);
    size_t span = (size_t)(end - start);
    void *buffer = NULL;
    if (posix_memalign(&buffer, alignment < 4096 ? 4096 : alignment, span))
        return -ENOMEM;
    struct iovec whole = {buffer, span};
    ssize_t result = 0;
    if (!is_write || start != offset || end != offset + length)
        result = transfer_all(node->fd, &whole, 1, start, false);
    if (result >= 0) {
        if (is_write) {
            copy_iov(iov, count, (uint8_t *)buffer + (offset - start), true);
            result = transfer_all(node->fd, &whole, 1, start, true);
        } else {
            copy_iov(iov, count, (uint8_t *)buffer + (offset - start), false);
        }
    }
    free(buffer);
    return result < 0 ? result : (ssize_t)length;
}

static ssize_t node_io(struct block_node *node, const struct iovec *iov, unsigned count,
                       uint64_t offset, bool is_write)
{
    size_t length = iov_total(iov, count);
    if (is_write && node->read_only)
        return -EACCES;
    if (node->driver == BLOCK_DRIVER_RAW) {
        if (node->has_size && (offset > node->size || length > node->size - offset))
            return -EINVAL;
        return node_io(node->file, iov, count, node->offset + offset, is_write);
    }
    if (node->direct && (offset % node->alignment || !iov_aligned(iov, count, node->alignment)))
        return file_bounce(node, iov, count, offset, is_write);
    return transfer_all(node->fd, iov, count, offset, is_write);
}

struct block_node *block_node_file_of(struct block_node *node, uint64_t *offset)
{
    while (node->driver == BLOCK_DRIVER_RAW) {
        *offset += node->offset;
        node = node->file;
    }
    return node;
}

static ssize_t backend_io(struct block_backend *backend, const struct iovec *iov, unsigned count,
                          uint64_t offset, bool is_write)
{
    pthread_rwlock_rdlock(&backend->lock);
    ssize_t result;
    if (!backend->root) {
        result = -ENOMEDIUM;
    } else {
        uint64_t length = block_node_length(backend->root);
        size_t bytes = iov_total(iov, count);
        if (offset > length || bytes > length - offset)
            result = -EINVAL;
        else
            result = node_io(backend->root, iov, count, offset, is_write);
        if (result >= 0 && is_write && !backend->writeback) {
            uint64_t ignored = 0;
            struct block_node *file = block_node_file_of(backend->root, &ignored);
            if (fdatasync(file->fd) < 0)
                result = -errno;
        }
    }
    pthread_rwlock_unlock(&backend->lock);
    return result;
}

ssize_t block_backend_preadv(struct block_backend *backend, const struct iovec *iov, unsigned count,
                             uint64_t offset)
{
    return backend_io(backend, iov, count, offset, false);
}

ssize_t block_backend_pwritev(struct block_backend *backend, const struct iovec *iov,
                              unsigned count, uint64_t offset)
{
    return backend_io(backend, iov, count, offset, true);
}

int block_backend_flush(struct block_backend *backend)
{
    pthread_rwlock_rdlock(&backend->lock);
    int result = 0;
    if (!backend->root) {
        result = -ENOMEDIUM;
    } else {
        uint64_t ignored = 0;
        struct block_node *file = block_node_file_of(backend->root, &ignored);
        if (!file->no_flush && !backend->root->no_flush && fdatasync(file->fd) < 0)
            result = -errno;
    }
    pthread_rwlock_unlock(&backend->lock);
    return result;
}

static int zero_by_writing(struct block_node *root, uint64_t offset, uint64_t length)
{
    enum { CHUNK = 1 << 16 };
    void *zeroes = NULL;
    if (posix_memalign(&zeroes, 4096, CHUNK))
        return -ENOMEM;
    memset(zeroes, 0, CHUNK);
    int result = 0;
    while (length > 0) {
        size_t chunk = length > CHUNK ? CHUNK : (size_t)length;
        struct iovec iov = {zeroes, chunk};
        ssize_t n = node_io(root, &iov, 1, offset, true);
        if (n < 0) {
            result = (int)n;
            break;
        }
        offset += chunk;
        length -= chunk;
    }
    free(zeroes);
    return result;
}

static int range_operation(struct block_backend *backend, uint64_t offset, uint64_t length,
                           bool zero, bool may_unmap)
{
    pthread_rwlock_rdlock(&backend->lock);
    int result = 0;
    if (!backend->root) {
        result = -ENOMEDIUM;
        goto out;
    }
    if (backend->root->read_only) {
        result = -EACCES;
        goto out;
    }
    uint64_t size = block_node_length(backend->root);
    if (offset > size || length > size - offset) {
        result = -EINVAL;
        goto out;
    }
    uint64_t file_offset = offset;
    struct block_node *file = block_node_file_of(backend->root, &file_offset);
    if (!zero) {
        if (fallocate(file->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)file_offset,
                      (off_t)length) < 0 &&
            errno != EOPNOTSUPP && errno != ENOSYS)
            result = -errno;
        goto out;
    }
    if (fallocate(file->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)file_offset,
                  (off_t)length) == 0)
        goto out;
    if (may_unmap && fallocate(file->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               (off_t)file_offset, (off_t)length) == 0)
        goto out;
    result = zero_by_writing(backend->root, offset, length);
out:
    if (result == 0 && zero && !backend->writeback && backend->root) {
        uint64_t ignored = 0;
        if (fdatasync(block_node_file_of(backend->root, &ignored)->fd) < 0)
            result = -errno;
    }
    pthread_rwlock_unlock(&backend->lock);
    return result;
}

int block_backend_discard(struct block_backend *backend, uint64_t offset, uint64_t length)
{
    return range_operation(backend, offset, length, false, true);
}

int block_backend_write_zeroes(struct block_backend *backend, uint64_t offset, uint64_t length,
                               bool may_unmap)
{
    return range_operation(backend, offset, length, true, may_unmap);
}
