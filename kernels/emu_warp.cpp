// kernels/emu_warp.cpp: the emulated device's warp collectives (emu.h): shuffles, votes,
// __syncwarp, ldmatrix and mma.sync. Each is completed by the last lane of the warp to arrive, for
// every participating lane at once, following the PTX ISA fragment layouts; the lanes before it
// wait (WAIT_WARP) in the scheduler of emu_rt.cpp.
#include "emu_rt.h"

namespace kiln_emu {
using namespace rt;
namespace {

// ---- warp collectives -------------------------------------------------------------------------
uint16_t half_at(const void* row, unsigned col) { return static_cast<const uint16_t*>(row)[col]; }
float bf16_at(unsigned reg, unsigned half) { return std::bit_cast<float>(((reg >> (16 * half)) & 0xffffu) << 16); }

// Run by the last lane to arrive: every participating lane's outputs, from every lane's inputs.
void complete(Warp& w, Slot* s, unsigned lanes) {
    switch (int(w.op)) {
    case OP_LDMATRIX: {
        // Lane l supplied the address of row l%8 of matrix l/8. Lane l receives in register j
        // the pair (row l/4, cols 2(l%4), 2(l%4)+1) of matrix j; .trans gives the pair at
        // (rows 2(l%4), 2(l%4)+1, col l/4), i.e. the same position of the transposed matrix.
        for (unsigned l = 0; l < 32; l++) {
            if (!(lanes >> l & 1)) continue;
            for (int j = 0; j < int(w.num); j++) {
                unsigned lo, hi;
                if (!w.trans) {
                    const void* row = s[j * 8 + l / 4].p;
                    lo = half_at(row, 2 * (l % 4));
                    hi = half_at(row, 2 * (l % 4) + 1);
                } else {
                    lo = half_at(s[j * 8 + 2 * (l % 4)].p, l / 4);
                    hi = half_at(s[j * 8 + 2 * (l % 4) + 1].p, l / 4);
                }
                s[l].out[j] = lo | (hi << 16);
            }
        }
        break;
    }
    case OP_MMA: {
        // m16n8k16 .row.col bf16 (PTX ISA, "Matrix Fragments for mma.m16n8k16"), g = lane>>2,
        // t = lane&3. A: reg0 = row g, cols 2t,2t+1; reg1 = row g+8, same cols; reg2 = row g,
        // cols 2t+8,2t+9; reg3 = row g+8, cols 2t+8,2t+9. B: reg0 = rows 2t,2t+1 of col g;
        // reg1 = rows 2t+8,2t+9. C/D: c0,c1 = row g, cols 2t,2t+1; c2,c3 = row g+8.
        auto A = [&](unsigned row, unsigned k) {
            unsigned lane = (row % 8) * 4 + (k % 8) / 2, reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
            return bf16_at(s[lane].a[reg], k & 1);
        };
        auto B = [&](unsigned k, unsigned col) {
            unsigned lane = col * 4 + (k % 8) / 2, reg = k >= 8 ? 1 : 0;
            return bf16_at(s[lane].b[reg], k & 1);
        };
        for (unsigned l = 0; l < 32; l++) {
            unsigned g = l >> 2, t = l & 3;
            for (unsigned i = 0; i < 4; i++) {
                unsigned row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
                float acc = 0.f;
                for (unsigned k = 0; k < 16; k++) acc += A(row, k) * B(k, col);
                s[l].out[i] = std::bit_cast<uint32_t>(acc);
            }
        }
        break;
    }
    case OP_BALLOT: {
        unsigned bits = 0;
        for (unsigned l = 0; l < 32; l++)
            if ((lanes >> l & 1) && s[l].v) bits |= 1u << l;
        for (unsigned l = 0; l < 32; l++) s[l].out[0] = bits;
        break;
    }
    default: break;  // OP_SYNC; OP_EXCHANGE reads the slots directly
    }
}


// Arrive at a warp collective over `mask`; returns this lane's slot of the completed generation.
Slot& warp_collective(unsigned mask, Op op, const Slot& in, int num = 0, bool trans = false) {
    Runner& r = runner();
    Fiber* f = me();
    Warp& w = r.warps[f->t.warp];
    unsigned lane = f->t.lane, g = w.gen;
    if (w.arrived == 0) {
        w.want = mask;
        w.op = op;
        w.num = num;
        w.trans = trans;
    } else if (unsigned(w.want) != mask || int(w.op) != op) {
        trap("lanes of one warp reached different warp-collective operations (divergent __shfl_sync/ldmatrix/mma?)");
    }
    Slot& s = w.slot[g & 1][lane];
    s.v = in.v;
    s.p = in.p;
    std::memcpy(s.a, in.a, sizeof s.a);
    std::memcpy(s.b, in.b, sizeof s.b);
    w.arrived = w.arrived | (1u << lane);
    TSAN(__tsan_release(&w.sync[g & 1]));
    unsigned need = mask & w.live;
    if ((w.arrived & need) == need) {
        TSAN(__tsan_acquire(&w.sync[g & 1]));
        release_warp(w, r.fibers.data(), f->t.warp, lane);
    } else {
        f->state = WAIT_WARP;
        yield_to_scheduler(f, r);
    }
    TSAN(__tsan_acquire(&w.sync[g & 1]));
    return s;
}

}  // namespace

// Release a warp barrier whose lanes have all arrived (or exited): the caller is one of them.
void rt::release_warp(Warp& w, Fiber* fibers, unsigned warp_index, unsigned skip_lane) {
    unsigned g = w.gen;
    complete(w, w.slot[g & 1], w.want & w.live);
    TSAN(__tsan_release(&w.sync[g & 1]));
    unsigned waiting = w.arrived;
    w.arrived = 0;
    w.gen = g + 1;
    for (unsigned l = 0; l < 32; l++)
        if ((waiting >> l & 1) && l != skip_lane) fibers[warp_index * 32 + l].state = RUNNABLE;
}

void syncwarp(unsigned mask) { warp_collective(mask, OP_SYNC, Slot{}); }

uint64_t exchange(unsigned mask, uint64_t v, unsigned src) {
    Slot in{};
    in.v = v;
    Slot& s = warp_collective(mask, OP_EXCHANGE, in);
    return (&s)[int(src) - int(self()->lane)].v;  // the slot of lane `src`, same generation
}

unsigned ballot(unsigned mask, bool pred) {
    Slot in{};
    in.v = pred;
    return unsigned(warp_collective(mask, OP_BALLOT, in).out[0]);
}

unsigned activemask() { return runner().warps[self()->warp].live; }

void ldmatrix(unsigned* reg, int num, bool trans, const void* row) {
    Slot in{};
    in.p = row;
    Slot& s = warp_collective(0xffffffffu, OP_LDMATRIX, in, num, trans);
    for (int j = 0; j < num; j++) reg[j] = unsigned(s.out[j]);
}

void mma_bf16_16816(float d[4], const unsigned a[4], const unsigned b[2]) {
    Slot in{};
    std::memcpy(in.a, a, sizeof in.a);
    std::memcpy(in.b, b, sizeof in.b);
    Slot& s = warp_collective(0xffffffffu, OP_MMA, in);
    for (int i = 0; i < 4; i++) d[i] += std::bit_cast<float>(uint32_t(s.out[i]));
}

}  // namespace kiln_emu
