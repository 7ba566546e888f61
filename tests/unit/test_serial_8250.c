/* The 16550A model, driven through its registers as a guest driver would, with
 * input arriving through a real unix-socket chardev and libevent loop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "chardev/chardev.h"
#include "io_bus.h"
#include "chardev/serial_8250.h"
#include "vm.h"

#define RBR SERIAL_8250_RBR
#define THR SERIAL_8250_RBR
#define DLL SERIAL_8250_RBR
#define IER SERIAL_8250_IER
#define DLM SERIAL_8250_IER
#define IIR SERIAL_8250_IIR
#define FCR SERIAL_8250_IIR
#define LCR SERIAL_8250_LCR
#define MCR SERIAL_8250_MCR
#define LSR SERIAL_8250_LSR
#define MSR SERIAL_8250_MSR
#define SCR SERIAL_8250_SCR

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct irq_line {
    int level;
    unsigned rising_edges;
};

static void irq_changed(void *opaque, int level)
{
    struct irq_line *line = opaque;
    cr_assert_neq(level, line->level, "the line is driven on changes only");
    if (level)
        line->rising_edges++;
    line->level = level;
}

/* A UART wired to a unix-server chardev with one connected client. */
struct rig {
    struct event_base *base;
    char *dir, *path;
    struct chardev *chardev;
    struct serial_8250 *serial;
    struct irq_line irq;
    int client;
};

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void run_for(struct event_base *base, double seconds)
{
    double deadline = now_seconds() + seconds;
    do {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(500);
    } while (now_seconds() < deadline);
}

#define RUN_UNTIL(base, condition)                                                                 \
    ({                                                                                             \
        double deadline_ = now_seconds() + 2.0;                                                    \
        while (!(condition) && now_seconds() < deadline_) {                                        \
            event_base_loop((base), EVLOOP_NONBLOCK);                                              \
            if (!(condition))                                                                      \
                usleep(500);                                                                       \
        }                                                                                          \
        (condition);                                                                               \
    })

static void rig_open(struct rig *rig)
{
    memset(rig, 0, sizeof(*rig));
    cr_assert_eq(evthread_use_pthreads(), 0);
    rig->base = event_base_new();
    rig->dir = strdup("/tmp/pv-serial-XXXXXX");
    cr_assert_not_null(mkdtemp(rig->dir));
    cr_assert_gt(asprintf(&rig->path, "%s/serial.sock", rig->dir), 0);
    struct chardev_spec spec = {.kind = CHARDEV_KIND_UNIX_SERVER, .path = rig->path};
    struct pv_error error = {0};
    rig->chardev = chardev_open(rig->base, &spec, &error);
    cr_assert_not_null(rig->chardev, "%s", error.message);
    rig->serial = serial_8250_create_detached(irq_changed, &rig->irq, rig->chardev, &error);
    cr_assert_not_null(rig->serial, "%s", error.message);

    rig->client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, rig->path, sizeof(address.sun_path) - 1);
    cr_assert_eq(connect(rig->client, (struct sockaddr *)&address, sizeof(address)), 0);
    run_for(rig->base, 0.01); /* accept */
}

static void rig_close(struct rig *rig)
{
    serial_8250_destroy(rig->serial);
    close(rig->client);
    chardev_close(rig->chardev);
    event_base_free(rig->base);
    rmdir(rig->dir);
    free(rig->path);
    free(rig->dir);
}

static void rig_send(struct rig *rig, const void *data, size_t length)
{
    cr_assert_eq(send(rig->client, data, length, 0), (ssize_t)length);
}

/* Collects what the UART transmitted until `length` bytes arrived; NUL-terminated. */
static void rig_expect_output(struct rig *rig, const char *expected)
{
    char buffer[256] = {0};
    size_t length = 0, wanted = strlen(expected);
    double deadline = now_seconds() + 2.0;
    while (length < wanted && now_seconds() < deadline) {
        event_base_loop(rig->base, EVLOOP_NONBLOCK);
        ssize_t got = recv(rig->client, buffer + length, sizeof(buffer) - 1 - length, MSG_DONTWAIT);
        if (got > 0)
            length += (size_t)got;
        else
            usleep(500);
    }
    cr_assert_str_eq(buffer, expected);
}

static uint8_t reg(struct rig *rig, unsigned offset)
{
    return serial_8250_read_register(rig->serial, offset);
}

static void set(struct rig *rig, unsigned offset, uint8_t value)
{
    serial_8250_write_register(rig->serial, offset, value);
}

/* What the probe guest's console_init does. */
static void guest_init(struct rig *rig)
{
    set(rig, IER, 0x00);
    set(rig, LCR, 0x80);
    set(rig, DLL, 1);
    set(rig, IER, 0);
    set(rig, LCR, 0x03);
    set(rig, FCR, 0x07);
    set(rig, MCR, 0x0b);
    set(rig, IER, 0x01);
}

Test(serial_8250, registers_have_their_reset_values)
{
    struct rig rig;
    rig_open(&rig);
    cr_assert_eq(reg(&rig, IER), 0x00);
    cr_assert_eq(reg(&rig, IIR), 0x01, "no interrupt, FIFO off");
    cr_assert_eq(reg(&rig, LCR), 0x00);
    cr_assert_eq(reg(&rig, MCR), 0x00);
    cr_assert_eq(reg(&rig, LSR), LSR_THRE | LSR_TEMT);
    cr_assert_eq(reg(&rig, MSR), 0xb0, "CTS, DSR and DCD asserted");
    cr_assert_eq(reg(&rig, SCR), 0x00);
    cr_assert_eq(rig.irq.level, 0);

    set(&rig, SCR, 0x5a);
    set(&rig, IER, 0x0f);
    set(&rig, LCR, 0x1b);
    set(&rig, FCR, 0xc1);
    serial_8250_reset(rig.serial);
    cr_assert_eq(reg(&rig, SCR), 0x00);
    cr_assert_eq(reg(&rig, IER), 0x00);
    cr_assert_eq(reg(&rig, LCR), 0x00);
    cr_assert_eq(reg(&rig, IIR), 0x01);
    rig_close(&rig);
}

Test(serial_8250, divisor_latch_is_behind_dlab)
{
    struct rig rig;
    rig_open(&rig);
    set(&rig, IER, 0x05);
    set(&rig, LCR, 0x83);
    cr_assert_eq(reg(&rig, DLL), 0x0c, "9600 baud after reset");
    cr_assert_eq(reg(&rig, DLM), 0x00);
    set(&rig, DLL, 0x01);
    set(&rig, DLM, 0x02);
    cr_assert_eq(reg(&rig, DLL), 0x01);
    cr_assert_eq(reg(&rig, DLM), 0x02);
    set(&rig, LCR, 0x03);
    cr_assert_eq(reg(&rig, IER), 0x05, "IER is untouched by DLM writes");
    cr_assert_eq(reg(&rig, LCR), 0x03);
    set(&rig, LCR, 0x80);
    cr_assert_eq(reg(&rig, DLL), 0x01);
    cr_assert_eq(reg(&rig, DLM), 0x02);
    /* Writes with DLAB set never reach the line. */
    set(&rig, DLL, 'X');
    set(&rig, LCR, 0x03);
    set(&rig, THR, 'Y');
    rig_expect_output(&rig, "Y");
    rig_close(&rig);
}

Test(serial_8250, loopback_sends_tx_to_rx_and_mirrors_modem_lines)
{
    struct rig rig;
    rig_open(&rig);
    set(&rig, FCR, 0x01);
    set(&rig, IER, 0x01);
    set(&rig, MCR, 0x1a); /* loop, OUT2, RTS: Linux's autoconfig check */
    cr_assert_eq(reg(&rig, MSR) & 0xf0, 0x90, "DCD from OUT2, CTS from RTS");
    set(&rig, THR, 'L');
    set(&rig, THR, 'B');
    cr_assert_eq(reg(&rig, LSR) & LSR_DR, LSR_DR);
    cr_assert_eq(reg(&rig, IIR), 0xc4, "the UART itself sees receive data");
    cr_assert_eq(rig.irq.level, 0, "loopback disconnects the interrupt output");
    cr_assert_eq(reg(&rig, RBR), 'L');
    cr_assert_eq(reg(&rig, RBR), 'B');
    cr_assert_eq(reg(&rig, LSR) & LSR_DR, 0);

    /* Input from outside waits while in loopback, then flows again. */
    rig_send(&rig, "ext", 3);
    run_for(rig.base, 0.02);
    cr_assert_eq(reg(&rig, LSR) & LSR_DR, 0);
    set(&rig, MCR, 0x0b);
    cr_assert_eq(reg(&rig, MSR) & 0xf0, 0xb0);
    cr_assert(RUN_UNTIL(rig.base, reg(&rig, LSR) & LSR_DR));
    cr_assert_eq(rig.irq.level, 1);
    cr_assert_eq(reg(&rig, RBR), 'e');

    /* Loopback bytes never reached the peer. */
    char buffer[8];
    run_for(rig.base, 0.01);
    cr_assert_lt(recv(rig.client, buffer, sizeof(buffer), MSG_DONTWAIT), 0);
    rig_close(&rig);
}

Test(serial_8250, received_byte_sets_dr_and_interrupts_until_read)
{
    struct rig rig;
    rig_open(&rig);
    guest_init(&rig);
    cr_assert_eq(reg(&rig, IIR), 0xc1);
    cr_assert_eq(rig.irq.level, 0);
    rig_send(&rig, "hi", 2);
    cr_assert(RUN_UNTIL(rig.base, rig.irq.level == 1));
    cr_assert_eq(rig.irq.rising_edges, 1);
    cr_assert_eq(reg(&rig, LSR), LSR_DR | LSR_THRE | LSR_TEMT);
    cr_assert_eq(reg(&rig, IIR), 0xc4);
    cr_assert_eq(reg(&rig, RBR), 'h');
    cr_assert_eq(rig.irq.level, 1, "still data");
    cr_assert_eq(reg(&rig, RBR), 'i');
    cr_assert_eq(rig.irq.level, 0);
    cr_assert_eq(reg(&rig, IIR), 0xc1);
    cr_assert_eq(reg(&rig, LSR) & LSR_DR, 0);

    /* The next byte is a new edge for the edge-triggered IOAPIC pin. */
    rig_send(&rig, "!", 1);
    cr_assert(RUN_UNTIL(rig.base, rig.irq.level == 1));
    cr_assert_eq(rig.irq.rising_edges, 2);
    cr_assert_eq(reg(&rig, RBR), '!');

    /* Without the FIFO: IIR 0x04, no FIFO bits. */
    set(&rig, FCR, 0x00);
    rig_send(&rig, "z", 1);
    cr_assert(RUN_UNTIL(rig.base, rig.irq.level == 1));
    cr_assert_eq(reg(&rig, IIR), 0x04);
    cr_assert_eq(reg(&rig, RBR), 'z');

    /* OUT2 gates the interrupt output. */
    set(&rig, MCR, 0x03);
    rig_send(&rig, "q", 1);
    cr_assert(RUN_UNTIL(rig.base, reg(&rig, LSR) & LSR_DR));
    cr_assert_eq(reg(&rig, IIR), 0x04);
    cr_assert_eq(rig.irq.level, 0);
    set(&rig, MCR, 0x0b);
    cr_assert_eq(rig.irq.level, 1);
    rig_close(&rig);
}

Test(serial_8250, fifo_below_trigger_level_reports_a_timeout)
{
    struct rig rig;
    rig_open(&rig);
    guest_init(&rig);
    set(&rig, FCR, 0x81); /* trigger level 8 */
    rig_send(&rig, "abc", 3);
    cr_assert(RUN_UNTIL(rig.base, rig.irq.level == 1));
    cr_assert_eq(reg(&rig, IIR), 0xcc);
    rig_send(&rig, "defgh", 5);
    cr_assert(RUN_UNTIL(rig.base, reg(&rig, IIR) == 0xc4));
    rig_close(&rig);
}

Test(serial_8250, thre_interrupt_on_enable_and_after_each_write)
{
    struct rig rig;
    rig_open(&rig);
    set(&rig, MCR, 0x08);
    cr_assert_eq(rig.irq.level, 0);
    set(&rig, IER, 0x02);
    cr_assert_eq(rig.irq.level, 1, "THR is empty: enabling ETBEI interrupts at once");
    cr_assert_eq(reg(&rig, IIR), 0x02);
    cr_assert_eq(rig.irq.level, 0, "reading IIR acknowledged it");
    cr_assert_eq(reg(&rig, IIR), 0x01);

    set(&rig, THR, 'o');
    set(&rig, THR, 'k');
    cr_assert_eq(rig.irq.rising_edges, 3, "every transmitted byte is a new THRE edge");
    cr_assert_eq(reg(&rig, LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
    rig_expect_output(&rig, "ok");

    /* Receive data outranks THRE. */
    set(&rig, IER, 0x03);
    rig_send(&rig, "r", 1);
    cr_assert(RUN_UNTIL(rig.base, reg(&rig, LSR) & LSR_DR));
    cr_assert_eq(reg(&rig, IIR), 0x04);
    cr_assert_eq(reg(&rig, RBR), 'r');
    cr_assert_eq(reg(&rig, IIR), 0x02);
    set(&rig, IER, 0x00);
    cr_assert_eq(rig.irq.level, 0);
    rig_close(&rig);
}

Test(serial_8250, fcr_clears_the_receive_fifo)
{
    struct rig rig;
    rig_open(&rig);
    guest_init(&rig);
    rig_send(&rig, "0123456789", 10);
    cr_assert(RUN_UNTIL(rig.base, reg(&rig, LSR) & LSR_DR));
    run_for(rig.base, 0.01);
    cr_assert_eq(rig.irq.level, 1);
    set(&rig, FCR, 0x03); /* keep FIFO on, clear RX */
    cr_assert_eq(reg(&rig, LSR) & LSR_DR, 0);
    cr_assert_eq(reg(&rig, IIR), 0xc1);
    cr_assert_eq(rig.irq.level, 0);
    rig_send(&rig, "N", 1);
    cr_assert(RUN_UNTIL(rig.base, reg(&rig, LSR) & LSR_DR));
    cr_assert_eq(reg(&rig, RBR), 'N');
    rig_close(&rig);
}

Test(serial_8250, loopback_overrun_sets_oe_and_line_status_interrupt)
{
    struct rig rig;
    rig_open(&rig);
    set(&rig, FCR, 0x01);
    set(&rig, IER, 0x05);
    set(&rig, MCR, 0x10);
    for (int i = 0; i < 17; i++)
        set(&rig, THR, (uint8_t)('a' + i));
    cr_assert_eq(reg(&rig, IIR), 0xc6, "line status has the highest priority");
    cr_assert_eq(reg(&rig, LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
    cr_assert_eq(reg(&rig, LSR) & LSR_OE, 0, "OE clears when LSR is read");
    cr_assert_eq(reg(&rig, IIR), 0xc4);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(reg(&rig, RBR), 'a' + i, "the 17th byte is the lost one");
    cr_assert_eq(reg(&rig, LSR) & LSR_DR, 0);
    rig_close(&rig);
}

/* The guest reads slowly; input is paced by can_receive so nothing overruns. */
static void check_paced_input(bool fifo)
{
    struct rig rig;
    rig_open(&rig);
    guest_init(&rig);
    if (!fifo)
        set(&rig, FCR, 0x00);
    char message[300];
    for (size_t i = 0; i < sizeof(message); i++)
        message[i] = (char)(' ' + i % 90);
    rig_send(&rig, message, sizeof(message));

    char received[sizeof(message)];
    size_t count = 0;
    unsigned batches = 0;
    while (count < sizeof(message)) {
        cr_assert(RUN_UNTIL(rig.base, reg(&rig, LSR) & LSR_DR), "stalled after %zu bytes", count);
        run_for(rig.base, 0.002); /* give the chardev every chance to overfill */
        batches++;
        size_t in_batch = 0;
        for (;;) {
            uint8_t lsr = reg(&rig, LSR);
            cr_assert_eq(lsr & LSR_OE, 0, "overrun after %zu bytes", count);
            if (!(lsr & LSR_DR))
                break;
            cr_assert_lt(count, sizeof(message));
            received[count++] = (char)reg(&rig, RBR);
            in_batch++;
        }
        cr_assert_leq(in_batch, fifo ? 16u : 1u);
    }
    cr_assert_arr_eq(received, message, sizeof(message));
    cr_assert_geq(batches, sizeof(message) / (fifo ? 16 : 1));
    rig_close(&rig);
}

Test(serial_8250, slow_guest_with_fifo_loses_no_input)
{
    check_paced_input(true);
}

Test(serial_8250, slow_guest_without_fifo_loses_no_input)
{
    check_paced_input(false);
}

Test(serial_8250, works_without_a_chardev)
{
    struct irq_line irq = {0};
    struct serial_8250 *serial = serial_8250_create_detached(irq_changed, &irq, NULL, NULL);
    cr_assert_not_null(serial);
    serial_8250_write_register(serial, THR, 'x');
    serial_8250_write_register(serial, MCR, 0x18);
    serial_8250_write_register(serial, THR, 'y');
    cr_assert_eq(serial_8250_read_register(serial, RBR), 'y');
    serial_8250_destroy(serial);
}

Test(serial_8250, input_refills_the_fifo_once_half_read)
{
    struct rig rig;
    rig_open(&rig);
    guest_init(&rig);
    char message[40];
    for (size_t i = 0; i < sizeof(message); i++)
        message[i] = (char)('A' + i);
    rig_send(&rig, message, sizeof(message));
    cr_assert(RUN_UNTIL(rig.base, reg(&rig, LSR) & LSR_DR));
    run_for(rig.base, 0.01);
    for (size_t i = 0; i < 8; i++)
        cr_assert_eq(reg(&rig, RBR), message[i]);
    run_for(rig.base, 0.01);
    /* 8 were left and 8 more came in: 16 readable before DR clears. */
    size_t count = 8;
    while (reg(&rig, LSR) & LSR_DR) {
        cr_assert_eq(reg(&rig, RBR), message[count]);
        count++;
    }
    cr_assert_eq(count, 24);
    rig_close(&rig);
}

Test(serial_8250, registers_on_the_vm_io_bus)
{
    struct vm vm;
    memset(&vm, 0, sizeof(vm));
    vm.vm_fd = -1;
    cr_assert_eq(io_bus_init(&vm.io_bus, NULL), 0);
    struct pv_error error = {0};
    struct serial_8250 *serial = serial_8250_create(&vm, 0x3f8, 4, NULL, &error);
    cr_assert_not_null(serial, "%s", error.message);
    uint8_t value = 0;
    cr_assert(io_bus_access(&vm.io_bus, IO_SPACE_PIO, 0x3fd, &value, 1, false));
    cr_assert_eq(value, LSR_THRE | LSR_TEMT);
    value = 0x77;
    cr_assert(io_bus_access(&vm.io_bus, IO_SPACE_PIO, 0x3ff, &value, 1, true));
    value = 0;
    cr_assert(io_bus_access(&vm.io_bus, IO_SPACE_PIO, 0x3ff, &value, 1, false));
    cr_assert_eq(value, 0x77);
    /* A 16-bit read covers LCR and MCR. */
    uint16_t pair = 0;
    cr_assert(io_bus_access(&vm.io_bus, IO_SPACE_PIO, 0x3fb, &pair, 2, false));
    cr_assert_eq(pair, 0x0000);

    cr_assert_null(serial_8250_create(&vm, 0x3f8, 4, NULL, &error), "the ports are taken");
    cr_assert_eq(error.code, -EEXIST);
    serial_8250_destroy(serial);
    cr_assert_not(io_bus_access(&vm.io_bus, IO_SPACE_PIO, 0x3fd, &value, 1, false));
    io_bus_destroy(&vm.io_bus);
}
