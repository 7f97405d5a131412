/* Cortex-M4 start-up for programs run under QEMU (mps2-an386) with semihosting.
 *
 * In: newlib's `_start` from rdimon-crt0 (link with --specs=rdimon.specs) and the `_stack`
 * symbol of the toolchain's default linker script. Out: the vector table `kws_vector_table`
 * in section .isr_vector, to be placed at address 0 (-Wl,--section-start=.isr_vector=0x0)
 * and kept by --gc-sections (-Wl,--undefined=kws_vector_table).
 *
 * Reset enables the FPU (CP10/CP11 full access) before any floating-point instruction can
 * run, then enters newlib, which clears .bss, asks the host for heap and stack, runs main()
 * and ends with a semihosting exit. Every other exception (a bad pointer, an undefined
 * instruction) prints one line to the host's stderr and exits with a
 * non-zero status, so a crash ends the emulator instead of hanging it.
 *
 * Written for C99 with -Wall -Wextra -Werror. */
#include <stdint.h>

extern uint32_t _stack; /* newlib's `_start` is entered from the assembly below */

#define KWS_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define KWS_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define KWS_BFAR (*(volatile uint32_t *)0xE000ED38u)

/* Semihosting operations (ARM "Semihosting for AArch32 and AArch64"). */
#define KWS_SYS_WRITE0 0x04u
#define KWS_SYS_EXIT 0x18u
/* Stop reason for a fault; QEMU exits with status 1 for any reason but a normal exit. */
#define KWS_ADP_STOPPED_RUNTIME_ERROR 0x20023u

#define KWS_VECTORS 16 /* the system exceptions; no interrupt is ever enabled */

void kws_reset_handler(void) __attribute__((naked, noreturn));
void kws_fault_handler(void) __attribute__((naked, noreturn));
void kws_fault_report(const uint32_t *frame) __attribute__((noreturn, used));

static uint32_t kws_semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Naked and in assembly so that nothing is pushed before newlib moves the stack: `_stack`
 * (0x80000 in the default linker script) can lie inside a large image, whose bytes a push
 * would overwrite. */
void kws_reset_handler(void) {
    __asm__ volatile(
        "movw r0, #0xed88\n\t" /* CPACR, 0xE000ED88 */
        "movt r0, #0xe000\n\t"
        "ldr r1, [r0]\n\t"
        "orr r1, r1, #0x00f00000\n\t" /* CP10 and CP11: full access */
        "str r1, [r0]\n\t"
        "dsb\n\t"
        "isb\n\t"
        "b _start\n\t");
}

/* Hand the stacked exception frame (r0-r3, r12, lr, pc, xpsr) of whichever stack was in use
 * to the C reporter. */
void kws_fault_handler(void) {
    __asm__ volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "b kws_fault_report\n\t");
}

static char *kws_put_text(char *at, const char *text) {
    while (*text != '\0') {
        *at++ = *text++;
    }
    return at;
}

static char *kws_put_hex(char *at, uint32_t value) {
    static const char digits[] = "0123456789abcdef";
    *at++ = '0';
    *at++ = 'x';
    for (int shift = 28; shift >= 0; shift -= 4) {
        *at++ = digits[(value >> shift) & 0xFu];
    }
    return at;
}

void kws_fault_report(const uint32_t *frame) {
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    char line[160];
    char *at = kws_put_text(line, "kws-cortexm: fault: exception ");
    at = kws_put_hex(at, ipsr & 0x1FFu);
    at = kws_put_text(at, " pc=");
    at = kws_put_hex(at, frame[6]);
    at = kws_put_text(at, " lr=");
    at = kws_put_hex(at, frame[5]);
    at = kws_put_text(at, " cfsr=");
    at = kws_put_hex(at, KWS_CFSR);
    at = kws_put_text(at, " hfsr=");
    at = kws_put_hex(at, KWS_HFSR);
    at = kws_put_text(at, " bfar=");
    at = kws_put_hex(at, KWS_BFAR);
    at = kws_put_text(at, "\n");
    *at = '\0';
    kws_semihost(KWS_SYS_WRITE0, line);
    kws_semihost(KWS_SYS_EXIT, (const void *)KWS_ADP_STOPPED_RUNTIME_ERROR);
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) const void *const kws_vector_table[KWS_VECTORS] = {
    &_stack,           /* 0: initial main stack pointer */
    kws_reset_handler, /* 1: reset */
    kws_fault_handler, /* 2: NMI */
    kws_fault_handler, /* 3: HardFault */
    kws_fault_handler, /* 4: MemManage */
    kws_fault_handler, /* 5: BusFault */
    kws_fault_handler, /* 6: UsageFault */
    0,                 /* 7-10: reserved */
    0,
    0,
    0,
    kws_fault_handler, /* 11: SVCall */
    kws_fault_handler, /* 12: DebugMonitor */
    0,                 /* 13: reserved */
    kws_fault_handler, /* 14: PendSV */
    kws_fault_handler, /* 15: SysTick */
};
