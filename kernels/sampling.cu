// kernels/sampling.cu: the batched, sorting-free token sampler's entry kernels. The bit-exact
// pieces and the multi-pass row sampler are in sampling_row.cuh; the twin is src/sample/.
//
// logits: (B, V) f32 or bf16, prm: (B, 5) u32 words [temperature bits, top_k (0 = off, < V),
// top_p bits, min_p bits, row id], out: (2B,) u32 = tokens (B,) then status (B,):
// 0 ok, 1 NaN / +inf logit (the token word holds its first index), 2 every logit -inf.
//
// Per batch, two or three launches and no sort:
//   sample_scan: grid (B, ceil(V / 4096)), every block reads its 4096 logits once: max, first
//     index of the max, first bad index and, for top-k rows (k <= TOPK_FAST), the chunk's
//     candidates, every logit >= a lower bound of the chunk's k-th largest (the k-th largest of
//     the 256 per-thread maxima: k distinct logits reach it), in id order.
//   sample_mass (only if a row is plain: no filter but min-p): grid as sample_scan; with the
//     row's max from the scan, the weights' block sums of row.rs per 256-id block.
//   sample_pick: grid (B), one block per row: merges the chunk results; greedy rows are done;
//     plain rows draw over the block sums; a top-k row finds its exact k-th largest logit among
//     the candidates (a superset of the row's top k: each chunk's bound is <= the row's k-th
//     largest) and runs the rest of row.rs on the survivors alone (pick_sparse). Every other row
//     (top-p without top-k, k > TOPK_FAST, or candidates past CHUNK_CAP / PICK_SURVIVORS: ties)
//     runs sample_row, the multi-pass path of one block.
// Masked tokens have weight 0 and add exactly nothing to any CPU sum, so the sparse walk gives
// the same bits as the CPU's walk over all V.
#include "sampling_row.cuh"

#define SCAN_THREADS 256
#define SCAN_PER 16                               // logits per thread
#define SCAN_CHUNK (SCAN_THREADS * SCAN_PER)      // 4096 ids per sample_scan block
#define CHUNK_CAP 512                             // candidates one chunk may pass on
#define PICK_PER 8                                // candidates per sample_pick thread: 8192 a row
#define TOPK_FAST 128                             // largest top-k the two-launch path takes

#include "sampling_select.cuh"

// Which rows the two-launch path serves: greedy ones; a top-k <= TOPK_FAST ("top-k rows"); no
// filter but min-p ("plain rows": top-k off, top-p 1). The others run sample_row.
__device__ __forceinline__ bool topk_row(const u32* pr) {
    return __uint_as_float(pr[0]) != 0.f && pr[1] > 0 && pr[1] <= TOPK_FAST;
}
__device__ __forceinline__ bool plain_row(const u32* pr) {
    return __uint_as_float(pr[0]) != 0.f && pr[1] == 0 && __uint_as_float(pr[2]) >= 1.f;
}
__device__ __forceinline__ bool scan_row(const u32* pr) {
    return __uint_as_float(pr[0]) == 0.f || topk_row(pr) || plain_row(pr);
}

// rows: (n,) row ids -> out: (n,) the sampler's uniforms (parity test of the RNG port).
extern "C" __global__ void sampler_uniform(const u32* rows, u32 n, u64 seed, u32 step, double* out) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = row_uniform(seed, rows[i], step);
}

// Chunk blockIdx.y of row blockIdx.x (chunked == 0: no work; every row runs sample_row). stats:
// (B, nchunk, 4) u32 [max bits, first index of the max,
// first bad index, candidate count]; cval / cid: (B, nchunk, CHUNK_CAP) the candidates' logits and
// ids in id order (written only when the count is <= CHUNK_CAP).
template <typename T>
__device__ void scan_chunk(const T* x, u32 v, const u32* prm, u32* stats, float* cval, u32* cid, u32 chunked) {
    __shared__ u32 s_u32[32], s_rank[SCAN_PER * (SCAN_THREADS / 32) + 1], s_lists[SCAN_THREADS];
    const u32 r = blockIdx.x, c = blockIdx.y, nchunk = gridDim.y, tid = threadIdx.x;
    const u32* pr = prm + 5 * r;
    if (!chunked || !scan_row(pr)) return;
    x += (long)r * v;
    const u32 c0 = c * SCAN_CHUNK;
    // order keys of the finite logits (0 for -inf, NaN, +inf and ids past V): the logits are
    // not kept, key_logit gives them back bit for bit (-0.0 as +0.0, which compares equal)
    u32 key[SCAN_PER], kmax = 0, bad = 0xffffffffu;
    #pragma unroll
    for (int j = 0; j < SCAN_PER; j++) {
        const u32 i = c0 + j * SCAN_THREADS + tid;
        const float xi = i < v ? load(x, i) : -KILN_INF;
        if (xi != xi || xi == KILN_INF) bad = min(bad, i);
        key[j] = xi > -KILN_INF && xi < KILN_INF ? logit_key(xi) : 0u;
        kmax = max(kmax, key[j]);
    }
    bad = block_min_u32(bad, s_u32);
    const u32 kbig = ~block_min_u32(~kmax, s_u32); // the chunk's largest key; 0: every logit -inf
    u32 first = 0xffffffffu;
    #pragma unroll
    for (int j = SCAN_PER - 1; j >= 0; j--)
        if (key[j] == kbig) first = c0 + j * SCAN_THREADS + tid;
    first = block_min_u32(first, s_u32);

    u32 n = 0;
    if (topk_row(pr) && bad == 0xffffffffu) {
        // the bound: the k-th largest per-thread maximum key (k distinct logits reach it)
        const u32 bound = max(kth_largest(kmax, pr[1], s_lists, s_u32), 1u);
        u32 keep = 0;
        #pragma unroll
        for (int j = 0; j < SCAN_PER; j++) keep |= (u32)(key[j] >= bound) << j;
        n = rank_scan<SCAN_PER>(keep, s_rank);
        if (n <= CHUNK_CAP) {
            const long base = ((long)r * nchunk + c) * CHUNK_CAP;
            #pragma unroll
            for (int j = 0; j < SCAN_PER; j++) {
                const u32 at = rank_of(j, keep, s_rank);
                if (keep >> j & 1) { cval[base + at] = key_logit(key[j]); cid[base + at] = c0 + j * SCAN_THREADS + tid; }
            }
        }
    }
    const float m = kbig ? key_logit(kbig) : -KILN_INF;
    if (tid == 0) {
        u32* st = stats + ((long)r * nchunk + c) * 4;
        st[0] = __float_as_uint(m); st[1] = first; st[2] = bad; st[3] = n;
    }
}

// Row blockIdx.x from its chunk results (layout as scan_chunk, nchunk of them); mode: bit 0 the
// chunked path is on, bit 1 sample_mass ran (bmass holds the plain rows' block sums). Returns false,
// for the caller to run sample_row, when the scan did not serve the row or its candidates or
// survivors overflow (block-uniform). smem: dynamic, pick_sparse's layout; coff: nchunk + 1 u32.
__device__ bool pick_from_chunks(const float* xf, const bf16* xb, u32 v, const u32* prm, u64 seed, u32 step, u32* out, u32 nrows,
                                 u32 nchunk, const u32* stats, const float* cval, const u32* cid, const double* bmass,
                                 double* smem, u32* coff, u32 mode) {
    __shared__ float s_f32[32];
    __shared__ u32 s_u32[32], s_rank[PICK_PER * (SAMPLE_THREADS / 32) + 1], s_hist[256], s_ctl[2];
    __shared__ u64 s_cnt[64];
    const u32 r = blockIdx.x, tid = threadIdx.x, nthr = blockDim.x;
    const u32* pr = prm + 5 * r;
    if (!(mode & 1) || !scan_row(pr)) return false;
    const u32* st = stats + (long)r * nchunk * 4;
    float lmax = -KILN_INF;
    u32 bad = 0xffffffffu, over = 0;
    for (u32 c = tid; c < nchunk; c += nthr) {
        lmax = fmaxf(lmax, __uint_as_float(st[4 * c]));
        bad = min(bad, st[4 * c + 2]);
        over |= st[4 * c + 3] > CHUNK_CAP;
    }
    const float m = block_max(lmax, s_f32);
    bad = block_min_u32(bad, s_u32);
    if (bad != 0xffffffffu || m == -KILN_INF) {
        if (tid == 0) { out[r] = bad; out[nrows + r] = bad != 0xffffffffu ? 1u : 2u; }
        return true;
    }
    if (__uint_as_float(pr[0]) == 0.f) { // greedy: the first maximum, from the first chunk holding it
        u32 first = 0xffffffffu;
        for (u32 c = tid; c < nchunk; c += nthr)
            if (__uint_as_float(st[4 * c]) == m) first = min(first, st[4 * c + 1]);
        first = block_min_u32(first, s_u32);
        if (tid == 0) { out[r] = first; out[nrows + r] = 0u; }
        return true;
    }
    if (plain_row(pr)) { // row.rs draw over sample_mass's block masses (if it ran)
        if (!(mode & 2)) return false;
        const u32 nblk = (v + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
        const double* bm = bmass + (long)r * nblk;
        const float t = __uint_as_float(pr[0]), wmin = fmaxf(W_TINY, __uint_as_float(pr[3]));
        const long row = (long)r * v;
        const u32 tok = draw_dense(xf ? xf + row : xf, xb ? xb + row : xb, v, m, t, -KILN_INF, wmin, nblk, [&](u32 j) { return bm[j]; },
                                   row_uniform(seed, pr[4], step), smem);
        if (tid == 0) { out[r] = tok; out[nrows + r] = 0u; }
        return true;
    }
    over = (u32)block_count(over, s_cnt, 0);
    if (tid < 32) { // chunk offsets of the candidates (exclusive prefix of the counts)
        u32 run = 0;
        for (u32 c0 = 0; c0 < nchunk; c0 += 32) {
            const u32 n = c0 + tid < nchunk ? st[4 * (c0 + tid) + 3] : 0u;
            u32 incl = n;
            for (int o = 1; o < 32; o <<= 1) {
                const u32 y = __shfl_up_sync(0xffffffffu, incl, o);
                if (tid >= (u32)o) incl += y;
            }
            if (c0 + tid < nchunk) coff[c0 + tid] = run + incl - n;
            run += __shfl_sync(0xffffffffu, incl, 31);
        }
        if (tid == 0) coff[nchunk] = run;
    }
    __syncthreads();
    const u32 total = coff[nchunk];
    if (over || total > PICK_PER * nthr) return false;

    // the row's k-th largest logit among the candidates; thread t holds candidates j * nthr + t
    u32 key[PICK_PER], id[PICK_PER];
    float val[PICK_PER];
    #pragma unroll
    for (int j = 0; j < PICK_PER; j++) {
        const u32 q = j * nthr + tid;
        key[j] = 0u; id[j] = 0u; val[j] = -KILN_INF;
        if (q < total) {
            u32 lo = 0, hi = nchunk; // the chunk with coff[lo] <= q < coff[lo + 1]
            while (hi - lo > 1) {
                const u32 mid = (lo + hi) >> 1;
                if (coff[mid] <= q) lo = mid; else hi = mid;
            }
            const long at = ((long)r * nchunk + lo) * CHUNK_CAP + (q - coff[lo]);
            val[j] = cval[at]; id[j] = cid[at]; key[j] = logit_key(val[j]);
        }
    }
    const u32 tk = kth_key<PICK_PER>(key, pr[1], s_hist, s_ctl);
    const float xk = tk > 0 ? key_logit(tk) : -KILN_INF; // fewer than k finite logits: keep them all
    u32 keep = 0;
    #pragma unroll
    for (int j = 0; j < PICK_PER; j++) keep |= (u32)(key[j] > 0 && key[j] >= tk) << j;
    const u32 ns = rank_scan<PICK_PER>(keep, s_rank);
    if (ns == 0 || ns > PICK_SURVIVORS) return false;
    const Survivors s = survivors(smem);
    const float t = __uint_as_float(pr[0]);
    #pragma unroll
    for (int j = 0; j < PICK_PER; j++) {
        const u32 at = rank_of(j, keep, s_rank);
        if (keep >> j & 1) { s.id[at] = id[j]; s.w[at] = weight(val[j], m, t, xk); }
    }
    __syncthreads();
    pick_sparse(s, ns, v, pr, seed, step, out, nrows);
    return true;
}

// Plain row blockIdx.x, chunk blockIdx.y: row.rs block_sums of the weights >= w_min (min-p) for
// the chunk's 16 blocks of 256 ids, with the row's max from sample_scan's results. bmass: (B,
// ceil(V / 256)) f64. The weights go through shared memory, each 256-id block padded by 4 floats
// so the 64 lane sums (lane l of a block: ids 4q + l in order) hit 32 different banks.
#define PADDED(o) ((o) + ((o) >> 8) * 4)
template <typename T>
__device__ void mass_chunk(const T* x, u32 v, const u32* prm, const u32* stats, double* bmass) {
    __shared__ float s_w[PADDED(SCAN_CHUNK)], s_f32[32];
    __shared__ u32 s_u32[32];
    __shared__ double s_lane[4 * SCAN_CHUNK / SAMPLE_BLOCK];
    const u32 r = blockIdx.x, c = blockIdx.y, nchunk = gridDim.y, tid = threadIdx.x;
    const u32* pr = prm + 5 * r;
    if (!plain_row(pr)) return;
    const u32* st = stats + (long)r * nchunk * 4;
    float lmax = -KILN_INF;
    u32 bad = 0xffffffffu;
    for (u32 q = tid; q < nchunk; q += blockDim.x) {
        lmax = fmaxf(lmax, __uint_as_float(st[4 * q]));
        bad = min(bad, st[4 * q + 2]);
    }
    const float m = block_max(lmax, s_f32);
    if (block_min_u32(bad, s_u32) != 0xffffffffu || m == -KILN_INF) return; // sample_pick reports it
    const float t = __uint_as_float(pr[0]), wmin = fmaxf(W_TINY, __uint_as_float(pr[3]));
    x += (long)r * v;
    const u32 c0 = c * SCAN_CHUNK;
    #pragma unroll
    for (int j = 0; j < SCAN_PER; j++) {
        const u32 o = j * SCAN_THREADS + tid;
        s_w[PADDED(o)] = c0 + o < v ? weight(load(x, c0 + o), m, t, -KILN_INF) : 0.f;
    }
    __syncthreads();
    const u32 blk = tid >> 2, l = tid & 3, start = c0 + blk * SAMPLE_BLOCK;
    if (tid < 4 * SCAN_CHUNK / SAMPLE_BLOCK && start < v) {
        const float* w = s_w + PADDED(blk * SAMPLE_BLOCK);
        s_lane[tid] = lane_sum([&](u32 o) { return w[o]; }, min((u32)SAMPLE_BLOCK, v - start), l, wmin);
    }
    __syncthreads();
    const u32 b0 = c * (SCAN_CHUNK / SAMPLE_BLOCK) + tid, nblk = (v + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    if (tid < SCAN_CHUNK / SAMPLE_BLOCK && b0 < nblk)
        bmass[(long)r * nblk + b0] = block_mass(s_lane, tid);
}

// logits: (B, V); grid (B, ceil(V / SCAN_CHUNK)), block (SCAN_THREADS).
extern "C" __global__ void __launch_bounds__(SCAN_THREADS, 4) sample_scan_f32(const float* logits, u32 v, const u32* prm, u32* stats, float* cval, u32* cid, u32 chunked) {
    scan_chunk(logits, v, prm, stats, cval, cid, chunked);
}
extern "C" __global__ void __launch_bounds__(SCAN_THREADS, 4) sample_scan_bf16(const bf16* logits, u32 v, const u32* prm, u32* stats, float* cval, u32* cid, u32 chunked) {
    scan_chunk(logits, v, prm, stats, cval, cid, chunked);
}
// grid (B, ceil(V / SCAN_CHUNK)), block (SCAN_THREADS); stats from sample_scan -> bmass.
extern "C" __global__ void __launch_bounds__(SCAN_THREADS) sample_mass_f32(const float* logits, u32 v, const u32* prm, const u32* stats, double* bmass) {
    mass_chunk(logits, v, prm, stats, bmass);
}
extern "C" __global__ void __launch_bounds__(SCAN_THREADS) sample_mass_bf16(const bf16* logits, u32 v, const u32* prm, const u32* stats, double* bmass) {
    mass_chunk(logits, v, prm, stats, bmass);
}
// -> out: (2B,) tokens then status; grid (B), block (SAMPLE_THREADS); dynamic smem: coff_at bytes
// (max of sample_row's and pick_sparse's layouts), then nchunk + 1 u32 chunk offsets.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1) sample_pick_f32(const float* logits, u32 v, const u32* prm, u64 seed, u32 step, u32* out, u32 nrows,
                                                                              u32 nchunk, const u32* stats, const float* cval, const u32* cid, const double* bmass, u32 coff_at, u32 mode) {
    extern __shared__ double smem[];
    if (!pick_from_chunks(logits, (const bf16*)0, v, prm, seed, step, out, nrows, nchunk, stats, cval, cid, bmass, smem, (u32*)((char*)smem + coff_at), mode))
        sample_row(logits, (const bf16*)0, v, prm, seed, step, out, nrows, smem);
}
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1) sample_pick_bf16(const bf16* logits, u32 v, const u32* prm, u64 seed, u32 step, u32* out, u32 nrows,
                                                                               u32 nchunk, const u32* stats, const float* cval, const u32* cid, const double* bmass, u32 coff_at, u32 mode) {
    extern __shared__ double smem[];
    if (!pick_from_chunks((const float*)0, logits, v, prm, seed, step, out, nrows, nchunk, stats, cval, cid, bmass, smem, (u32*)((char*)smem + coff_at), mode))
        sample_row((const float*)0, logits, v, prm, seed, step, out, nrows, smem);
}

// ---- sort-based baseline (bench only, not used by the engine) ----------------------------------
// What a sorting sampler does: sort the row by logit (bitonic sort of (value, id) pairs in global
// scratch, padded to P = 2^ceil(log2 V) with -inf), then softmax over the top k, cut at top-p mass,
// and draw one token by a sequential inverse CDF. logits: (B, V) f32, keys/ids: (B, P) scratch,
// out: (B,) tokens. One block per row. Same parameter words as sample_pick_f32; k = 0 means all V.
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
