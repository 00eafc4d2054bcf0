// kernels/emu_rt.cpp: the emulated CUDA device's launcher (see emu.h). One launch runs on the
// calling OS thread: blocks one after another; the threads of a block as fibers (ucontext) that
// run until they reach a barrier or a warp-collective operation, then hand control back to the
// scheduler loop here, which resumes the runnable fibers pass after pass. Every warp collective
// (shuffle, vote, __syncwarp, ldmatrix, mma) is completed by the last lane to arrive, for all lanes
// at once, as the hardware does it; a thread that returns counts as arrived at every later
// barrier. The order fibers run in alternates between launches (forward / reverse; KILN_EMU_ORDER
// = forward | reverse | alternate), so a race usually gives a wrong or changing result, and a
// cp.async copy lands at the latest moment in forward launches (its covering wait: a missing wait
// reads stale data) and at once in reverse ones (a stage refilled while still being read, e.g. by
// an unfinished warpgroup MMA, is overwritten early); the first half of a block's warps runs as far
// as it can before the rest (forward launches), or the second half before the first (reverse
// ones). A deadlock (threads waiting on a barrier the others never reach) is reported, not hung.
// Built with -fsanitize=thread (scripts/emu-tsan.sh), fiber switches and barriers are annotated so
// ThreadSanitizer sees each fiber as a thread and reports shared-memory races within a block.
#define KILN_EMU_CTX_IMPL  // this file holds the fiber switch (emu_ctx.h)
#include "emu_rt.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace kiln_emu {

thread_local std::atomic<ThreadCtx*> t_self{nullptr};
thread_local BlockCtx t_block;

namespace rt {
thread_local std::atomic<Runner*> t_runner{nullptr};
void yield_to_scheduler(Fiber* f, Runner& r) {
    TSAN(__tsan_switch_to_fiber(r.tsan_sched, 1));
    ctx_switch(f->ctx, r.sched);
}
}  // namespace rt
using namespace rt;

namespace {

// Launches of each kernel on this OS thread: the parity picks the order (and the cp.async model),
// so running the same kernel twice in a row (a parity test's determinism check) always runs it
// both ways, whatever other kernels (fills, casts) or other test threads launch in between.
thread_local std::unordered_map<const Entry*, unsigned long> t_launches;

// Runners (with their fiber stacks) are pooled across OS threads: one per concurrent launch.
std::mutex g_pool_mu;
std::vector<Runner*> g_pool;
Runner* take_runner() {
    std::lock_guard<std::mutex> g(g_pool_mu);
    if (g_pool.empty()) return new Runner();
    Runner* r = g_pool.back();
    g_pool.pop_back();
    return r;
}
void give_back(Runner* r) {
    std::lock_guard<std::mutex> g(g_pool_mu);
    g_pool.push_back(r);
}

// Release a block (or cluster) barrier: its waiters are the fibers in state `wait` of block
// `cta` (every block of the cluster for WAIT_CLUSTER).
void release_block(Block& b, Runner& r, int wait, unsigned cta) {
    unsigned g = b.gen;
    TSAN(__tsan_release(&b.sync[g & 1]));
    b.arrived = 0;
    b.gen = g + 1;
    for (Fiber& f : r.fibers)
        if (int(f.state) == wait && (wait == WAIT_CLUSTER || f.t.cta == cta)) f.state = RUNNABLE;
}

// Arrive at block barrier b (state WAIT_BLOCK) or the cluster's (WAIT_CLUSTER) and wait for the rest.
void barrier(Block& b, int wait) {
    Runner& r = runner();
    Fiber* f = me();
    unsigned g = b.gen;
    b.arrived = b.arrived + 1;
    TSAN(__tsan_release(&b.sync[g & 1]));
    if (b.arrived == b.live) {
        TSAN(__tsan_acquire(&b.sync[g & 1]));
        release_block(b, r, wait, f->t.cta);
    } else {
        f->state = wait;
        yield_to_scheduler(f, r);
    }
    TSAN(__tsan_acquire(&b.sync[g & 1]));
}

// A thread returned: it no longer holds up the warp's or the block's barrier.
void on_exit(Fiber* f) {
    Runner& r = runner();
    for (Copy& c : f->copies) c.valid ? (void)std::memcpy(c.dst, c.src, 16) : (void)std::memset(c.dst, 0, 16);
    f->copies.clear();
    Warp& w = r.warps[f->t.warp];
    w.live = w.live & ~(1u << f->t.lane);
    TSAN(__tsan_release(&w.sync[w.gen & 1]));
    unsigned need = w.want & w.live;
    if (w.arrived != 0 && (w.arrived & need) == need) release_warp(w, r.fibers.data(), f->t.warp, 32);
    for (int k = 0; k < 2; k++) {  // its block's barrier, then the cluster's
        Block& b = k == 0 ? r.blocks[f->t.cta] : r.cluster;
        b.live = b.live - 1;
        TSAN(__tsan_release(&b.sync[b.gen & 1]));
        if (b.arrived > 0 && b.arrived == b.live) release_block(b, r, k == 0 ? WAIT_BLOCK : WAIT_CLUSTER, f->t.cta);
    }
}

void fiber_main() {
    Fiber* f = me();
    Runner& r = runner();
    TSAN(__tsan_acquire(f));
    r.kernel->call(r.kernel->fn, r.params);
    if (!f->mmas.empty()) trap("a warpgroup MMA was still in flight when the thread exited (missing wgmma_wait<0>)");
    on_exit(f);
    f->state = DONE;
    TSAN(__tsan_release(&r.block_done));  // last: the scheduler's acquire covers all of this fiber
    yield_to_scheduler(f, r);
    std::abort();  // a finished fiber is never resumed
}

char* new_stack() {
    void* p = mmap(nullptr, kStack + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mprotect(p, 4096, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
    return static_cast<char*>(p) + 4096;
}

void resume(Runner& r, Fiber& f) {
    t_self.store(&f.t, std::memory_order_relaxed);
    TSAN(__tsan_switch_to_fiber(f.tsan, 1));
    ctx_switch(r.sched, f.ctx);
}

const char* state_name(int s) {
    return s == WAIT_BLOCK ? "__syncthreads" : s == WAIT_WARP ? "a warp collective" : s == WAIT_SPIN ? "a spin-wait (mbarrier or flag)"
           : s == WAIT_CLUSTER ? "barrier.cluster" : "-";
}

// Run one block to completion; false (and r.error) on a deadlock or a trap.
bool run_block(Runner& r, unsigned n, bool reverse) {
    for (unsigned i = 0; i < n; i++) {
        Fiber& f = r.fibers[i];
        f.state = RUNNABLE;
        f.copies.clear();
        f.open_group = 0;
        f.mmas.clear();
        f.mma_group = 0;
        f.rs_issued = 0;
        ctx_make(f.ctx, r.stacks[i], kStack, fiber_main);
        TSAN(f.tsan = __tsan_create_fiber(0));
        TSAN(__tsan_release(&f));
    }
    async_block_start();
    for (unsigned w = 0; w < 16; w++) {
        r.rs_regs[w].clear();
        r.rs_count[w].clear();
    }
    unsigned done = 0;
    // Run fiber k of this pass's order; whether it made progress (a spinning fiber that spins on
    // has not: all of them doing so is a deadlock).
    auto step = [&](unsigned k) {
        Fiber& f = r.fibers[reverse ? n - 1 - k : k];
        const int was = f.state;
        if (was != RUNNABLE && was != WAIT_SPIN) return false;
        const unsigned long spins = r.spins_done;
        resume(r, f);
        if (int(f.state) == DONE) done++;
        return was == RUNNABLE || r.spins_done != spins || int(f.state) != WAIT_SPIN;
    };
    // In a cluster, the block that comes first in this launch's order runs as far as it can before
    // the other gets a turn, so a block that writes into its peer's stages before the peer is done
    // with them (a missing cross-block release) overwrites data the peer still reads.
    // Outside clusters, the first half of the block's warps leads the same way in forward launches
    // and the second half in reverse ones: warps (a warpgroup) that rewrite shared memory their
    // siblings still read (a missing __syncthreads between them) overwrite it before the siblings
    // get there, whichever of them it is.
    const unsigned half = (n / 2) & ~31u;  // (whole warps)
    const unsigned lead = r.cluster_size == 2 ? n / 2 : half == 0 ? 0 : reverse ? n - half : half;
    while (done < n && r.error.empty()) {
        bool progressed = false;
        for (bool more = lead > 0; more && r.error.empty();) {
            more = false;
            for (unsigned k = 0; k < lead && r.error.empty(); k++) more |= step(k);
            progressed |= more;
        }
        for (unsigned k = 0; k < n && r.error.empty(); k++) progressed |= step(k);
        if (!progressed && done < n && r.error.empty()) {
            std::string waits;
            for (unsigned i = 0; i < n && waits.size() < 400; i++)
                if (int(r.fibers[i].state) != DONE)
                    waits += " t" + std::to_string(i) + ":" + state_name(r.fibers[i].state);
            r.error = "deadlock: " + std::to_string(n - done) + " of " + std::to_string(n) +
                      " threads wait forever (a barrier some threads never reach) --" + waits;
        }
    }
    TSAN(__tsan_acquire(&r.block_done));
    TSAN(for (unsigned i = 0; i < n; i++) __tsan_destroy_fiber(r.fibers[i].tsan));
    if (const char* e = async_block_end(); e && r.error.empty()) r.error = e;
    return r.error.empty();
}

}  // namespace

// ---- the operations emu.h declares --------------------------------------------------------------
void syncthreads() { barrier(runner().blocks[self()->cta], WAIT_BLOCK); }

// ---- clusters (of 1 or 2 blocks along x) ------------------------------------------------------
void cluster_sync() { barrier(runner().cluster, WAIT_CLUSTER); }
unsigned cluster_rank() { return self()->cta; }
// The second block's dynamic shared memory: at the same address modulo 1024 as the first's, as on a
// GPU (where every block's window starts at the same address), so a kernel that aligns its tiles
// from its own base gets the same offsets in both (TMA multicast writes at one offset in each).
unsigned char* peer_dsmem() {
    struct Buf {
        unsigned char* raw = static_cast<unsigned char*>(std::aligned_alloc(1024, KILN_EMU_DSMEM_BYTES + 1024));
        ~Buf() { std::free(raw); }
    };
    static thread_local Buf buf;
    return buf.raw + (reinterpret_cast<uintptr_t>(t_dsmem) & 1023);
}
// Whether [p, p + bytes) lies in the dynamic shared memory the launch asked for, in either block.
// The dynamic shared buffer of each block of the running launch's cluster.
static unsigned char* dyn_base(unsigned cta) { return cta == 0 ? t_dsmem : peer_dsmem(); }
bool in_dyn_smem(const void* p, size_t bytes) {
    const unsigned char* q = static_cast<const unsigned char*>(p);
    for (unsigned c = 0; c < runner().cluster_size; c++)
        if (q >= dyn_base(c) && q + bytes <= dyn_base(c) + runner().smem) return true;
    return false;
}
bool past_dyn_smem(const void* p, size_t bytes) {
    const unsigned char* q = static_cast<const unsigned char*>(p);
    for (unsigned c = 0; c < runner().cluster_size; c++)
        if (q >= dyn_base(c) && q < dyn_base(c) + KILN_EMU_DSMEM_BYTES) return q + bytes > dyn_base(c) + runner().smem;
    return false;  // static __shared__ memory (or not shared memory at all)
}
void* cluster_map(const void* smem, unsigned cta) {
    if (cta >= runner().cluster_size) trap("mapa: no such block in the cluster");
    const unsigned char* p = static_cast<const unsigned char*>(smem);
    for (unsigned c = 0; c < runner().cluster_size; c++)
        if (p >= dyn_base(c) && p < dyn_base(c) + KILN_EMU_DSMEM_BYTES) return dyn_base(cta) + (p - dyn_base(c));
    trap("mapa: a cluster kernel's shared address must lie in its dynamic shared memory");
}

void spin(bool done) {
    Runner& r = runner();
    Fiber* f = me();
    if (done) {
        f->state = RUNNABLE;
        r.spins_done = r.spins_done + 1;
        return;
    }
    f->state = WAIT_SPIN;
    yield_to_scheduler(f, r);
}
bool copies_land_at_issue() { return runner().eager_copies; }

// cp.async: in forward launches the copy lands when a later cp_async_wait covers its group, not
// before, so a missing wait reads stale shared memory; in reverse launches it lands at once.
void cp_async16(void* smem, const void* gmem, bool valid) {
    if (past_dyn_smem(smem, 16)) trap("cp.async: a write past the dynamic shared memory the launch asked for");
    if (runner().eager_copies) {
        valid ? (void)std::memcpy(smem, gmem, 16) : (void)std::memset(smem, 0, 16);
        return;
    }
    Fiber* f = me();
    f->copies.push_back(Copy{smem, gmem, valid, f->open_group});
}
void cp_async_commit() { me()->open_group++; }
void cp_async_wait(int n) {
    Fiber* f = me();
    unsigned committed = f->open_group, keep_from = committed > unsigned(n) ? committed - n : 0;
    size_t k = 0;
    for (; k < f->copies.size() && f->copies[k].group < keep_from; k++) {
        Copy& c = f->copies[k];
        if (c.valid) std::memcpy(c.dst, c.src, 16);
        else std::memset(c.dst, 0, 16);
    }
    f->copies.erase(f->copies.begin(), f->copies.begin() + k);
}

// ---- warpgroup MMA (wgmma, sm_90a) ------------------------------------------------------------
// Each thread computes its own fragment of D (emu_async.cpp, wgmma_fragment) when a later
// wgmma_wait covers the MMA's group, so a stage refilled before its MMA was waited for reads the
// new data, as it can on a GPU.
void wgmma_bf16(float* d, int n, uint64_t da, uint64_t db, int tnsp_a, int tnsp_b, const void* window) {
    if ((self()->tid.x / 128 + 1) * 128 > t_block.dim.x || t_block.dim.y != 1 || t_block.dim.z != 1) trap("wgmma needs a 1-D block and a whole warpgroup");
    Fiber* f = me();
    f->mmas.push_back(Wgmma{d, n, da, db, tnsp_a, tnsp_b, static_cast<const char*>(window), f->mma_group, -1});
}
void wgmma_bf16_rs(float* d, int n, const unsigned a[4], uint64_t db, int tnsp_b, const void* window) {
    if ((self()->tid.x / 128 + 1) * 128 > t_block.dim.x || t_block.dim.y != 1 || t_block.dim.z != 1) trap("wgmma needs a 1-D block and a whole warpgroup");
    Runner& r = runner();
    Fiber* f = me();
    const unsigned wg = f->t.cta * 8 + f->t.tid.x / 128, i = f->rs_issued++;
    std::vector<uint32_t>& regs = r.rs_regs[wg];
    std::vector<unsigned>& count = r.rs_count[wg];
    if (count.size() <= i) {
        count.resize(i + 1, 0);
        regs.resize(512 * (i + 1), 0);
    }
    std::memcpy(&regs[512 * i + 4 * (f->t.tid.x % 128)], a, 16);
    count[i]++;
    while (count[i] < 128) spin(false);  // the rest of the warpgroup issues it too
    spin(true);
    f->mmas.push_back(Wgmma{d, n, 0, db, 0, tnsp_b, static_cast<const char*>(window), f->mma_group, int(i)});
}
void wgmma_commit() { me()->mma_group++; }
void wgmma_wait(int n) {
    Fiber* f = me();
    unsigned keep_from = f->mma_group > unsigned(n) ? f->mma_group - n : 0;
    size_t k = 0;
    for (; k < f->mmas.size() && f->mmas[k].group < keep_from; k++) {
        const Wgmma& m = f->mmas[k];
        const uint32_t* a = m.rs < 0 ? nullptr : &runner().rs_regs[f->t.cta * 8 + f->t.tid.x / 128][512 * m.rs];
        wgmma_fragment(m.d, m.n, m.da, m.db, m.ta, m.tb, m.window, f->t.tid.x % 128, a);
    }
    f->mmas.erase(f->mmas.begin(), f->mmas.begin() + k);
}

void trap(const char* why) {
    Runner& r = runner();
    Fiber* f = me();
    ThreadCtx& t = f->t;
    r.error = std::string(why) + " (thread " + std::to_string(t.tid.x) + "," + std::to_string(t.tid.y) + "," +
              std::to_string(t.tid.z) + " of block " + std::to_string(t.block.x) + "," +
              std::to_string(t.block.y) + "," + std::to_string(t.block.z) + ")";
    f->state = DONE;
    TSAN(__tsan_release(&r.block_done));
    yield_to_scheduler(f, r);
    std::abort();
}

}  // namespace kiln_emu

// ---- the C entry points Rust calls (src/backend/cuda/emu.rs) ------------------------------------
struct KilnEmuFamily {
    const char* name;
    const kiln_emu::Entry* (*find)(const char* kernel);
};
extern "C" const KilnEmuFamily kiln_emu_families[];  // generated by build.rs
extern "C" const unsigned kiln_emu_nfamilies;

static const kiln_emu::Entry* find(const char* family, const char* kernel) {
    for (unsigned i = 0; i < kiln_emu_nfamilies; i++)
        if (!std::strcmp(kiln_emu_families[i].name, family)) return kiln_emu_families[i].find(kernel);
    return nullptr;
}

extern "C" int kiln_emu_has(const char* family, const char* kernel) { return find(family, kernel) != nullptr; }

static int fail(char* err, size_t len, const std::string& msg) {
    std::snprintf(err, len, "%s", msg.c_str());
    return 1;
}

static int run_launch(kiln_emu::Runner& r, const kiln_emu::Entry* e, const char* kernel, const unsigned grid[3],
                      const unsigned block[3], unsigned cluster, unsigned smem, void** params, char* err, size_t errlen);

// Launch `kernel` of `family` over grid x block threads with `smem` bytes of dynamic shared memory,
// in clusters of `cluster` (1 or 2) blocks along x; params[i] points at the value of parameter i,
// sizes[i] is its size in bytes. 0 on success, else 1 with a message in err.
extern "C" int kiln_emu_launch(const char* family, const char* kernel, const unsigned grid[3], const unsigned block[3],
                               unsigned smem, unsigned cluster, void** params, const unsigned* sizes, unsigned nparams,
                               char* err, size_t errlen) {
    using namespace kiln_emu;
    const Entry* e = find(family, kernel);
    if (!e) return fail(err, errlen, std::string("no kernel `") + kernel + "` in kernels/" + family + ".cu");
    if (nparams != e->nparams)
        return fail(err, errlen, std::string(kernel) + " takes " + std::to_string(e->nparams) + " parameters, the launch passed " + std::to_string(nparams));
    for (unsigned i = 0; i < nparams; i++)
        if (sizes[i] != e->sizes[i] && !(sizes[i] == 128 && e->sizes[i] <= 128))  // Arg::Words: a struct by value
            return fail(err, errlen, std::string(kernel) + ": parameter " + std::to_string(i) + " is " + std::to_string(e->sizes[i]) +
                                         " bytes, the launch passed " + std::to_string(sizes[i]) + " (Arg::I32/U32/F32 are 4, U64/Ptr 8)");
    unsigned n = block[0] * block[1] * block[2];
    if (n == 0 || n > 1024 || block[2] > 64)
        return fail(err, errlen, std::string(kernel) + ": invalid block " + std::to_string(block[0]) + "x" + std::to_string(block[1]) + "x" + std::to_string(block[2]));
    if (grid[1] > 65535 || grid[2] > 65535) return fail(err, errlen, std::string(kernel) + ": grid y/z above 65535");
    if ((cluster != 1 && cluster != 2) || grid[0] % cluster != 0)
        return fail(err, errlen, std::string(kernel) + ": clusters of " + std::to_string(cluster) + " blocks over a grid of " +
                                     std::to_string(grid[0]) + " (the emulator runs clusters of 1 or 2 dividing grid x)");
    if (smem > KILN_EMU_DSMEM_BYTES)
        return fail(err, errlen, std::string(kernel) + ": " + std::to_string(smem) + " bytes of dynamic shared memory (the emulator has " + std::to_string(KILN_EMU_DSMEM_BYTES) + ")");

    Runner* r = take_runner();
    t_runner.store(r, std::memory_order_relaxed);
    int rc = run_launch(*r, e, kernel, grid, block, cluster, smem, params, err, errlen);
    if (rc == 0) give_back(r);
    else delete r;  // a failed launch abandons its fibers mid-kernel: never reuse their state
    t_runner.store(nullptr, std::memory_order_relaxed);
    t_self.store(nullptr);
    return rc;
}

// The blocks of a cluster run together: fibers [c * n, (c + 1) * n) are block c of the cluster,
// its warps numbered after those of the blocks before it.
static int run_launch(kiln_emu::Runner& r, const kiln_emu::Entry* e, const char* kernel, const unsigned grid[3],
                      const unsigned block[3], unsigned cluster, unsigned smem, void** params, char* err, size_t errlen) {
    using namespace kiln_emu;
    const unsigned n = block[0] * block[1] * block[2], wpb = (n + 31) / 32, all = n * cluster;
    while (r.stacks.size() < all) {
        char* s = new_stack();
        if (!s) return fail(err, errlen, "could not map a fiber stack");
        r.stacks.push_back(s);
    }
    if (r.fibers.size() < all) r.fibers = std::vector<Fiber>(all);
    for (unsigned i = 0; i < all; i++) {
        ThreadCtx& t = r.fibers[i].t;
        const unsigned c = i / n, j = i % n;
        t.tid = uint3{j % block[0], (j / block[0]) % block[1], j / (block[0] * block[1])};
        t.lane = j % 32;
        t.warp = c * wpb + j / 32;
        t.cta = c;
    }
    r.cluster_size = cluster;
    r.smem = smem;
    static const char* order = std::getenv("KILN_EMU_ORDER");
    unsigned long launch = t_launches[e]++;
    bool reverse = order && !std::strcmp(order, "reverse") ? true
                   : order && !std::strcmp(order, "forward") ? false
                                                              : (launch & 1);
    r.kernel = e;
    r.params = params;
    r.eager_copies = reverse;
    r.error.clear();
    TSAN(r.tsan_sched = __tsan_get_current_fiber());
    t_block.dim = dim3{block[0], block[1], block[2]};
    t_block.grid = dim3{grid[0], grid[1], grid[2]};
    for (unsigned bz = 0; bz < grid[2]; bz++)
        for (unsigned by = 0; by < grid[1]; by++)
            for (unsigned bx = 0; bx < grid[0]; bx += cluster) {
                for (unsigned i = 0; i < all; i++) r.fibers[i].t.block = uint3{bx + i / n, by, bz};
                for (unsigned w = 0; w < wpb * cluster; w++) {
                    const unsigned first = (w % wpb) * 32;  // its first thread within its block
                    Warp& wp = r.warps[w];
                    wp.live = (n - first >= 32) ? 0xffffffffu : (1u << (n - first)) - 1;
                    wp.arrived = 0;
                    wp.gen = 0;
                }
                for (unsigned c = 0; c < 2; c++) {
                    Block& b = c == 0 ? r.blocks[0] : r.blocks[1];
                    b.live = c < cluster ? int(n) : 0;
                    b.arrived = 0;
                    b.gen = 0;
                }
                r.cluster.live = int(all);
                r.cluster.arrived = 0;
                r.cluster.gen = 0;
                if (!run_block(r, all, reverse))
                    return fail(err, errlen, std::string(kernel) + " block (" + std::to_string(bx) + "," + std::to_string(by) + "," +
                                                 std::to_string(bz) + "): " + r.error);
            }
    return 0;
}
