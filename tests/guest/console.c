/*
 * 8250/16550 UART at 0x3f8, 115200 8N1, receive interrupt on IRQ 4.
 * Every port access exits to the VMM (~31 us from CPL3 on the PVM host), so
 * output checks THRE once and then writes up to a FIFO's worth of bytes.
 */
#include "probe.h"

#define UART_BASE 0x3f8
#define UART_DATA 0 /* RBR/THR, DLL with DLAB */
#define UART_IER 1  /* DLM with DLAB */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20
#define UART_FIFO_SIZE 16
#define LINE_SIZE 256

static char line_buffer[LINE_SIZE];
static size_t line_length;

void console_init(void)
{
    outb(UART_BASE + UART_IER, 0x00);
    outb(UART_BASE + UART_LCR, 0x80); /* DLAB */
    outb(UART_BASE + UART_DATA, 1);   /* divisor 1 = 115200 */
    outb(UART_BASE + UART_IER, 0);
    outb(UART_BASE + UART_LCR, 0x03); /* 8N1 */
    outb(UART_BASE + UART_FCR, 0x07); /* FIFO on, clear both, RX trigger 1 byte */
    outb(UART_BASE + UART_MCR, 0x0b); /* DTR, RTS, OUT2 (gates the IRQ line) */
    outb(UART_BASE + UART_IER, 0x01); /* receive data available */
}

void console_write(const char *data, size_t length)
{
    while (length) {
        unsigned spins = 0;
        while (!(inb(UART_BASE + UART_LSR) & LSR_THR_EMPTY) && ++spins < 100000)
            ;
        size_t chunk = length < UART_FIFO_SIZE ? length : UART_FIFO_SIZE;
        for (size_t i = 0; i < chunk; i++)
            outb(UART_BASE + UART_DATA, (uint8_t)data[i]);
        data += chunk;
        length -= chunk;
    }
}

void console_printf(const char *format, ...)
{
    char buffer[512];
    va_list arguments;
    va_start(arguments, format);
    size_t length = probe_vformat(buffer, sizeof(buffer) - 1, format, arguments);
    va_end(arguments);
    if (length > sizeof(buffer) - 2)
        length = sizeof(buffer) - 2;
    buffer[length++] = '\n';
    console_write(buffer, length);
}

void console_receive(void (*on_line)(char *line))
{
    while (inb(UART_BASE + UART_LSR) & LSR_DATA_READY) {
        char c = (char)inb(UART_BASE + UART_DATA);
        if (c == '\n' || c == '\r') {
            line_buffer[line_length] = '\0';
            if (line_length)
                on_line(line_buffer);
            line_length = 0;
        } else if (line_length < LINE_SIZE - 1) {
            line_buffer[line_length++] = c;
        }
    }
}
