/*
 * Time without a tick: the LAPIC timer runs one-shot only while some
 * probe_timer is active, armed for the earliest deadline. The clock is the sum
 * of the finished one-shots plus the elapsed part of the running one, so it
 * only advances while a timer is active, which is all its users need (they
 * compare it with deadlines they set).
 *
 * The LAPIC timer is assumed to count at 1 GHz (the APIC bus rate of KVM's
 * in-kernel LAPIC and of QEMU's emulated one), divided by 16 here.
 */
#include "probe.h"

#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3e0
#define LAPIC_DIVIDE_BY_16 0x3
#define TICKS_PER_MS 62500ull /* 1 GHz / 16 */
#define MAX_ONE_SHOT 0x7fffffffu
#define MAX_TIMERS 48

static struct probe_timer *timers[MAX_TIMERS];
static uint64_t clock_base;  /* ticks of the one-shots already folded in */
static uint32_t armed_count; /* initial count of the running one-shot, 0 = stopped */
static uint32_t deferred_events;

static uint64_t lapic(void)
{
    return interrupts_lapic_base();
}

void timer_init(void)
{
    mmio_write32(lapic() + LAPIC_TIMER_DIVIDE, LAPIC_DIVIDE_BY_16);
    mmio_write32(lapic() + LAPIC_TIMER_INITIAL, 0);
    mmio_write32(lapic() + LAPIC_LVT_TIMER, PROBE_VECTOR_TIMER); /* one-shot, unmasked */
}

static uint64_t clock_ticks(void)
{
    if (!armed_count)
        return clock_base;
    uint32_t current = mmio_read32(lapic() + LAPIC_TIMER_CURRENT);
    if (current > armed_count)
        current = armed_count;
    return clock_base + (armed_count - current);
}

uint64_t timer_now_us(void)
{
    return clock_ticks() * 1000 / TICKS_PER_MS;
}

/* Stops the running one-shot and adds its elapsed ticks to the clock. */
static void clock_fold(void)
{
    if (!armed_count)
        return;
    clock_base = clock_ticks();
    mmio_write32(lapic() + LAPIC_TIMER_INITIAL, 0);
    armed_count = 0;
}

static void rearm(void)
{
    clock_fold();
    uint64_t earliest = UINT64_MAX;
    for (unsigned i = 0; i < MAX_TIMERS; i++) {
        if (timers[i] && timers[i]->active && timers[i]->deadline > clock_base &&
            timers[i]->deadline < earliest)
            earliest = timers[i]->deadline;
    }
    if (earliest == UINT64_MAX)
        return;
    uint64_t delta = earliest - clock_base;
    armed_count = delta > MAX_ONE_SHOT ? MAX_ONE_SHOT : (uint32_t)delta;
    mmio_write32(lapic() + LAPIC_TIMER_INITIAL, armed_count);
}

void timer_start(struct probe_timer *timer, uint64_t delay_us)
{
    bool listed = false;
    int free_index = -1;
    for (unsigned i = 0; i < MAX_TIMERS; i++) {
        if (timers[i] == timer)
            listed = true;
        else if (!timers[i] && free_index < 0)
            free_index = (int)i;
    }
    if (!listed) {
        if (free_index < 0) {
            console_printf("PROBE WARN out of timers");
            return;
        }
        timers[free_index] = timer;
    }
    timer->deadline = clock_ticks() + delay_us * TICKS_PER_MS / 1000;
    timer->active = true;
    rearm();
}

void timer_stop(struct probe_timer *timer)
{
    timer->active = false;
    for (unsigned i = 0; i < MAX_TIMERS; i++) {
        if (timers[i] == timer)
            timers[i] = NULL;
    }
    /* The one-shot may still fire; rearm() then finds nothing and stops. */
}

bool timer_expired(const struct probe_timer *timer)
{
    return timer->active && clock_ticks() >= timer->deadline;
}

void timer_handle_interrupt(void)
{
    rearm();
}

enum probe_wait_result probe_wait(bool (*done)(void *context), void *context, uint64_t timeout_us)
{
    struct probe_timer timer = {0};
    timer_start(&timer, timeout_us);
    enum probe_wait_result result;
    for (;;) {
        if (done(context)) {
            result = PROBE_WAIT_DONE;
            break;
        }
        if (timer_expired(&timer)) {
            result = done(context) ? PROBE_WAIT_LATE : PROBE_WAIT_TIMEOUT;
            break;
        }
        uint32_t pending = interrupts_take_pending();
        if (pending & PROBE_PENDING_TIMER)
            timer_handle_interrupt();
        /* UART input and SCIs wait for the main loop; it also wants the timer
         * bit, for timers of its own that may have expired meanwhile. */
        deferred_events |= pending & ~PROBE_PENDING_MSI;
        if (!pending)
            interrupts_idle();
    }
    timer_stop(&timer);
    return result;
}

static bool never(void *context)
{
    (void)context;
    return false;
}

void probe_sleep_us(uint64_t delay_us)
{
    probe_wait(never, NULL, delay_us);
}

uint32_t probe_take_events(void)
{
    uint32_t events = interrupts_take_pending() | deferred_events;
    deferred_events = 0;
    return events;
}
