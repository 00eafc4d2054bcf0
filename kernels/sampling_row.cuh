// kernels/sampling_row.cuh: the sampler's bit-exact pieces, shared by the entry kernels of
// sampling.cu (spliced in where sampling.cu includes it; see backend/cuda/kernels.rs HEADERS).
// Twin: src/sample/ (mod.rs gives the semantics, row.rs the passes); every function here mirrors
// row.rs step by step so that the CUDA and CPU samplers return the same token for the same
// (seed, row id, step).
//
// Bit-exactness with the CPU: the weights use the same hand-written exp (every f32 operation
// with an explicit _rn intrinsic, so nothing is fused into an FMA); the radix-select histograms
// add f32 weights that share one exponent per bucket into f64, which is exact in any order (at
// most 2^29 terms of 24 bits), so shared-memory atomics give the CPU's bucket sums bit for bit;
// every running sum that the CPU does sequentially (the bucket walk, the per-256-id block lane
// sums, the sums over blocks, the walk inside the chosen block) is done sequentially here too.
//
// sample_row, the multi-pass sampler of one row by one block (any parameters); its passes over
// the row (each reads V logits and recomputes the weights):
//   1. max, first bad index, (top-k) 12-bit histogram of logit keys
//   2-3. (top-k) 10-bit refinements -> the k-th largest logit x_k
//   4. block lane sums of the weights (mass) and (top-p) 12-bit histogram of weight bits
//   5-6. (top-p) 10-bit refinements -> the top-p weight threshold
//   7. (if a filter raised w_min) block lane sums of the survivors
//   8. the draw: sequential walk over block sums, then over the 256 ids of one block.

#define SAMPLE_THREADS 1024
#define SAMPLE_BLOCK 256          // ids per block of the two-level inverse CDF (row.rs BLOCK)
#define HIST_BINS 4096            // 12-bit first radix level
#define W_TINY __uint_as_float(1u) // smallest positive f32

// ---- Philox4x32-10 (src/rng.rs), counter [index_lo, index_hi, stream, tag], key = seed ----------
__device__ __forceinline__ void philox4x32_10(u32 c[4], u32 k0, u32 k1) {
    for (int r = 0; r < 10; r++) {
        if (r > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        u32 hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
        u32 hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
        u32 n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
    }
}
// sample::row_uniform: index (row << 32) | step, stream 0, tag 1; words 0, 1 -> 53 bits -> [0, 1).
__device__ __forceinline__ double row_uniform(u64 seed, u32 row, u32 step) {
    u32 c[4] = {step, row, 0u, 1u};
    philox4x32_10(c, (u32)seed, (u32)(seed >> 32));
    u64 bits = ((((u64)c[0]) << 32) | (u64)c[1]) >> 11;
    return (double)bits * (1.0 / 9007199254740992.0);
}

// ---- row.rs helpers ----------------------------------------------------------------------------
// exp_nonpos: e^z for z <= 0, 0 below -87; the CPU's exact sequence of f32 roundings.
__device__ __forceinline__ float exp_nonpos(float z) {
    const float MAGIC = __uint_as_float(0x4b400000u), LOG2E = __uint_as_float(0x3fb8aa3bu);
    const float LN2_HI = __uint_as_float(0x3f318000u), LN2_LO = __uint_as_float(0xb95e8083u);
    const float C6 = __uint_as_float(0x3e2aaaabu), C24 = __uint_as_float(0x3d2aaaabu);
    const float C120 = __uint_as_float(0x3c088889u), C720 = __uint_as_float(0x3ab60b61u);
    float zc = fmaxf(z, -87.f);
    float kf = __fadd_rn(__fmul_rn(zc, LOG2E), MAGIC);
    int n = (int)__float_as_uint(kf) - (int)__float_as_uint(MAGIC);
    float k = __fsub_rn(kf, MAGIC);
    float r = __fsub_rn(__fsub_rn(zc, __fmul_rn(k, LN2_HI)), __fmul_rn(k, LN2_LO));
    float p = __fadd_rn(C120, __fmul_rn(r, C720));
    p = __fadd_rn(C24, __fmul_rn(r, p));
    p = __fadd_rn(C6, __fmul_rn(r, p));
    p = __fadd_rn(0.5f, __fmul_rn(r, p));
    p = __fadd_rn(1.f, __fmul_rn(r, p));
    p = __fadd_rn(1.f, __fmul_rn(r, p));
    float scale = __uint_as_float(((u32)(n + 127)) << 23);
    return z < -87.f ? 0.f : __fmul_rn(p, scale);
}
// Order-preserving key of a non-NaN f32 (-0.0 == +0.0), and its inverse.
__device__ __forceinline__ u32 logit_key(float x) {
    u32 b = __float_as_uint(x);
    if (b == 0x80000000u) b = 0u;
    return (b >> 31) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_logit(u32 key) {
    return __uint_as_float((key >> 31) ? (key & 0x7fffffffu) : ~key);
}
// Tempered weight, 0 outside top-k (xk = -inf when top-k is off).
__device__ __forceinline__ float weight(float xi, float m, float t, float xk) {
    if (!(xi >= xk)) return 0.f;
    return exp_nonpos(__fdiv_rn(__fsub_rn(xi, m), t));
}

__device__ __forceinline__ u32 block_min_u32(u32 v, u32* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : 0xffffffffu;
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// radix_select's walk over one level's histogram, run by a whole warp (every lane computes the
// same sequential chain): from the top bucket down, skipping empty ones, stop at the first
// bucket where above + h >= target; if none, the lowest non-empty one with `above` reduced by
// its mass ("keep all"). Returns the digit, or -1 when every bucket is empty.
template <typename H>
__device__ int walk_down(const H* hist, int nb, double target, double& above) {
    int lane = threadIdx.x & 31, lowest = -1;
    double lowest_h = 0.0;
    for (int base = nb - 32; base >= 0; base -= 32) {
        double h = (double)hist[base + 31 - lane]; // lane 0 holds the highest bucket
        u32 nz = __ballot_sync(0xffffffffu, h > 0.0);
        while (nz) {
            int l = __ffs(nz) - 1;
            nz &= nz - 1;
            double hl = __shfl_sync(0xffffffffu, h, l);
            double next = __dadd_rn(above, hl);
            if (next >= target) return base + 31 - l;
            above = next;
            lowest = base + 31 - l;
            lowest_h = hl;
        }
    }
    if (lowest >= 0) above = __dsub_rn(above, lowest_h);
    return lowest;
}

// One lane of row.rs block_sums for a block of len ids: the sum in f64 of the weights w(o) >= wmin
// at offsets o = 4q + l in order, a short block's 1-3 trailing offsets first into lane 0.
template <typename F>
__device__ __forceinline__ double lane_sum(F w, u32 len, u32 l, float wmin) {
    const u32 nq = len >> 2, rem = len & 3;
    double acc = 0.0;
    for (u32 q = (l == 0 ? 0 : rem); q < rem + nq; q++) {
        const float wi = w(q < rem ? 4 * nq + q : 4 * (q - rem) + l);
        if (wi >= wmin) acc = __dadd_rn(acc, (double)wi);
    }
    return acc;
}

// Per-256-id block, the CPU's 4 f64 lane sums of the weights >= wmin. lanes: (4 * nblk,).
// With hist != 0 it also adds every positive weight to hist[bits >> 20] (top-p level 1).
__device__ void lane_sums(const float* xf, const bf16* xb, u32 v, float m, float t, float xk, float wmin,
                          double* lanes, u32 nblk, double* hist) {
    for (u32 c = threadIdx.x; c < 4 * nblk; c += blockDim.x) {
        const u32 start = (c >> 2) * SAMPLE_BLOCK;
        lanes[c] = lane_sum(
            [&](u32 o) {
                const float w = weight(xf ? xf[start + o] : bf2f(xb[start + o]), m, t, xk);
                if (hist && w > 0.f) atomicAdd(&hist[__float_as_uint(w) >> 20], (double)w);
                return w;
            },
            min((u32)SAMPLE_BLOCK, v - start), c & 3, wmin);
    }
}
__device__ __forceinline__ double block_mass(const double* lanes, u32 j) {
    return __dadd_rn(__dadd_rn(lanes[4 * j], lanes[4 * j + 1]), __dadd_rn(lanes[4 * j + 2], lanes[4 * j + 3]));
}

// row.rs draw: the sequential sum of the block masses mass(j), j < nblk, picks the block, then a
// sequential sum over its ids the token (run by warp 0, every lane the same chain); if that
// finds no survivor (a broken invariant), row.rs's guard: the first weight equal to 1. Every
// thread of the block must call it; every thread gets the token. The masses are gathered into
// pre (nblk + 1 f64 of shared memory) by the whole block first, so the one thread that keeps the
// running sum (its order is the CPU's) reads shared memory, not a chain of global loads.
template <typename F>
__device__ u32 draw_dense(const float* xf, const bf16* xb, u32 v, float m, float t, float xk, float wmin, u32 nblk, F mass, double u,
                          double* pre) {
    __shared__ u32 s_tok, s_min[32];
    const u32 tid = threadIdx.x;
    for (u32 j = tid; j < nblk; j += blockDim.x) pre[j + 1] = mass(j); // every block's mass at once
    __syncthreads();
    if (tid == 0) { // row.rs's running sum, in block order: pre[j] = the masses of blocks < j
        double acc = 0.0;
        pre[0] = 0.0;
        for (u32 j = 0; j < nblk; j++) { acc = __dadd_rn(acc, pre[j + 1]); pre[j + 1] = acc; }
    }
    __syncthreads();
    // the block: the first whose running sum passes the target (else the last, with the total)
    const double target = __dmul_rn(u, pre[nblk]);
    u32 pass = 0xffffffffu;
    for (u32 j = tid; j < nblk; j += blockDim.x)
        if (pre[j + 1] > target) { pass = j; break; }
    pass = block_min_u32(pass, s_min);
    const u32 b = pass != 0xffffffffu ? pass : nblk - 1;
    const double acc = pre[pass != 0xffffffffu ? pass : nblk];
    if (tid < 32) {
        const double rest = __dsub_rn(target, acc);
        const u32 start = b * SAMPLE_BLOCK, end = min(start + SAMPLE_BLOCK, v);
        double run = 0.0;
        u32 last = 0xffffffffu, tok = 0xffffffffu;
        for (u32 base = start; base < end && tok == 0xffffffffu; base += 32) {
            const u32 i = base + tid;
            const float w = i < end ? weight(xf ? xf[i] : bf2f(xb[i]), m, t, xk) : 0.f;
            u32 surv = __ballot_sync(0xffffffffu, i < end && w >= wmin);
            while (surv) {
                const int l = __ffs(surv) - 1;
                surv &= surv - 1;
                run = __dadd_rn(run, (double)__shfl_sync(0xffffffffu, w, l));
                last = base + l;
                if (run > rest) { tok = base + l; break; }
            }
        }
        if (tid == 0) s_tok = tok != 0xffffffffu ? tok : last;
    }
    __syncthreads();
    const u32 tok = s_tok;
    if (tok != 0xffffffffu) return tok;
    u32 first = 0xffffffffu;
    for (u32 i = tid; i < v; i += blockDim.x)
        if (weight(xf ? xf[i] : bf2f(xb[i]), m, t, xk) == 1.f) { first = i; break; }
    first = block_min_u32(first, s_min);
    return first == 0xffffffffu ? 0u : first;
}

// The whole multi-pass sampler for row blockIdx.x. Exactly one of xf / xb is non-null.
// smem (dynamic): hist (max(HIST_BINS, ceil(V/256) + 1) f64, also used as u32 counts and for
// draw_dense's running sums) then lanes (4 * ceil(V/256) f64).
__device__ void sample_row(const float* xf, const bf16* xb, u32 v, const u32* prm, u64 seed, u32 step, u32* out, u32 nrows,
                           double* smem) {
    double* hist = smem;
    u32* cnt = (u32*)smem;
    u32 nblk = (v + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    double* lanes = smem + max((u32)HIST_BINS, nblk + 1); // hist also holds draw_dense's nblk + 1 running sums
    __shared__ u32 s_u32[32];
    __shared__ float s_f32[32];
    __shared__ u32 s_prefix, s_stop;
    __shared__ float s_t;

    const u32 r = blockIdx.x, tid = threadIdx.x, nthr = blockDim.x;
    const long row_off = (long)r * v;
    if (xf) xf += row_off; else xb += row_off;
    const u32* pr = prm + 5 * r;
    const float temp = __uint_as_float(pr[0]), top_p = __uint_as_float(pr[2]), min_p = __uint_as_float(pr[3]);
    const u32 top_k = pr[1], row_id = pr[4];
    const bool use_k = top_k > 0 && top_k < v && temp != 0.f;
    #define XI(i) (xf ? xf[i] : bf2f(xb[i]))

    // pass 1: max, first bad (NaN / +inf) index, top-k level-1 histogram of logit keys
    if (use_k) for (u32 i = tid; i < HIST_BINS; i += nthr) cnt[i] = 0u;
    __syncthreads();
    float lmax = -KILN_INF;
    u32 bad = 0xffffffffu;
    for (u32 i = tid; i < v; i += nthr) {
        float xi = XI(i);
        if (xi != xi || xi == KILN_INF) bad = min(bad, i);
        else lmax = fmaxf(lmax, xi);
        if (use_k && xi == xi) atomicAdd(&cnt[logit_key(xi) >> 20], 1u);
    }
    const float m = block_max(lmax, s_f32);
    bad = block_min_u32(bad, s_u32);
    if (bad != 0xffffffffu || m == -KILN_INF) {
        if (tid == 0) { out[r] = bad; out[nrows + r] = bad != 0xffffffffu ? 1u : 2u; }
        return;
    }
    if (temp == 0.f) { // greedy: the first maximum
        u32 first = 0xffffffffu;
        for (u32 i = tid; i < v; i += nthr) if (XI(i) == m) { first = i; break; }
        first = block_min_u32(first, s_u32);
        if (tid == 0) { out[r] = first; out[nrows + r] = 0u; }
        return;
    }

    // top-k: key of the k-th largest logit by radix select on counts (exact integers)
    float xk = -KILN_INF;
    if (use_k) {
        double above = 0.0; // live in warp 0 only
        u32 prefix = 0;
        for (int lev = 0; lev < 3; lev++) {
            const int shift = lev == 0 ? 20 : (lev == 1 ? 10 : 0), nb = lev == 0 ? HIST_BINS : 1024;
            if (lev > 0) {
                const int pshift = shift + 10; // the previous level's shift
                __syncthreads();
                for (u32 i = tid; i < 1024; i += nthr) cnt[i] = 0u;
                __syncthreads();
                for (u32 i = tid; i < v; i += nthr) {
                    u32 key = logit_key(XI(i));
                    if ((key >> pshift) == (prefix >> pshift)) atomicAdd(&cnt[(key >> shift) & 1023u], 1u);
                }
            }
            __syncthreads();
            if (tid < 32) {
                int d = walk_down(cnt, nb, (double)top_k, above);
                if (tid == 0) { s_prefix = prefix | ((u32)(d < 0 ? 0 : d) << shift); s_stop = d < 0; }
            }
            __syncthreads();
            prefix = s_prefix;
            if (s_stop) break;
        }
        xk = key_logit(prefix);
    }

    // mass of the top-k survivors (block lane sums), with the top-p level-1 histogram
    const float t = temp;
    float wmin = fmaxf(W_TINY, min_p);
    const bool use_p = top_p < 1.f;
    bool have_tiny = false;
    if (use_p || wmin == W_TINY) {
        __syncthreads();
        if (use_p) for (u32 i = tid; i < HIST_BINS; i += nthr) hist[i] = 0.0;
        __syncthreads();
        lane_sums(xf, xb, v, m, t, xk, W_TINY, lanes, nblk, use_p ? hist : (double*)0);
        __syncthreads();
        have_tiny = true;
    }
    if (use_p) {
        // top-p threshold: largest weight t with mass(w >= t) >= p * mass (row.rs top_p_min)
        double above = 0.0, mass = 0.0, target = 0.0;
        float floor_w = W_TINY;
        if (tid < 32) {
            for (u32 j = 0; j < nblk; j++) mass = __dadd_rn(mass, block_mass(lanes, j));
            const double p = (double)top_p;
            floor_w = fmaxf(__double2float_rn(__dmul_rn(__ddiv_rn(__dmul_rn(__dsub_rn(1.0, p), mass), (double)v), 0.999)), W_TINY);
            target = __dmul_rn(p, mass);
            if (tid == 0) s_t = floor_w;
        }
        __syncthreads();
        floor_w = s_t;
        u32 prefix = 0;
        for (int lev = 0; lev < 3; lev++) {
            const int shift = lev == 0 ? 20 : (lev == 1 ? 10 : 0), nb = lev == 0 ? HIST_BINS : 1024;
            if (lev > 0) {
                const int pshift = shift + 10;
                __syncthreads();
                for (u32 i = tid; i < 1024; i += nthr) hist[i] = 0.0;
                __syncthreads();
                for (u32 i = tid; i < v; i += nthr) {
                    float w = weight(XI(i), m, t, xk);
                    u32 key = __float_as_uint(w);
                    if (w >= floor_w && (key >> pshift) == (prefix >> pshift)) atomicAdd(&hist[(key >> shift) & 1023u], (double)w);
                }
            }
            __syncthreads();
            if (tid < 32) {
                int d = walk_down(hist, nb, target, above);
                if (tid == 0) { s_prefix = prefix | ((u32)(d < 0 ? 0 : d) << shift); s_stop = d < 0; }
            }
            __syncthreads();
            prefix = s_prefix;
            if (s_stop) break;
        }
        wmin = fmaxf(wmin, __uint_as_float(prefix));
    }
    if (wmin > W_TINY || !have_tiny) {
        __syncthreads();
        lane_sums(xf, xb, v, m, t, xk, wmin, lanes, nblk, (double*)0);
        __syncthreads();
    }

    const u32 tok = draw_dense(xf, xb, v, m, t, xk, wmin, nblk, [&](u32 j) { return block_mass(lanes, j); }, row_uniform(seed, row_id, step), hist);
    if (tid == 0) { out[r] = tok; out[nrows + r] = 0u; }
    #undef XI
}

// ---- the sparse tail of row.rs: a top-k row's survivors alone (sampling.cu sample_pick) ---------
#define PICK_SURVIVORS 1024 // most top-k survivors (ties included) the sparse path takes

// The top-k survivors in id order: ids, weights w (exp((x - m) / T)), and the lane-summed mass of
// each 256-id block that holds one (seg[i] at the block's first survivor i, -1 elsewhere).
// Dynamic smem after the radix histogram: (HIST_BINS + PICK_SURVIVORS) f64 + 2 PICK_SURVIVORS u32.
struct Survivors {
    double* hist;
    double* seg;
    u32* id;
    float* w;
};
__device__ __forceinline__ Survivors survivors(double* smem) {
    Survivors s;
    s.hist = smem;
    s.seg = smem + HIST_BINS;
    s.id = (u32*)(s.seg + PICK_SURVIVORS);
    s.w = (float*)(s.id + PICK_SURVIVORS);
    return s;
}

// row.rs block_sums over the survivors with w >= wmin: per block, the CPU's 4 f64 lanes in id order
// (a short last block's 1-3 trailing ids first into lane 0). Masked ids would add +0.0: nothing.
__device__ void seg_sums(const Survivors& s, u32 ns, u32 v, float wmin) {
    for (u32 i = threadIdx.x; i < ns; i += blockDim.x) {
        const u32 blk = s.id[i] / SAMPLE_BLOCK;
        if (i > 0 && s.id[i - 1] / SAMPLE_BLOCK == blk) { s.seg[i] = -1.0; continue; }
        const u32 start = blk * SAMPLE_BLOCK, len = min((u32)SAMPLE_BLOCK, v - start), tail = start + (len & ~3u);
        u32 end = i;
        while (end < ns && s.id[end] / SAMPLE_BLOCK == blk) end++;
        double l0 = 0.0, l1 = 0.0, l2 = 0.0, l3 = 0.0;
        for (u32 q = i; q < end; q++)
            if (s.id[q] >= tail && s.w[q] >= wmin) l0 = __dadd_rn(l0, (double)s.w[q]);
        for (u32 q = i; q < end && s.id[q] < tail; q++) {
            if (!(s.w[q] >= wmin)) continue;
            const double w = (double)s.w[q];
            switch ((s.id[q] - start) & 3) {
                case 0: l0 = __dadd_rn(l0, w); break;
                case 1: l1 = __dadd_rn(l1, w); break;
                case 2: l2 = __dadd_rn(l2, w); break;
                default: l3 = __dadd_rn(l3, w); break;
            }
        }
        s.seg[i] = __dadd_rn(__dadd_rn(l0, l1), __dadd_rn(l2, l3));
    }
}

// row.rs draw over the survivors, by one thread: sequential sums over the blocks' masses, then
// over the ids of the chosen block. Blocks without survivors have mass 0 and change no sum.
__device__ u32 draw_sparse(const Survivors& s, u32 ns, u32 v, float wmin, double u) {
    double total = 0.0;
    for (u32 i = 0; i < ns; i++)
        if (s.seg[i] >= 0.0) total = __dadd_rn(total, s.seg[i]);
    const double target = __dmul_rn(u, total);
    double acc = 0.0;
    u32 b = 0xffffffffu, last_seg = 0;
    for (u32 i = 0; i < ns; i++) {
        if (s.seg[i] < 0.0) continue;
        last_seg = i;
        const double next = __dadd_rn(acc, s.seg[i]);
        if (next > target) { b = i; break; }
        acc = next;
    }
    // no block passed the target (rounding): row.rs takes the row's last block, which holds
    // survivors only if the last segment is that block
    if (b == 0xffffffffu && s.id[last_seg] / SAMPLE_BLOCK == (v - 1) / SAMPLE_BLOCK) b = last_seg;
    u32 last = 0xffffffffu;
    if (b != 0xffffffffu) {
        const double rest = __dsub_rn(target, acc);
        double run = 0.0;
        for (u32 q = b; q < ns && s.id[q] / SAMPLE_BLOCK == s.id[b] / SAMPLE_BLOCK; q++) {
            if (!(s.w[q] >= wmin)) continue;
            run = __dadd_rn(run, (double)s.w[q]);
            last = s.id[q];
            if (run > rest) return s.id[q];
        }
    }
    if (last != 0xffffffffu) return last;
    for (u32 q = 0; q < ns; q++) // row.rs's guard for a broken invariant: the first weight 1
        if (s.w[q] == 1.f) return s.id[q];
    return 0u;
}

// row.rs from the top-k weights on, over ns >= 1 survivors (s.id, s.w written): mass, top-p
// threshold by radix select (the CPU's candidates: weights >= its floor), min-p, the draw.
__device__ void pick_sparse(const Survivors& s, u32 ns, u32 v, const u32* pr, u64 seed, u32 step, u32* out, u32 nrows) {
    __shared__ u32 s_prefix, s_stop;
    __shared__ float s_t;
    const u32 tid = threadIdx.x, nthr = blockDim.x;
    const float top_p = __uint_as_float(pr[2]), min_p = __uint_as_float(pr[3]);
    float wmin = fmaxf(W_TINY, min_p);
    seg_sums(s, ns, v, W_TINY);
    __syncthreads();
    if (top_p < 1.f) {
        double above = 0.0, target = 0.0; // live in warp 0 only
        if (tid < 32) {
            double mass = 0.0;
            for (u32 i = 0; i < ns; i++)
                if (s.seg[i] >= 0.0) mass = __dadd_rn(mass, s.seg[i]);
            const double p = (double)top_p;
            const float floor_w = fmaxf(__double2float_rn(__dmul_rn(__ddiv_rn(__dmul_rn(__dsub_rn(1.0, p), mass), (double)v), 0.999)), W_TINY);
            target = __dmul_rn(p, mass);
            if (tid == 0) s_t = floor_w;
        }
        __syncthreads();
        const float floor_w = s_t;
        u32 prefix = 0;
        for (int lev = 0; lev < 3; lev++) {
            // weights are <= 1 (key <= 0x3f800000), so level 0's buckets above 0x3f8 are empty and
            // the walk may start at 1023: the same buckets, 96 fewer steps
            const int shift = lev == 0 ? 20 : (lev == 1 ? 10 : 0), nb = 1024;
            for (u32 i = tid; i < (u32)nb; i += nthr) s.hist[i] = 0.0;
            __syncthreads();
            for (u32 i = tid; i < ns; i += nthr) {
                const float w = s.w[i];
                const u32 key = __float_as_uint(w);
                if (w >= floor_w && (lev == 0 || (key >> (shift + 10)) == (prefix >> (shift + 10))))
                    atomicAdd(&s.hist[(key >> shift) & 1023u], (double)w);
            }
            __syncthreads();
            if (tid < 32) {
                int d = walk_down(s.hist, nb, target, above);
                if (tid == 0) { s_prefix = prefix | ((u32)(d < 0 ? 0 : d) << shift); s_stop = d < 0; }
            }
            __syncthreads();
            prefix = s_prefix;
            if (s_stop) break;
        }
        wmin = fmaxf(wmin, __uint_as_float(prefix));
    }
    if (wmin > W_TINY) {
        __syncthreads();
        seg_sums(s, ns, v, wmin);
        __syncthreads();
    }
    if (tid == 0) {
        out[blockIdx.x] = draw_sparse(s, ns, v, wmin, row_uniform(seed, pr[4], step));
        out[nrows + blockIdx.x] = 0u;
    }
}
