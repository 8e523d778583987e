"""The fixed text of the firmware project (firmware.py writes it with the model): start-up code,
semihosting, the measuring `main`, the linker script and the Makefile. No C library: the
firmware links only its own files, the model and libgcc (64-bit multiply, division)."""

STARTUP = """/* Start-up for a Cortex-M: the vector table, copying .data, zeroing .bss, then main(); and the
   few functions a freestanding C compiler may call on its own. */
#include <stdint.h>
#include <stddef.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void semihost_exit(int ok);

void reset_handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0;
    semihost_exit(main() == 0);
}

static void fault_handler(void) { semihost_exit(0); }

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_estack, (const void *)reset_handler, (const void *)fault_handler, (const void *)fault_handler,
};

void *memset(void *s, int c, size_t n) { uint8_t *p = s; while (n--) *p++ = (uint8_t)c; return s; }
void *memcpy(void *d, const void *s, size_t n) { uint8_t *p = d; const uint8_t *q = s; while (n--) *p++ = *q++; return d; }
"""

MAIN = """/* Classifies the digits in digits.bin (784-byte images, read through semihosting) and prints, per
   digit, the answer and its ten int32 logits; then what it measured:
   - instructions: QEMU runs with -icount shift=0, so each guest instruction advances the virtual
     clock by exactly 1 ns, and SysTick counts that clock; a loop of a known instruction count
     first says how many instructions a tick is;
   - stack: the free stack is painted before each digit, and the lowest word tinycnn_predict
     changed is its high-water mark;
   - arena: painted too, alternately with two patterns, so every byte it writes shows. */
#include <stdint.h>
#include "tinycnn_model.h"

#define GUARD 64
#define PAINT 0xA5A5A5A5u
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

extern uint32_t _ebss;
static uint32_t arena[(TINYCNN_ARENA_BYTES + GUARD + 3) / 4];
static uint8_t image[784];

static int semihost(int op, void *arg) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihost_exit(int ok) {
    for (;;) semihost(0x18, (void *)(ok ? 0x20026 : 0x20023)); /* ApplicationExit, or RunTimeErrorUnknown */
}

static int out;
static void print(const char *s) {
    uint32_t n = 0, args[3];
    while (s[n]) n++;
    args[0] = (uint32_t)out, args[1] = (uint32_t)s, args[2] = n;
    semihost(0x05, args);
}

static void print_int(int32_t v) {
    char text[13], *p = text + 12;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    *p = 0;
    do *--p = (char)('0' + u % 10); while (u /= 10);
    if (v < 0) *--p = '-';
    print(p);
}

static uint32_t ticks(void) { return SYST_CVR; }

static __attribute__((noinline)) uint32_t known_loop(void) { /* 2 instructions a turn, 100000 turns */
    uint32_t start = ticks(), n = 100000;
    __asm__ volatile("1: subs %0, #1\\n bne 1b" : "+l"(n) : : "cc");
    return (start - ticks()) & 0xFFFFFFu;
}

static __attribute__((noinline)) void paint(uint32_t *from, uint32_t *to, uint32_t value) {
    while (from < to) *from++ = value;
}

static uint32_t stack_pointer(void) {
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

int main(void) {
    uint32_t open_tt[3] = {(uint32_t)":tt", 4, 3}, open_in[3] = {(uint32_t)"digits.bin", 1, 10};
    uint32_t digits = 0, total = 0, calibration, stack = 0, touched = 0, i;
    int32_t logits[10];
    int input;
    out = semihost(0x01, open_tt);
    input = semihost(0x01, open_in);
    if (out < 0 || input < 0) return 1;
    SYST_RVR = 0xFFFFFFu, SYST_CVR = 0, SYST_CSR = 5; /* the processor clock, no interrupt */
    calibration = known_loop();
    for (;;) {
        uint32_t read[3] = {(uint32_t)input, (uint32_t)image, 784}, start, sp, *low;
        const uint8_t pattern = (digits & 1) ? 0x55 : 0xAA;
        int digit;
        if (semihost(0x06, read) != 0) break; /* fewer than 784 bytes left */
        sp = stack_pointer();
        paint(&_ebss, (uint32_t *)(sp - 32), PAINT);
        paint(arena, arena + sizeof arena / 4, pattern * 0x01010101u);
        start = ticks();
        digit = tinycnn_predict(image, arena, logits);
        total += (start - ticks()) & 0xFFFFFFu;
        for (low = &_ebss; *low == PAINT; low++) continue;
        if (sp - (uint32_t)low > stack) stack = sp - (uint32_t)low;
        for (i = sizeof arena; i > touched; i--)
            if (((const uint8_t *)arena)[i - 1] != pattern) { touched = i; break; }
        print_int(digit);
        for (i = 0; i < 10; i++) { print(" "); print_int(logits[i]); }
        print("\\n");
        digits++;
    }
    print("# digits "); print_int((int32_t)digits);
    print("\\n# ticks "); print_int((int32_t)total);
    print("\\n# calibration_ticks_for_200000_instructions "); print_int((int32_t)calibration);
    print("\\n# stack_bytes "); print_int((int32_t)stack);
    print("\\n# arena_bytes_written "); print_int((int32_t)touched);
    print("\\n# arena_bytes_stated "); print_int(TINYCNN_ARENA_BYTES);
    print("\\n");
    return 0;
}
"""

LINKER = """/* {board}: flash at 0x00000000, RAM at 0x20000000 ({ram_kib} KiB; the stack at its top) */
MEMORY {{
    FLASH (rx) : ORIGIN = 0x00000000, LENGTH = {flash_kib}K
    RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = {ram_kib}K
}}
ENTRY(reset_handler)
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {{
    .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); }} > FLASH
    .data : {{ _sdata = .; *(.data*) . = ALIGN(4); _edata = .; }} > RAM AT > FLASH
    _sidata = LOADADDR(.data);
    .bss (NOLOAD) : {{ _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; }} > RAM
    /DISCARD/ : {{ *(.ARM.exidx*) *(.comment) }}
}}
"""

MAKEFILE = """# {model} on {board} ({cpu}): `make` builds firmware.elf, `make run` classifies digits.bin in QEMU.
CC      = arm-none-eabi-gcc
CFLAGS  = -mcpu={cpu} -mthumb -masm-syntax-unified -Os -std=c99 -Wall -Wextra -Werror -ffreestanding -ffunction-sections -fdata-sections
LDFLAGS = -nostdlib -T board.ld -Wl,--gc-sections
QEMU    = qemu-system-arm -M {machine} -nographic -monitor none -serial none -icount shift=0 \\
          -semihosting-config enable=on,target=native -kernel firmware.elf

firmware.elf: main.c startup.c tinycnn_model.o board.ld
\t$(CC) $(CFLAGS) -fno-tree-loop-distribute-patterns $(LDFLAGS) main.c startup.c tinycnn_model.o -lgcc -o $@

tinycnn_model.o: tinycnn_model.c tinycnn_model.h
\t$(CC) $(CFLAGS) -c tinycnn_model.c -o $@

run: firmware.elf digits.bin
\t$(QEMU)

.PHONY: run
"""
