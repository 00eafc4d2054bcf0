// kernels/emu_async.cpp: Hopper's asynchronous units on the emulated device (emu.h): the operand
// reads of a warpgroup MMA, mbarriers, and TMA tensor loads. emu_rt.cpp runs the fibers; this file
// keeps the state those units have on a GPU (an mbarrier's phase, arrivals and byte count; the
// loads in flight) for the block running on this OS thread.
//
// A TMA load lands when its mbarrier is first waited on (forward launches: the latest moment, so
// a read without the wait sees stale shared memory) or at issue (reverse launches: a stage refilled
// while an unfinished MMA still reads it is overwritten early), as cp.async does in emu_rt.cpp.
#include "emu.h"

#include <string>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define TSAN(x) x
#else
#define TSAN(x)
#endif

namespace kiln_emu {

// ---- warpgroup MMA operands ---------------------------------------------------------------------
// Element (mn, k) of an operand tile (bf16, 128-byte swizzle; PTX ISA "Shared Memory Matrix
// Layout"): K-major rows of 64 k (128 B), 8-row groups `sbo` apart; MN-major rows of 64 mn per k,
// 8-k groups `sbo` apart, 64-mn blocks `lbo` apart. The swizzle XORs address bits [4, 7) with
// bits [7, 10) of the absolute address, as the hardware does.
static const uint16_t* wgmma_elem(uint64_t desc, const char* window, bool mn_major, int mn, int k) {
    if ((desc >> 62) != 1 || ((desc >> 49) & 7) != 0) trap("wgmma: only the 128-byte swizzle with base offset 0 is emulated");
    uintptr_t start = uintptr_t(window) + ((desc & 0x3FFF) << 4);
    uintptr_t lbo = ((desc >> 16) & 0x3FFF) << 4, sbo = ((desc >> 32) & 0x3FFF) << 4;
    uintptr_t a = mn_major ? start + (mn / 64) * lbo + (k / 8) * sbo + (k % 8) * 128 + (mn % 64) * 2
                           : start + (mn / 8) * sbo + (mn % 8) * 128 + k * 2;
    a ^= ((a >> 7) & 7) << 4;
    if (past_dyn_smem(reinterpret_cast<const void*>(a), 2)) trap("wgmma: an operand read past the dynamic shared memory the launch asked for");
    return reinterpret_cast<const uint16_t*>(a);
}
static float bf16_at(const uint16_t* p) { return std::bit_cast<float>(uint32_t(*p) << 16); }

// Element (row, k) of a register-A operand: lane (row % 8) * 4 + (k % 8) / 2 of warp row / 16, word
// (row % 16 >= 8) + 2 (k >= 8), half k % 2 (mma.m16n8k16's A fragment, one per warp).
static float reg_a(const uint32_t* a, int row, int k) {
    const int lane = (row % 8) * 4 + (k % 8) / 2, word = (row % 16 >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
    return std::bit_cast<float>(((a[4 * (32 * (row / 16) + lane) + word] >> (16 * (k & 1))) & 0xffffu) << 16);
}

void wgmma_fragment(float* d, int n, uint64_t da, uint64_t db, int ta, int tb, const char* window, unsigned t,
                    const uint32_t* a_regs) {
    const int w = int(t / 32), l = int(t % 32);
    for (int i = 0; i < n / 8; i++)
        for (int h = 0; h < 2; h++)
            for (int c = 0; c < 2; c++) {
                int row = 16 * w + l / 4 + 8 * h, col = 8 * i + 2 * (l % 4) + c;
                float s = 0.f;
                for (int k = 0; k < 16; k++)
                    s += (a_regs ? reg_a(a_regs, row, k) : bf16_at(wgmma_elem(da, window, ta, row, k))) *
                         bf16_at(wgmma_elem(db, window, tb, col, k));
                d[4 * i + 2 * h + c] += s;
            }
}

// ---- mbarriers and TMA loads --------------------------------------------------------------------
namespace {
// An mbarrier: arrivals still missing in this phase (of `count`), bytes still expected, phase parity.
struct Bar { unsigned count = 0, pending = 0, phase = 0; long tx = 0; };
struct Load { void* dst; TmaMap map; long c[3]; unsigned long long* bar; };
thread_local std::unordered_map<const unsigned long long*, Bar> t_bars;  // the running block's mbarriers
thread_local std::vector<Load> t_loads;                        // issued, not landed

Bar& bar_of(const unsigned long long* b) {
    auto it = t_bars.find(b);
    if (it == t_bars.end()) trap("mbarrier used before mbar_init");
    return it->second;
}
// A phase completes when every arrival is in and every expected byte has landed.
void settle(Bar& b) {
    if (b.pending == 0 && b.tx == 0) {
        b.phase ^= 1;
        b.pending = b.count;
    }
}
// Copy the box at coordinates c into shared memory (rows of box[0] elements, then box[1], box[2]);
// elements outside the tensor are zeros. Then its bytes count against the mbarrier.
void land(const Load& l) {
    const TmaMap& m = l.map;
    const uint64_t e = m.stride[0];
    uint64_t bytes = 0;
    for (uint64_t i2 = 0; i2 < m.box[2]; i2++)
        for (uint64_t i1 = 0; i1 < m.box[1]; i1++)
            for (uint64_t i0 = 0; i0 < m.box[0]; i0++, bytes += e) {
                uintptr_t a = uintptr_t(l.dst) + bytes;
                if (m.swizzle == 128) a ^= ((a >> 7) & 7) << 4;
                const long g[3] = {l.c[0] + long(i0), l.c[1] + long(i1), l.c[2] + long(i2)};
                bool in = true;
                for (int d = 0; d < 3; d++) in = in && g[d] >= 0 && uint64_t(g[d]) < m.dim[d];
                if (in) std::memcpy(reinterpret_cast<void*>(a), reinterpret_cast<const char*>(m.base) + g[0] * e + g[1] * m.stride[1] + g[2] * m.stride[2], e);
                else std::memset(reinterpret_cast<void*>(a), 0, e);
            }
    Bar& b = bar_of(l.bar);
    b.tx -= long(bytes);
    settle(b);
}
}  // namespace

void mbar_init(unsigned long long* bar, unsigned count) {
    if (count == 0 || count >= (1u << 20)) trap("mbar_init: the arrival count must be 1 .. 2^20 - 1");
    t_bars[bar] = Bar{count, count, 0, 0};
}

void mbar_arrive(unsigned long long* bar, unsigned tx_bytes) {
    Bar& b = bar_of(bar);
    if (b.pending == 0) trap("mbarrier: more arrivals than its count in one phase");
    TSAN(__tsan_release(bar));
    b.tx += long(tx_bytes);
    b.pending--;
    settle(b);
}

void mbar_wait(unsigned long long* bar, unsigned parity) {
    for (;;) {
        for (size_t i = 0; i < t_loads.size();) {  // this barrier's loads land now, in issue order
            if (t_loads[i].bar != bar) {
                i++;
                continue;
            }
            Load l = t_loads[i];
            t_loads.erase(t_loads.begin() + long(i));
            land(l);
        }
        if (bar_of(bar).phase != (parity & 1)) break;
        spin(false);
    }
    TSAN(__tsan_acquire(bar));
    spin(true);
}

void tma_load(void* smem, const TmaMap* map, int c0, int c1, int c2, unsigned long long* bar) {
    if (uintptr_t(smem) % (map->swizzle == 128 ? 1024 : 128) != 0) trap("TMA: the shared destination is misaligned (128 bytes; 1024 with the 128-byte swizzle)");
    if (map->swizzle == 128 && map->box[0] * map->stride[0] != 128) trap("TMA: the emulator's 128-byte swizzle needs 128-byte box rows");
    const size_t bytes = size_t(map->box[0]) * map->box[1] * map->box[2] * map->stride[0];
    // (kernels put TMA destinations in dynamic shared memory, so an overrun of the size the launch
    // asked for, which a GPU may not report, shows here)
    if (!in_dyn_smem(smem, bytes)) trap("TMA: the box runs past the dynamic shared memory the launch asked for");
    bar_of(bar);
    Load l{smem, *map, {c0, c1, c2}, bar};
    if (copies_land_at_issue()) land(l);
    else t_loads.push_back(l);
}

// The same box into the same shared offset of every block of the cluster in `mask`, each signalling
// its own mbarrier at bar's offset.
void tma_load_multicast(void* smem, const TmaMap* map, int c0, int c1, int c2, unsigned long long* bar, unsigned mask) {
    for (unsigned cta = 0; cta < 2; cta++)
        if (mask >> cta & 1)
            tma_load(cluster_map(smem, cta), map, c0, c1, c2, static_cast<unsigned long long*>(cluster_map(bar, cta)));
}

void async_block_start() {
    t_bars.clear();
    t_loads.clear();
}

const char* async_block_end() {
    return t_loads.empty() ? nullptr : "a TMA load was still in flight when the block ended (its mbarrier never waited on)";
}

}  // namespace kiln_emu
