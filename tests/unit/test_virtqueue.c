/* Split virtqueue: chain walking and validation against a simulated guest RAM. */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtqueue.h"

#define RAM_SIZE (1u << 20)
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x5000
#define USED_GPA 0x6000
#define INDIRECT_GPA 0x10000
#define DATA_GPA 0x40000

static uint8_t *ram;
static struct virtqueue queue;
static struct virtqueue_request *request;

static void *translate(void *opaque, uint64_t gpa, uint64_t length)
{
    (void)opaque;
    if (gpa >= RAM_SIZE || length > RAM_SIZE - gpa)
        return NULL;
    return ram + gpa;
}

static struct virtq_desc *desc_table(void)
{
    return (struct virtq_desc *)(ram + DESC_GPA);
}

static uint16_t *avail_ring(void)
{
    return (uint16_t *)(ram + AVAIL_GPA);
}

static uint16_t *used_ring(void)
{
    return (uint16_t *)(ram + USED_GPA);
}

static void setup_queue(uint16_t size, bool indirect, bool event_idx)
{
    ram = calloc(1, RAM_SIZE);
    cr_assert_not_null(ram);
    request = malloc(sizeof(*request));
    cr_assert_not_null(request);
    virtqueue_init(&queue, 0, 1024);
    queue.size = size;
    queue.desc_gpa = DESC_GPA;
    queue.avail_gpa = AVAIL_GPA;
    queue.used_gpa = USED_GPA;
    queue.indirect = indirect;
    queue.event_idx = event_idx;
    struct guest_memory memory = {translate, NULL};
    cr_assert_eq(virtqueue_enable(&queue, &memory, NULL), 0);
}

static void teardown_queue(void)
{
    free(ram);
    free(request);
}

static void set_desc(struct virtq_desc *table, unsigned index, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
    table[index] = (struct virtq_desc){addr, len, flags, next};
}

/* Makes `head` available as the next avail entry. */
static void make_available(uint16_t head)
{
    uint16_t *avail = avail_ring();
    avail[2 + avail[1] % queue.size] = head;
    avail[1]++;
}

Test(virtqueue, pops_a_chain_and_pushes_the_completion)
{
    setup_queue(16, false, false);
    struct virtq_desc *table = desc_table();
    set_desc(table, 3, DATA_GPA, 16, VRING_DESC_F_NEXT, 7);
    set_desc(table, 7, DATA_GPA + 0x100, 512, VRING_DESC_F_NEXT, 1);
    set_desc(table, 1, DATA_GPA + 0x400, 1, VRING_DESC_F_WRITE, 0);
    make_available(3);

    struct pv_error error = {0};
    cr_assert_eq(virtqueue_pop(&queue, request, &error), 1, "%s", error.message);
    cr_assert_eq(request->head, 3);
    cr_assert_eq(request->out_count, 2);
    cr_assert_eq(request->in_count, 1);
    cr_assert_eq(request->out_bytes, 528);
    cr_assert_eq(request->in_bytes, 1);
    cr_assert_eq(request->out[1].iov_base, ram + DATA_GPA + 0x100);
    cr_assert_eq(request->in[0].iov_base, ram + DATA_GPA + 0x400);
    cr_assert_eq(virtqueue_pop(&queue, request, &error), 0, "the ring is empty now");

    virtqueue_push(&queue, 3, 1);
    uint16_t *used = used_ring();
    cr_assert_eq(used[1], 1);
    struct virtq_used_elem element;
    memcpy(&element, &used[2], sizeof(element));
    cr_assert_eq(element.id, 3);
    cr_assert_eq(element.len, 1);
    cr_assert(virtqueue_should_notify(&queue));
    avail_ring()[0] = VRING_AVAIL_F_NO_INTERRUPT;
    cr_assert_not(virtqueue_should_notify(&queue));
    teardown_queue();
}

Test(virtqueue, wraps_around_the_ring)
{
    setup_queue(4, false, false);
    set_desc(desc_table(), 0, DATA_GPA, 8, 0, 0);
    for (unsigned round = 0; round < 70000; round++) {
        make_available(0);
        cr_assert_eq(virtqueue_pop(&queue, request, NULL), 1);
        virtqueue_push(&queue, 0, 0);
    }
    cr_assert_eq(used_ring()[1], (uint16_t)70000);
    teardown_queue();
}

Test(virtqueue, a_looping_chain_breaks_the_queue)
{
    setup_queue(16, false, false);
    struct virtq_desc *table = desc_table();
    set_desc(table, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
    set_desc(table, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 0);
    make_available(0);
    struct pv_error error = {0};
    cr_assert_eq(virtqueue_pop(&queue, request, &error), -EPROTO);
    cr_assert(queue.broken);
    cr_assert_not_null(strstr(error.message, "looping"), "%s", error.message);
    /* A broken queue does nothing more. */
    cr_assert_eq(virtqueue_pop(&queue, request, &error), 0);
    teardown_queue();
}

Test(virtqueue, a_chain_longer_than_the_queue_is_refused)
{
    /* 1000 descriptors in a queue of 256: the indices run out of the table. */
    setup_queue(256, false, false);
    struct virtq_desc *table = desc_table();
    for (unsigned i = 0; i < 256; i++)
        set_desc(table, i, DATA_GPA, 8, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % 256));
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    cr_assert(queue.broken);
    teardown_queue();
}

Test(virtqueue, buffers_outside_guest_ram_are_refused)
{
    setup_queue(16, false, false);
    set_desc(desc_table(), 0, RAM_SIZE - 4, 8, 0, 0);
    make_available(0);
    struct pv_error error = {0};
    cr_assert_eq(virtqueue_pop(&queue, request, &error), -EPROTO);
    cr_assert_not_null(strstr(error.message, "outside guest RAM"), "%s", error.message);

    teardown_queue();
    setup_queue(16, false, false);
    set_desc(desc_table(), 0, UINT64_MAX - 3, 8, 0, 0); /* wraps around */
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    teardown_queue();
}

Test(virtqueue, bad_indices_are_refused)
{
    setup_queue(16, false, false);
    set_desc(desc_table(), 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 16);
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO, "next beyond the table");
    teardown_queue();

    setup_queue(16, false, false);
    make_available(200);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO, "head beyond the table");
    teardown_queue();

    setup_queue(16, false, false);
    avail_ring()[1] = 40; /* more entries than the ring has */
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    teardown_queue();
}

Test(virtqueue, readable_after_writable_is_refused)
{
    setup_queue(16, false, false);
    struct virtq_desc *table = desc_table();
    set_desc(table, 0, DATA_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(table, 1, DATA_GPA, 8, 0, 0);
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    teardown_queue();
}

Test(virtqueue, indirect_tables)
{
    setup_queue(16, true, false);
    struct virtq_desc *indirect = (struct virtq_desc *)(ram + INDIRECT_GPA);
    set_desc(indirect, 0, DATA_GPA, 16, VRING_DESC_F_NEXT, 2);
    set_desc(indirect, 2, DATA_GPA + 0x200, 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(indirect, 1, DATA_GPA + 0x2000, 1, VRING_DESC_F_WRITE, 0);
    set_desc(desc_table(), 5, INDIRECT_GPA, 3 * 16, VRING_DESC_F_INDIRECT, 0);
    make_available(5);
    struct pv_error error = {0};
    cr_assert_eq(virtqueue_pop(&queue, request, &error), 1, "%s", error.message);
    cr_assert_eq(request->head, 5);
    cr_assert_eq(request->out_count, 1);
    cr_assert_eq(request->in_count, 2);
    cr_assert_eq(request->in_bytes, 4097);
    teardown_queue();
}

Test(virtqueue, evil_indirect_tables_break_the_queue)
{
    /* Nested indirect. */
    setup_queue(16, true, false);
    struct virtq_desc *indirect = (struct virtq_desc *)(ram + INDIRECT_GPA);
    set_desc(indirect, 0, INDIRECT_GPA, 16, VRING_DESC_F_INDIRECT, 0);
    set_desc(desc_table(), 0, INDIRECT_GPA, 16, VRING_DESC_F_INDIRECT, 0);
    make_available(0);
    struct pv_error error = {0};
    cr_assert_eq(virtqueue_pop(&queue, request, &error), -EPROTO);
    cr_assert_not_null(strstr(error.message, "nested"), "%s", error.message);
    teardown_queue();

    /* A loop inside the table. */
    setup_queue(16, true, false);
    indirect = (struct virtq_desc *)(ram + INDIRECT_GPA);
    set_desc(indirect, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
    set_desc(indirect, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 0);
    set_desc(desc_table(), 0, INDIRECT_GPA, 2 * 16, VRING_DESC_F_INDIRECT, 0);
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    teardown_queue();

    /* Too big, or not a whole number of descriptors. */
    setup_queue(16, true, false);
    set_desc(desc_table(), 0, INDIRECT_GPA, 2000 * 16, VRING_DESC_F_INDIRECT, 0);
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    teardown_queue();
    setup_queue(16, true, false);
    set_desc(desc_table(), 0, INDIRECT_GPA, 24, VRING_DESC_F_INDIRECT, 0);
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    teardown_queue();

    /* Table outside RAM. */
    setup_queue(16, true, false);
    set_desc(desc_table(), 0, RAM_SIZE - 16, 64, VRING_DESC_F_INDIRECT, 0);
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    teardown_queue();

    /* Not negotiated. */
    setup_queue(16, false, false);
    set_desc(desc_table(), 0, INDIRECT_GPA, 16, VRING_DESC_F_INDIRECT, 0);
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), -EPROTO);
    teardown_queue();
}

Test(virtqueue, a_1000_entry_indirect_chain_is_accepted)
{
    setup_queue(256, true, false);
    struct virtq_desc *indirect = (struct virtq_desc *)(ram + INDIRECT_GPA);
    for (unsigned i = 0; i < 1000; i++)
        set_desc(indirect, i, DATA_GPA + i, 1, i < 999 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    set_desc(desc_table(), 0, INDIRECT_GPA, 1000 * 16, VRING_DESC_F_INDIRECT, 0);
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), 1);
    cr_assert_eq(request->out_count, 1000);
    teardown_queue();
}

Test(virtqueue, event_idx_suppresses_interrupts)
{
    setup_queue(16, false, true);
    set_desc(desc_table(), 0, DATA_GPA, 8, 0, 0);
    uint16_t *used_event = &avail_ring()[2 + 16];
    uint16_t *avail_event = &used_ring()[2 + 4 * 16];

    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), 1);
    cr_assert_eq(*avail_event, 1, "the device publishes how far it read");
    virtqueue_push(&queue, 0, 0);
    cr_assert(virtqueue_should_notify(&queue), "the first completion always interrupts");

    *used_event = 5; /* the driver wants an interrupt once used passes 5 */
    for (unsigned i = 0; i < 4; i++) {
        make_available(0);
        cr_assert_eq(virtqueue_pop(&queue, request, NULL), 1);
        virtqueue_push(&queue, 0, 0);
        cr_assert_not(virtqueue_should_notify(&queue), "used=%u", queue.used_idx);
    }
    make_available(0);
    cr_assert_eq(virtqueue_pop(&queue, request, NULL), 1);
    virtqueue_push(&queue, 0, 0); /* used_idx 6: crosses used_event 5 */
    cr_assert(virtqueue_should_notify(&queue));
    teardown_queue();
}

Test(virtqueue, enable_checks_the_rings)
{
    ram = calloc(1, RAM_SIZE);
    struct guest_memory memory = {translate, NULL};
    virtqueue_init(&queue, 0, 256);
    queue.size = 100; /* not a power of two */
    queue.desc_gpa = DESC_GPA;
    queue.avail_gpa = AVAIL_GPA;
    queue.used_gpa = USED_GPA;
    cr_assert_eq(virtqueue_enable(&queue, &memory, NULL), -EINVAL);
    queue.size = 256;
    queue.used_gpa = RAM_SIZE - 8;
    cr_assert_eq(virtqueue_enable(&queue, &memory, NULL), -EINVAL);
    queue.used_gpa = USED_GPA + 2; /* misaligned */
    cr_assert_eq(virtqueue_enable(&queue, &memory, NULL), -EINVAL);
    queue.used_gpa = USED_GPA;
    cr_assert_eq(virtqueue_enable(&queue, &memory, NULL), 0);
    cr_assert(queue.enabled);
    free(ram);
}

Test(virtqueue, iov_helpers)
{
    char a[3] = "abc", b[4] = "defg";
    struct iovec iov[2] = {{a, 3}, {b, 4}};
    char out[8] = {0};
    cr_assert_eq(iov_to_buffer(iov, 2, 2, out, 4), 4);
    cr_assert_str_eq(out, "cdef");
    cr_assert_eq(iov_from_buffer(iov, 2, 5, "XYZ", 3), 2);
    cr_assert_eq(memcmp(b, "deXY", 4), 0);
    struct iovec slice[2];
    cr_assert_eq(iov_slice(iov, 2, 1, 3, slice, 2), 2);
    cr_assert_eq(slice[0].iov_base, a + 1);
    cr_assert_eq(slice[0].iov_len, 2);
    cr_assert_eq(slice[1].iov_len, 1);
}
