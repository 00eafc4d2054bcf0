// kernels/emu_ctx.h: fiber context switching for the emulated device. Every user of emu_rt.h sees
// the Context type; the switch itself (an assembly function) is compiled where KILN_EMU_CTX_IMPL is
// defined: emu_rt.cpp alone.
#pragma once
#include <ucontext.h>

#include <cstddef>
#include <cstdint>

// ---- fiber contexts ------------------------------------------------------------------------------
// On x86-64 a switch saves the callee-saved registers and the FP control words on the old stack and
// loads them from the new one (tens of nanoseconds); elsewhere ucontext (swapcontext makes a
// system call per switch, several times slower).
#if defined(__x86_64__) && !defined(KILN_EMU_UCONTEXT)
struct Context { void* sp = nullptr; };
#ifdef KILN_EMU_CTX_IMPL
extern "C" void kiln_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl kiln_emu_switch
    .type kiln_emu_switch, @function
kiln_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size kiln_emu_switch, .-kiln_emu_switch
)");
static void ctx_switch(Context& save, Context& load) { kiln_emu_switch(&save.sp, load.sp); }
// A stack that kiln_emu_switch "returns" into `entry` from, as if entry had been called.
static void ctx_make(Context& c, char* stack, size_t size, void (*entry)()) {
    uint64_t* top = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t(15));
    top[-1] = 0;                                    // entry's own return address: ends backtraces
    top[-2] = reinterpret_cast<uint64_t>(entry);    // where the switch returns to
    for (int i = 3; i <= 8; i++) top[-i] = 0;       // rbp rbx r12 r13 r14 r15
    uint32_t* csr = reinterpret_cast<uint32_t*>(&top[-9]);
    csr[0] = 0x1F80;  // MXCSR default
    csr[1] = 0x037F;  // x87 control word default
    c.sp = &top[-9];
}
#endif  // KILN_EMU_CTX_IMPL
#else
struct Context { ucontext_t uc; };
#ifdef KILN_EMU_CTX_IMPL
static void ctx_switch(Context& save, Context& load) { swapcontext(&save.uc, &load.uc); }
static void ctx_make(Context& c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
#endif  // KILN_EMU_CTX_IMPL
#endif
