// kernels/sampling.cu: the batched, sorting-free token sampler. Twin: src/sample/ (mod.rs gives
// the semantics, row.rs the passes); this file mirrors row.rs step by step so that the CUDA and
// CPU samplers return the same token for the same (seed, row id, step).
//
// logits: (B, V) f32 or bf16, prm: (B, 5) u32 words [temperature bits, top_k (0 = off, < V),
// top_p bits, min_p bits, row id], out: (2B,) u32 = tokens (B,) then status (B,):
// 0 ok, 1 NaN / +inf logit (the token word holds its first index), 2 every logit -inf.
// One block of SAMPLE_THREADS threads per row; threads stride over V; no sort.
//
// Bit-exactness with the CPU: the weights use the same hand-written exp (every f32 operation
// with an explicit _rn intrinsic, so nothing is fused into an FMA); the radix-select histograms
// add f32 weights that share one exponent per bucket into f64, which is exact in any order (at
// most 2^29 terms of 24 bits), so shared-memory atomics give the CPU's bucket sums bit for bit;
// every running sum that the CPU does sequentially (the bucket walk, the per-256-id block lane
// sums, the sums over blocks, the walk inside the chosen block) is done sequentially here too.
//
// Passes over the row (each reads V logits and recomputes the weights):
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

// rows: (n,) row ids -> out: (n,) the sampler's uniforms (parity test of the RNG port).
extern "C" __global__ void sampler_uniform(const u32* rows, u32 n, u64 seed, u32 step, double* out) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = row_uniform(seed, rows[i], step);
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

// Per-256-id block, the CPU's 4 f64 lane sums of the weights >= wmin (lane j: ids 4q + j in
// order; a short last block's 1-3 trailing ids go first into lane 0). lanes: (4 * nblk,).
// With hist != 0 it also adds every positive weight to hist[bits >> 20] (top-p level 1).
__device__ void lane_sums(const float* xf, const bf16* xb, u32 v, float m, float t, float xk, float wmin,
                          double* lanes, u32 nblk, double* hist) {
    for (u32 c = threadIdx.x; c < 4 * nblk; c += blockDim.x) {
        u32 j = c >> 2, l = c & 3, start = j * SAMPLE_BLOCK;
        u32 len = min((u32)SAMPLE_BLOCK, v - start), nq = len >> 2, rem = len & 3;
        double acc = 0.0;
        for (u32 q = (l == 0 ? 0 : rem); q < rem + nq; q++) {
            u32 i = q < rem ? start + 4 * nq + q : start + 4 * (q - rem) + l;
            float xi = xf ? xf[i] : bf2f(xb[i]);
            float w = weight(xi, m, t, xk);
            if (w >= wmin) acc = __dadd_rn(acc, (double)w);
            if (hist && w > 0.f) atomicAdd(&hist[__float_as_uint(w) >> 20], (double)w);
        }
        lanes[c] = acc;
    }
}
__device__ __forceinline__ double block_mass(const double* lanes, u32 j) {
    return __dadd_rn(__dadd_rn(lanes[4 * j], lanes[4 * j + 1]), __dadd_rn(lanes[4 * j + 2], lanes[4 * j + 3]));
}

// The whole sampler for row blockIdx.x. Exactly one of xf / xb is non-null.
// dynamic smem: hist (HIST_BINS f64, also used as u32 counts) then lanes (4 * ceil(V/256) f64).
__device__ void sample_row(const float* xf, const bf16* xb, u32 v, const u32* prm, u64 seed, u32 step, u32* out, u32 nrows) {
    extern __shared__ double smem[];
    double* hist = smem;
    u32* cnt = (u32*)smem;
    u32 nblk = (v + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    double* lanes = smem + HIST_BINS;
    __shared__ u32 s_u32[32];
    __shared__ float s_f32[32];
    __shared__ u32 s_prefix, s_stop, s_tok;
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

    // draw (row.rs draw): sequential sums over blocks, then over the ids of the chosen block
    if (tid < 32) {
        const double u = row_uniform(seed, row_id, step);
        double total = 0.0;
        for (u32 j = 0; j < nblk; j++) total = __dadd_rn(total, block_mass(lanes, j));
        const double target = __dmul_rn(u, total);
        double acc = 0.0;
        u32 b = nblk - 1;
        for (u32 j = 0; j < nblk; j++) {
            double bs = block_mass(lanes, j), next = __dadd_rn(acc, bs);
            if (next > target) { b = j; break; }
            acc = next;
        }
        const double rest = __dsub_rn(target, acc);
        const u32 start = b * SAMPLE_BLOCK, end = min(start + SAMPLE_BLOCK, v);
        double run = 0.0;
        u32 last = 0xffffffffu, tok = 0xffffffffu;
        for (u32 base = start; base < end && tok == 0xffffffffu; base += 32) {
            u32 i = base + tid;
            float w = i < end ? weight(XI(i), m, t, xk) : 0.f;
            u32 surv = __ballot_sync(0xffffffffu, i < end && w >= wmin);
            while (surv) {
                int l = __ffs(surv) - 1;
                surv &= surv - 1;
                run = __dadd_rn(run, (double)__shfl_sync(0xffffffffu, w, l));
                last = base + l;
                if (run > rest) { tok = base + l; break; }
            }
        }
        if (tid == 0) s_tok = tok != 0xffffffffu ? tok : last;
    }
    __syncthreads();
    u32 tok = s_tok;
    if (tok == 0xffffffffu) { // broken invariant guard (row.rs): the first weight equal to 1
        u32 first = 0xffffffffu;
        for (u32 i = tid; i < v; i += nthr) if (weight(XI(i), m, t, xk) == 1.f) { first = i; break; }
        first = block_min_u32(first, s_u32);
        tok = first == 0xffffffffu ? 0u : first;
    }
    if (tid == 0) { out[r] = tok; out[nrows + r] = 0u; }
    #undef XI
}

// logits: (B, V) -> out: (2B,) tokens then status; grid (B), block (SAMPLE_THREADS).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1) sample_f32(const float* logits, u32 v, const u32* prm, u64 seed, u32 step, u32* out, u32 nrows) {
    sample_row(logits, (const bf16*)0, v, prm, seed, step, out, nrows);
}
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1) sample_bf16(const bf16* logits, u32 v, const u32* prm, u64 seed, u32 step, u32* out, u32 nrows) {
    sample_row((const float*)0, logits, v, prm, seed, step, out, nrows);
}

// ---- sort-based baseline (bench only, not used by the engine) ----------------------------------
// What a sorting sampler does: sort the row by logit (bitonic sort of (value, id) pairs in global
// scratch, padded to P = 2^ceil(log2 V) with -inf), then softmax over the top k, cut at top-p mass,
// and draw one token by a sequential inverse CDF. logits: (B, V) f32, keys/ids: (B, P) scratch,
// out: (B,) tokens. One block per row. Same parameter words as sample_f32; k = 0 means all V.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1) sort_sample_f32(const float* logits, u32 v, u32 p2, const u32* prm, u64 seed, u32 step, float* keys, u32* ids, u32* out) {
    const u32 r = blockIdx.x, tid = threadIdx.x, nthr = blockDim.x;
    const float* x = logits + (long)r * v;
    float* key = keys + (long)r * p2;
    u32* id = ids + (long)r * p2;
    for (u32 i = tid; i < p2; i += nthr) { key[i] = i < v ? x[i] : -KILN_INF; id[i] = i; }
    __syncthreads();
    for (u32 k = 2; k <= p2; k <<= 1) {
        for (u32 j = k >> 1; j > 0; j >>= 1) {
            for (u32 i = tid; i < p2; i += nthr) {
                u32 l = i ^ j;
                if (l > i) {
                    float a = key[i], b = key[l];
                    bool desc = (i & k) == 0;
                    if (desc ? (a < b) : (a > b)) { key[i] = b; key[l] = a; u32 t = id[i]; id[i] = id[l]; id[l] = t; }
                }
            }
            __syncthreads();
        }
    }
    if (tid == 0) {
        const u32* pr = prm + 5 * r;
        const float t = __uint_as_float(pr[0]), top_p = __uint_as_float(pr[2]);
        const u32 kk = (pr[1] == 0 || pr[1] > v) ? v : pr[1];
        const float m = key[0];
        double total = 0.0;
        for (u32 i = 0; i < kk; i++) total += (double)__expf((key[i] - m) / t);
        double cut = (double)top_p * total, mass = 0.0;
        u32 n = 0;
        while (n < kk && mass < cut) { mass += (double)__expf((key[n] - m) / t); n++; }
        double target = row_uniform(seed, pr[4], step) * mass, acc = 0.0;
        u32 tok = id[n > 0 ? n - 1 : 0];
        for (u32 i = 0; i < n; i++) {
            acc += (double)__expf((key[i] - m) / t);
            if (acc > target) { tok = id[i]; break; }
        }
        out[r] = tok;
    }
}
