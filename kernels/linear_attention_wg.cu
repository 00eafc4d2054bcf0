// kernels/linear_attention_wg.cu: the two walks of segmented linear attention on Hopper's warpgroup
// MMA (sm_90a), bf16 with head width Dk = Dv = 128: the segments' sums (linattn_wg_seg_states_bf16)
// and their outputs (linattn_wg_seg_out_bf16), with the contracts and arguments of the
// linattn_tc128_seg_* kernels in linear_attention_tc.cu (whose linattn_seg_prefix runs between
// them), picked by `KILN_LINATTN=wgmma` (backend/cuda/linear_attention_tc.rs); and the three fused
// into one launch (linattn_wg_fused_bf16, `KILN_LINATTN=wgmma-fused`; at the end of this file).
// Twin: backend/cpu/linear_attention.rs.
//
// One block a (head, segment), 256 threads = 2 warpgroups; warpgroup w owns Dv columns 64w .. 64w
// + 63: that half of O and of the state S (128 x 64 f32 accumulators, as two m64 halves of Dk), so
// Q and K are loaded once a block (the mma.sync kernel loads them once per 64-wide Dv slice).
// Per chunk of n <= 64 rows (rows past n are zeros in shared memory), each warpgroup:
//   1. A = Q K^T (64 x 64) and O = Q S_w, 8 + 8 m64n64k16, S_w read from its bf16 copy;
//   2. A masked (causal: column <= row; rev: >=) and packed in registers as the A operand of
//      O += A V_w (4 m64n64k16, A from registers), with S_w += K^T V_w (8 more; K^T is K read
//      MN-major) issued behind them;
//   3. O stored (rows < n); S_w's bf16 copy refreshed for the next chunk's step 1.
// Shared tiles: Q, K, V each [2 column blocks][64 rows][64 columns], rows of 128 bytes with the
// 128-byte swizzle (the canonical layout serves Q as K-major A, K as K-major B and as MN-major A,
// V as MN-major B), three chunks buffered by cp.async (two in flight while one is read); S_w's
// copy [128 dk][64 dv], MN-major.
// Precision as in linear_attention_tc.cu: f32 state, bf16 products. Deterministic.

#include "wgmma64.cuh"

#define LW_C 64
#define LW_TILE 16384                 // one 64 x 128 bf16 tile
#define LW_ST 3                       // chunk buffers: two chunks in flight while one is read
#define LW_BUF (3 * LW_TILE)          // Q, K, V of one chunk (the states-only walk: K, V, two tiles)
#define LW_S (128 * 64 * 2)           // one warpgroup's bf16 copy of S_w
// dynamic shared memory (backend/cuda/linear_attention_tc.rs): LW_ST * LW_BUF + 2 * LW_S + 1024
// (WG_SMEM, 177 KiB); the states-only walk LW_ST * 2 * LW_TILE + 1024 (WG_STATES_SMEM, 97 KiB)

// Byte offset of element (r, c) of a canonical 64 x 128 tile (r < 64 rows, c < 128 columns).
__device__ __forceinline__ int lw_off(int r, int c) {
    return (c >> 6) * 8192 + r * 128 + ((((c & 63) >> 3) ^ (r & 7)) << 4) + (c & 7) * 2;
}

// This thread's part of the state S_w, in the D fragment of two m64n64 results: S[mh][4i + 2h + c]
// = S(dk = 64 mh + 16 w + g + 8 h, dv = 64 wg + 8 i + 2 tq + c); lw_at: where S[mh][e] lives in a
// (Dk, Dv) row-major state.
__device__ __forceinline__ int lw_at(int mh, int e) {
    const int wg = threadIdx.x >> 7, w = (threadIdx.x >> 5) & 3, l = threadIdx.x & 31, g = l >> 2, tq = l & 3;
    return (64 * mh + 16 * w + g + 8 * ((e >> 1) & 1)) * 128 + 64 * wg + 8 * (e >> 2) + 2 * tq + (e & 1);
}

// This thread's part of S_w as bf16 into the copy Sw ([128 dk][64 dv]: rows of 128 bytes,
// swizzled), the B operand of the next chunk's products.
__device__ __forceinline__ void lw_publish(unsigned char* Sw, const float (&S)[2][32]) {
    const int w = (threadIdx.x >> 5) & 3, l = threadIdx.x & 31, g = l >> 2, tq = l & 3;
#pragma unroll
    for (int mh = 0; mh < 2; mh++)
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int dk = 64 * mh + 16 * w + g + 8 * h, n = 8 * i + 2 * tq;
                *reinterpret_cast<u32*>(Sw + dk * 128 + (((n >> 3) ^ (dk & 7)) << 4) + (n & 7) * 2) =
                    pack_bf16(S[mh][4 * i + 2 * h], S[mh][4 * i + 2 * h + 1]);
            }
    fence_proxy_async();  // the next chunk's MMAs read it
}

// A (64 x 64 f32, a D fragment) masked (causal: column <= row; rev: >=) and packed in registers
// as the A operand of a product with it (row r = 16 w + g + 8 h, column s = 8 i + 2 tq + c).
__device__ __forceinline__ void lw_mask_pack(const float (&A)[32], u32 (&af)[4][4], int rev) {
    const int w = (threadIdx.x >> 5) & 3, l = threadIdx.x & 31, g = l >> 2, tq = l & 3;
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = 16 * w + g + 8 * h, s = 8 * i + 2 * tq;
            const float x0 = (rev ? s >= r : s <= r) ? A[4 * i + 2 * h] : 0.f;
            const float x1 = (rev ? s + 1 >= r : s + 1 <= r) ? A[4 * i + 2 * h + 1] : 0.f;
            af[i >> 1][2 * (i & 1) + h] = pack_bf16(x0, x1);
        }
}

// This warpgroup's 64 x 64 result (rows < n) as bf16 into rows c0 .. of a (T, 128) matrix, its
// 64 columns from 64 wg.
__device__ __forceinline__ void lw_store_rows(bf16* __restrict__ out, const float (&O)[32], int c0, int n) {
    const int wg = threadIdx.x >> 7, w = (threadIdx.x >> 5) & 3, l = threadIdx.x & 31, g = l >> 2, tq = l & 3;
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = 16 * w + g + 8 * h, c = 64 * wg + 8 * i + 2 * tq;
            if (r < n) *reinterpret_cast<u32*>(out + (long)(c0 + r) * 128 + c) = pack_bf16(O[4 * i + 2 * h], O[4 * i + 2 * h + 1]);
        }
}

// Two fresh 64 x 64 accumulators, fenced for the warpgroup MMAs that follow; and the wait for
// those MMAs, after which both may be read.
__device__ __forceinline__ void lw_fresh(float (&A)[32], float (&O)[32]) {
#pragma unroll
    for (int e = 0; e < 32; e++) {
        A[e] = 0.f;
        O[e] = 0.f;
    }
    wgmma_hold<32>(A);
    wgmma_hold<32>(O);
    wgmma_fence();
}
__device__ __forceinline__ void lw_wait(float (&A)[32], float (&O)[32]) {
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_hold<32>(A);
    wgmma_hold<32>(O);
}

// Rows c0 .. c0 + n - 1 (n <= 64) of NT (T, 128) bf16 matrices into NT consecutive canonical tiles
// at b (rows past n: zeros), by cp.async; pol: an L2 policy (l2_policy) for every copy, or none
// when hint is false.
template <int NT>
__device__ __forceinline__ void lw_fetch(unsigned char* b, const bf16* const (&src)[NT], int c0, int n, bool hint, u64 pol) {
#pragma unroll
    for (int it = 0; it < NT * 4; it++) {  // (unrolled: the tile, and so src[tile], known at compile time)
        const int e = it * 256 + threadIdx.x, tile = it >> 2, r = (e >> 4) & 63, c = (e & 15) * 8;
        const bool ok = r < n;
        const bf16* from = ok ? src[tile] + (long)(c0 + r) * 128 + c : src[tile];
        unsigned char* to = b + tile * LW_TILE + lw_off(r, c);
        if (hint)
            cp_async16_hint(to, from, ok, pol);
        else
            cp_async16(to, from, ok);
    }
}

// S_w += K^T V_w (8 m64n64k16; K^T read MN-major from the K tile, V's Dv half w): the state update
// of every walk (the backward's: G_w += Q^T dO_w).
__device__ __forceinline__ void lw_update_state(float (&S)[2][32], const unsigned char* K, const unsigned char* V, const unsigned char* smem) {
    const int wg = threadIdx.x >> 7;
#pragma unroll
    for (int mh = 0; mh < 2; mh++)
#pragma unroll
        for (int j = 0; j < 4; j++)
            wgmma_m64n64k16<1, 1>(S[mh], wgmma_desc(K + mh * 8192 + j * 2048, 8192, 1024, smem),
                                  wgmma_desc(V + wg * 8192 + j * 2048, 8192, 1024, smem), smem);
}

// One walk over chunks first, first +- 1, .. (count of them) from the state S (this thread's part,
// as lw_at), which it carries on: S ends as S + the sum of K^T V over the walk. OUT = false: the
// states-only walk (no Q, no O, no S copy), for a segment's sum. Ends with nothing in flight;
// another walk in the same block needs a __syncthreads first (the last chunk's tiles are read).
// l2 >= 0: every load with that L2 priority (1: evict last, the walk's data is read again soon;
// 0: evict first, a last read).
template <bool OUT>
__device__ __forceinline__ void lw_body(const bf16* __restrict__ qh, const bf16* __restrict__ kh, const bf16* __restrict__ vh,
                                        float (&S)[2][32], bf16* __restrict__ oh, int first, int count, int t_len, int rev,
                                        unsigned char* smem, int l2 = -1) {
    unsigned char* base = smem + ((1024 - (int)((unsigned long long)smem & 1023)) & 1023);
    const int wg = threadIdx.x >> 7;
    constexpr int BUF = OUT ? LW_BUF : 2 * LW_TILE;  // one chunk buffer: [Q,] K, V
    unsigned char* Sw = base + LW_ST * LW_BUF + wg * LW_S;

    const u64 pol = l2 < 0 ? 0 : l2_policy(l2 == 1);  // l2: -1 no hint, 1 evict_last, 0 evict_first
    auto fetch = [&](int ci, int buf) {  // chunk ci of the walk: [Q,] K, V rows c0 .. c0 + 63
        const int c0 = (rev ? first - ci : first + ci) * LW_C, n = min(LW_C, t_len - c0);
        if constexpr (OUT) {
            const bf16* const src[3] = {qh, kh, vh};
            lw_fetch<3>(base + buf * BUF, src, c0, n, l2 >= 0, pol);
        } else {
            const bf16* const src[2] = {kh, vh};
            lw_fetch<2>(base + buf * BUF, src, c0, n, l2 >= 0, pol);
        }
    };
    auto publish = [&]() { lw_publish(Sw, S); };

    // chunks 0 and 1 in flight (a group each, empty past the walk's end, so every wait below
    // leaves exactly the newest group pending)
#pragma unroll
    for (int p = 0; p < LW_ST - 1; p++) {
        if (p < count) fetch(p, p);
        cp_async_commit();
    }
    if (OUT) publish();
    for (int ci = 0; ci < count; ci++) {
        const int buf = ci % LW_ST, c0 = (rev ? first - ci : first + ci) * LW_C, n = min(LW_C, t_len - c0);
        cp_async_wait<LW_ST - 2>();
        fence_proxy_async();
        __syncthreads();  // chunk ci landed for all; both S copies refreshed; chunk ci - 1 done
        if (ci + LW_ST - 1 < count) fetch(ci + LW_ST - 1, (ci + LW_ST - 1) % LW_ST);  // into chunk ci - 1's buffer
        cp_async_commit();
        const unsigned char* Q = base + buf * BUF;
        const unsigned char* K = OUT ? Q + LW_TILE : Q;
        const unsigned char* V = K + LW_TILE;

        if (!OUT) {  // ---- states only: S_w += K^T V_w
            wgmma_fence();
            lw_update_state(S, K, V, smem);
            wgmma_commit();
            wgmma_wait<0>();
            wgmma_hold<32>(S[0]);
            wgmma_hold<32>(S[1]);
            continue;
        }
        // ---- 1. A = Q K^T, O = Q S_w (k-step kk: Dk columns 16 kk .., 32 bytes into a 128-byte row)
        float A[32], O[32];
        lw_fresh(A, O);
#pragma unroll
        for (int kk = 0; kk < 8; kk++) {
            const int at = (kk >> 2) * 8192 + (kk & 3) * 32;
            wgmma_m64n64k16<0, 0>(A, wgmma_desc(Q + at, 16, 1024, smem), wgmma_desc(K + at, 16, 1024, smem), smem);
        }
#pragma unroll
        for (int kk = 0; kk < 8; kk++) {
            const int at = (kk >> 2) * 8192 + (kk & 3) * 32;
            wgmma_m64n64k16<0, 1>(O, wgmma_desc(Q + at, 16, 1024, smem), wgmma_desc(Sw + kk * 2048, 8192, 1024, smem), smem);
        }
        lw_wait(A, O);

        // ---- 2. A masked and packed as the A operand
        u32 af[4][4];
        lw_mask_pack(A, af, rev);
        wgmma_fence();
#pragma unroll
        for (int j = 0; j < 4; j++) wgmma_m64n64k16_rs<1>(O, af[j], wgmma_desc(V + wg * 8192 + j * 2048, 8192, 1024, smem), smem);
        // (also after the segment's last chunk, where nothing reads S: a branch around MMAs on
        // accumulators makes ptxas serialise every wgmma of the kernel, C7514)
        lw_update_state(S, K, V, smem);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_hold<32>(O);
        wgmma_hold<32>(S[0]);
        wgmma_hold<32>(S[1]);

        // ---- 3. O stored; S_w's copy refreshed (this chunk's reads of it are done)
        lw_store_rows(oh, O, c0, n);
        if (ci + 1 < count) publish();
    }
    cp_async_wait<0>();  // nothing in flight at exit
}

// This thread's part of a (Dk, Dv) f32 state, in or out (S[mh][e], S[mh][e + 1]: 8 bytes).
__device__ __forceinline__ void lw_load(float (&S)[2][32], const float* __restrict__ src) {
#pragma unroll
    for (int mh = 0; mh < 2; mh++)
#pragma unroll
        for (int e = 0; e < 32; e += 2) {
            const float2 p = *reinterpret_cast<const float2*>(src + lw_at(mh, e));
            S[mh][e] = p.x;
            S[mh][e + 1] = p.y;
        }
}
__device__ __forceinline__ void lw_store(float* __restrict__ dst, const float (&S)[2][32]) {
#pragma unroll
    for (int mh = 0; mh < 2; mh++)
#pragma unroll
        for (int e = 0; e < 32; e += 2) *reinterpret_cast<float2*>(dst + lw_at(mh, e)) = make_float2(S[mh][e], S[mh][e + 1]);
}

// Segment j of head h (seg_len chunks, the last one shorter): its first
// chunk in walk order (rev: from the end), its chunk count, and head h's row offset (128 wide).
struct LwSeg {
    long h, j, off;
    int first, count;
};
__device__ __forceinline__ LwSeg lw_segment(long h, long j, int t_len, int seg_len, int rev) {
    LwSeg g;
    g.h = h;
    g.j = j;
    const int nchunks = (t_len + LW_C - 1) / LW_C, start = (int)g.j * seg_len;
    g.first = rev ? nchunks - 1 - start : start;
    g.count = min(seg_len, nchunks - start);
    g.off = g.h * (long)t_len * 128;
    return g;
}

// Grid (BH * nseg): block x = h * nseg + j walks segment j (seg_len chunks, the last one shorter)
// of head h from the f32 state ws[(h * nseg + j)]; dk, dv and vec are checked by the launcher
// (128, 128, 16-byte rows) and kept for linattn_tc128_seg_out_bf16's argument list.
extern "C" __global__ void __launch_bounds__(256, 1) linattn_wg_seg_out_bf16(const bf16* q, const bf16* k, const bf16* v, const float* ws,
                                                                        bf16* o, int t_len, int dk, int dv, int nseg,
                                                                        int seg_len, int rev, int vec) {
    extern __shared__ __align__(16) unsigned char lw_smem[];
    (void)dk;
    (void)dv;
    (void)vec;
    const LwSeg g = lw_segment(blockIdx.x / nseg, blockIdx.x % nseg, t_len, seg_len, rev);
    float S[2][32];
    lw_load(S, ws + blockIdx.x * (long)(128 * 128));
    lw_body<true>(q + g.off, k + g.off, v + g.off, S, o + g.off, g.first, g.count, t_len, rev, lw_smem);
}

// The segments' own sums, as linattn_tc128_seg_states_bf16: grid (BH * nrun), block x = h * nrun + j
// sums segment j of head h into ws[h * nseg + j]. Dynamic shared memory: WG_STATES_SMEM.
extern "C" __global__ void __launch_bounds__(256, 1) linattn_wg_seg_states_bf16(const bf16* k, const bf16* v, float* ws, int t_len,
                                                                           int dk, int dv, int nseg, int nrun, int seg_len,
                                                                           int rev, int vec) {
    extern __shared__ __align__(16) unsigned char lw_smem[];
    (void)dk;
    (void)dv;
    (void)vec;
    const LwSeg g = lw_segment(blockIdx.x / nrun, blockIdx.x % nrun, t_len, seg_len, rev);
    float S[2][32] = {};
    lw_body<false>(nullptr, k + g.off, v + g.off, S, nullptr, g.first, g.count, t_len, rev, lw_smem);
    lw_store(ws + (g.h * nseg + g.j) * (long)(128 * 128), S);
}

// A fused walk's step 2 for segment g.j of head g.h (below): S holds the segment's own sum agg_j
// (unless nobody needs it: the last segment without s_final) and becomes its starting state P_j =
// the inclusive state of segment j - 1 (waited for through its flag) or s0 (bf16, strides ss0,
// ss1; null: zeros) for j = 0; P_j + agg_j goes to ws[h][j] (flag set) unless j is the last
// segment, which writes it to s_final (bf16) if asked. ws: (BH, nseg, 128, 128) f32; sync: the
// ticket counter, then a flag per (head, segment). Leaves the block synchronised (the walk before
// it done with its tiles).
__device__ __forceinline__ void lw_chain(float (&S)[2][32], const LwSeg& g, float* ws, unsigned* sync, int nseg, const bf16* s0,
                                         long ss0, long ss1, bf16* s_final) {
    constexpr long PER = 128 * 128;
    float* wsh = ws + g.h * nseg * PER;      // head h's inclusive states, one a segment
    unsigned* flags = sync + 1 + g.h * nseg;  // ... and their flags
    const bool last = g.j + 1 == nseg;
    if (g.j > 0 && threadIdx.x == 0) flag_wait(flags + g.j - 1);
    __syncthreads();  // (also: the walk before this has its last tiles read by both warpgroups)
#pragma unroll
    for (int mh = 0; mh < 2; mh++)
#pragma unroll
        for (int e = 0; e < 32; e += 2) {  // (S[mh][e], S[mh][e + 1]: two adjacent columns, 8 bytes)
            const int at = lw_at(mh, e);
            float2 p = make_float2(0.f, 0.f);
            if (g.j > 0)
                p = __ldcg(reinterpret_cast<const float2*>(wsh + (g.j - 1) * PER + at));  // (past L1: another SM wrote it)
            else if (s0 != nullptr)
                p = make_float2(bf2f(s0[g.h * PER + (at >> 7) * ss0 + (at & 127) * ss1]), bf2f(s0[g.h * PER + (at >> 7) * ss0 + ((at + 1) & 127) * ss1]));
            const float2 incl = make_float2(p.x + S[mh][e], p.y + S[mh][e + 1]);
            if (!last)
                *reinterpret_cast<float2*>(wsh + g.j * PER + at) = incl;
            else if (s_final != nullptr)
                *reinterpret_cast<u32*>(s_final + g.h * PER + at) = pack_bf16(incl.x, incl.y);
            S[mh][e] = p.x;
            S[mh][e + 1] = p.y;
        }
    if (!last) __threadfence();  // every thread's part of ws[h][j] is visible GPU-wide ...
    __syncthreads();                // (and every thread has read ws[h][j - 1])
    if (!last && threadIdx.x == 0) flag_set(flags + g.j);  // ... before the flag says so
    if (g.j > 0)  // ws[h][j - 1] is dead: out of L2 without costing HBM writes
        for (int i = threadIdx.x; i < PER * 4 / 128; i += 256) discard_l2(reinterpret_cast<char*>(wsh + (g.j - 1) * PER) + i * 128);
}

// The fused form of the three launches above (`KILN_LINATTN=wgmma-fused`): one launch, grid
// (BH * nseg), in which each block takes a ticket t (the order blocks start in, whatever the
// hardware's) and walks segment j = t / BH of head h = t % BH:
//   1. when a later segment (or s_final) needs it: its own sum agg_j (K and V read; phase 3 reads
//      them again, from L2 while the blocks in flight hold less than it);
//   2. its starting state P_j = the inclusive state of segment j - 1 (s0 for j = 0), waited for
//      through sync[1 + h * nseg + j - 1]; then, if anyone needs it, its own inclusive state
//      P_j + agg_j into ws[h][j] and its flag set (the last segment: s_final instead);
//   3. the output walk from P_j.
// Every block waits only for smaller tickets, which are running or done: no deadlock, whatever
// the residency. P_j = ((s0 + agg_0) + agg_1) + ... in this order, as linattn_seg_prefix adds them,
// so o and s_final are bitwise the three launches'. Segment-major tickets: a head's later segments
// start later, when the chain before them has long been published.
// ws: (BH, nseg, 128, 128) f32 scratch; sync: 1 + BH * nseg words, zeros at launch ([0]: the
// ticket counter); each state's lines are dropped from L2 once read (discard_l2), and the first
// walk's K and V loads ask L2 to keep them (evict_last), the second's to drop them first. s0 as
// linattn_seg_prefix's (bf16, strides ss0, ss1; null: zeros); s_final (bf16, (BH, 128, 128)) or
// null. Dynamic shared memory: WG_SMEM.
extern "C" __global__ void __launch_bounds__(256, 1) linattn_wg_fused_bf16(const bf16* q, const bf16* k, const bf16* v, const bf16* s0,
                                                                      bf16* s_final, float* ws, unsigned* sync, bf16* o, int t_len,
                                                                      int bh, int nseg, int seg_len, long ss0, long ss1, int rev) {
    extern __shared__ __align__(16) unsigned char lw_smem[];
    __shared__ unsigned ticket;
    if (threadIdx.x == 0) ticket = atomicAdd(sync, 1u);
    __syncthreads();
    const LwSeg g = lw_segment(ticket % bh, ticket / bh, t_len, seg_len, rev);
    const bool publish = g.j + 1 < nseg || s_final != nullptr;

    float S[2][32] = {};
    if (publish) {  // 1. agg_j
        lw_body<false>(nullptr, k + g.off, v + g.off, S, nullptr, g.first, g.count, t_len, rev, lw_smem, 1);  // (K, V read again below)
    }
    lw_chain(S, g, ws, sync, nseg, s0, ss0, ss1, s_final);  // 2. P_j (and P_j + agg_j where needed)
    // 3. the outputs
    lw_body<true>(q + g.off, k + g.off, v + g.off, S, o + g.off, g.first, g.count, t_len, rev, lw_smem, 0);
}

#include "linear_attention_wg_bwd.cuh"

// The backward's dK and dV (rev walks), fused as linattn_wg_fused_bf16: grid (BH * nseg), a ticket
// t per block for segment j = t / BH of head h = t % BH, in walk order (the last chunks first):
//   1. its own sum of Q^T dO (every segment: the last one's completes dS0), evict_last (read again in 3);
//   2. lw_chain: its starting state G_j, its inclusive state published; the last segment writes
//      the final state dS0 (bf16 (BH, 128, 128));
//   3. lw_bwd_body: dK, dV (bf16 (BH, T, 128)) from G_j.
// q, k, v, dout: (BH, T, 128) bf16. ws, sync as linattn_wg_fused_bf16's. Dynamic shared memory:
// WG_BWD_SMEM.
extern "C" __global__ void __launch_bounds__(256, 1) linattn_wg_fused_dkdv_bf16(const bf16* q, const bf16* k, const bf16* v,
                                                                           const bf16* dout, bf16* dk, bf16* dv, bf16* ds0, float* ws,
                                                                           unsigned* sync, int t_len, int bh, int nseg, int seg_len) {
    extern __shared__ __align__(16) unsigned char lw_smem[];
    __shared__ unsigned ticket;
    if (threadIdx.x == 0) ticket = atomicAdd(sync, 1u);
    __syncthreads();
    const LwSeg g = lw_segment(ticket % bh, ticket / bh, t_len, seg_len, 1);
    float G[2][32] = {};
    // 1. (the states-only walk sums K^T V: here Q^T dO)
    lw_body<false>(nullptr, q + g.off, dout + g.off, G, nullptr, g.first, g.count, t_len, 1, lw_smem, 1);
    lw_chain(G, g, ws, sync, nseg, nullptr, 0, 0, ds0);  // 2.
    lw_bwd_body(q + g.off, k + g.off, v + g.off, dout + g.off, G, dk + g.off, dv + g.off, g.first, g.count, t_len, lw_smem, 0);  // 3.
}
