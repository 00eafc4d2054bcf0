// kernels/emu_rt.h: the emulated device's runtime state (fibers, warps, blocks, the runner of a
// launch), shared by emu_rt.cpp (scheduling, barriers, launches) and emu_warp.cpp (the warp
// collectives). Internal to the emulator: kernels include emu.h alone.
#pragma once
#include "emu.h"

#include <sys/mman.h>

#include <string>
#include <vector>

#if defined(__SANITIZE_THREAD__)
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#define TSAN(x) x
#else
#define TSAN(x)
#endif

#include "emu_ctx.h"  // Context (the switch itself is compiled into emu_rt.cpp alone)

namespace kiln_emu::rt {

constexpr size_t kStack = 256 * 1024;  // per fiber; a guard page below catches overflow
enum State : int { RUNNABLE, WAIT_BLOCK, WAIT_WARP, WAIT_SPIN, WAIT_CLUSTER, DONE };

// Relaxed atomics for the scheduler's bookkeeping: fibers never run in parallel, but under
// ThreadSanitizer each fiber is a thread of its own.
template <class T> struct R {
    std::atomic<T> v{};
    operator T() const { return v.load(std::memory_order_relaxed); }
    R& operator=(T x) { v.store(x, std::memory_order_relaxed); return *this; }
};

struct Copy { void* dst; const void* src; bool valid; unsigned group; };
// One issued warpgroup MMA of this thread: its accumulators and operands (descriptors).
// rs >= 0: A from registers, the warpgroup's rs-th such MMA (Runner::rs_regs).
struct Wgmma { float* d; int n; uint64_t da, db; int ta, tb; const char* window; unsigned group; int rs; };

struct Fiber {
    ThreadCtx t;  // first: what the kernel sees through threadIdx
    Context ctx;
    R<int> state;
    std::vector<Copy> copies;  // cp.async copies not yet waited for
    unsigned open_group = 0;   // the group new copies join; committed groups are below it
    std::vector<Wgmma> mmas;   // warpgroup MMAs not yet waited for
    unsigned mma_group = 0;    // the group new MMAs join
    unsigned rs_issued = 0;    // register-A MMAs issued (their index in the warpgroup's table)
    void* tsan = nullptr;
};

// One lane's side of a warp collective: its inputs, then the outputs the last lane wrote for it.
struct Slot {
    uint64_t v;
    const void* p;
    unsigned a[4], b[2];
    uint64_t out[4];
};
enum Op { OP_SYNC, OP_EXCHANGE, OP_BALLOT, OP_LDMATRIX, OP_MMA };

struct Warp {
    R<unsigned> live, arrived, want;
    R<unsigned> gen;
    R<int> op, num;
    R<bool> trans;
    Slot slot[2][32];  // double-buffered by generation parity
    int sync[2];       // ThreadSanitizer sync objects, one per generation parity
};

struct Block {
    R<int> live, arrived;
    R<unsigned> gen;
    int sync[2];
};

struct Runner {  // one per concurrent launch
    Context sched;
    std::vector<char*> stacks;
    std::vector<Fiber> fibers;
    Warp warps[64];     // a cluster's blocks one after another (t.warp counts across them)
    Block blocks[2];    // __syncthreads of each block of the cluster
    Block cluster;      // barrier.cluster over all of them
    unsigned cluster_size = 1;  // blocks a cluster (1 or 2)
    unsigned smem = 0;          // dynamic shared bytes the launch asked for
    // Register-A wgmma operands of each warpgroup (index block * 8 + warpgroup): for its i-th such
    // MMA, words [512 i, 512 i + 512) (4 a thread) and how many threads have put theirs.
    std::vector<uint32_t> rs_regs[16];
    std::vector<unsigned> rs_count[16];
    const Entry* kernel = nullptr;
    void** params = nullptr;
    bool eager_copies = false;  // cp.async and TMA land at issue (reverse launches), else at their wait
    unsigned long spins_done = 0;  // mbarrier waits that succeeded: progress a deadlock check counts
    std::string error;
    R<void*> tsan_sched;  // atomic: a finished fiber reads it after its last release
    int block_done;  // ThreadSanitizer sync object: a block's fibers happen before the next block's
    ~Runner() {
        for (char* s : stacks) munmap(s - 4096, kStack + 4096);
    }
};
extern thread_local std::atomic<Runner*> t_runner;  // the runner of the launch running on this OS thread
inline Runner& runner() { return *t_runner.load(std::memory_order_relaxed); }
inline Fiber* me() { return reinterpret_cast<Fiber*>(self()); }
// Hand control back to the scheduler loop (the fiber resumes where it left off).
void yield_to_scheduler(Fiber* f, Runner& r);
// Release a warp barrier whose lanes have all arrived or exited (emu_warp.cpp).
void release_warp(Warp& w, Fiber* fibers, unsigned warp_index, unsigned skip_lane);

}  // namespace kiln_emu::rt
