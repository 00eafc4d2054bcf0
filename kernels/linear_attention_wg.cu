// kernels/linear_attention_wg.cu: the two walks of segmented linear attention on Hopper's warpgroup
// MMA (sm_90a), bf16 with head width Dk = Dv = 128: the segments' sums (linattn_wg_seg_states_bf16)
// and their outputs (linattn_wg_seg_out_bf16), with the contracts and arguments of the
// linattn_tc128_seg_* kernels in linear_attention_tc.cu (whose linattn_seg_prefix runs between
// them), picked by `KILN_LINATTN=wgmma` (backend/cuda/linear_attention_tc.rs). Twin:
// backend/cpu/linear_attention.rs.
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
// V as MN-major B), double-buffered by cp.async; S_w's copy [128 dk][64 dv], MN-major.
// Precision as in linear_attention_tc.cu: f32 state, bf16 products. Deterministic.

#include "wgmma64.cuh"

#define LW_C 64
#define LW_TILE 16384                 // one 64 x 128 bf16 tile
#define LW_BUF (3 * LW_TILE)          // Q, K, V of one chunk
#define LW_S (128 * 64 * 2)           // one warpgroup's bf16 copy of S_w
// dynamic shared memory: 2 * LW_BUF + 2 * LW_S + 1024 (backend/cuda/linear_attention_tc.rs, WG_SMEM)

// Byte offset of element (r, c) of a canonical 64 x 128 tile (r < 64 rows, c < 128 columns).
__device__ __forceinline__ int lw_off(int r, int c) {
    return (c >> 6) * 8192 + r * 128 + ((((c & 63) >> 3) ^ (r & 7)) << 4) + (c & 7) * 2;
}

// OUT = false: the states-only walk (no Q, no O, no S copy): sf = the sum of K^T V over the walk's
// chunks, f32 (Dk, Dv) row-major, for a segment's sum (linattn_wg_seg_states_bf16).
template <bool OUT>
__device__ __forceinline__ void lw_body(const bf16* __restrict__ qh, const bf16* __restrict__ kh, const bf16* __restrict__ vh,
                                        const float* __restrict__ s0f, bf16* __restrict__ oh, float* __restrict__ sf, int first,
                                        int count, int t_len, int rev, unsigned char* smem) {
    unsigned char* base = smem + ((1024 - (int)((unsigned long long)smem & 1023)) & 1023);
    const int wg = threadIdx.x >> 7, w = (threadIdx.x >> 5) & 3, l = threadIdx.x & 31, g = l >> 2, tq = l & 3;
    unsigned char* Sw = base + 2 * LW_BUF + wg * LW_S;

    auto fetch = [&](int ci, int buf) {  // chunk ci of the walk: Q, K, V rows c0 .. c0 + 63
        const int c0 = (rev ? first - ci : first + ci) * LW_C, n = min(LW_C, t_len - c0);
        unsigned char* b = base + buf * LW_BUF;
        for (int e = OUT ? threadIdx.x : 1024 + threadIdx.x; e < 3 * 1024; e += 256) {  // (no Q: states only)
            const int tile = e >> 10, r = (e >> 4) & 63, c = (e & 15) * 8;
            const bf16* src = tile == 0 ? qh : tile == 1 ? kh : vh;
            const bool ok = r < n;
            cp_async16(b + tile * LW_TILE + lw_off(r, c), ok ? src + (long)(c0 + r) * 128 + c : src, ok);
        }
    };
    // S_w in the D fragment of two m64n64 results: S[mh][4i + 2h + c] = S(dk = 64 mh + 16 w + g + 8 h,
    // dv = 64 wg + 8 i + 2 tq + c).
    float S[2][32];
    auto s_at = [&](int mh, int e) {  // where S[mh][e] lives in a (Dk, Dv) row-major f32 state
        return (64 * mh + 16 * w + g + 8 * ((e >> 1) & 1)) * 128 + 64 * wg + 8 * (e >> 2) + 2 * tq + (e & 1);
    };
#pragma unroll
    for (int mh = 0; mh < 2; mh++)
#pragma unroll
        for (int e = 0; e < 32; e++) S[mh][e] = OUT ? s0f[s_at(mh, e)] : 0.f;
    auto publish = [&]() {  // S_w as bf16 into Sw: row dk (128 bytes of 64 dv), swizzled
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
    };

    auto update_state = [&](const unsigned char* K, const unsigned char* V) {  // S_w += K^T V_w: 8 MMAs
#pragma unroll
        for (int mh = 0; mh < 2; mh++)
#pragma unroll
            for (int j = 0; j < 4; j++)
                wgmma_m64n64k16<1, 1>(S[mh], wgmma_desc(K + mh * 8192 + j * 2048, 8192, 1024, smem),
                                      wgmma_desc(V + wg * 8192 + j * 2048, 8192, 1024, smem), smem);
    };

    if (count > 0) fetch(0, 0);
    cp_async_commit();
    if (OUT) publish();
    for (int ci = 0; ci < count; ci++) {
        const int buf = ci & 1, c0 = (rev ? first - ci : first + ci) * LW_C, n = min(LW_C, t_len - c0);
        cp_async_wait<0>();
        fence_proxy_async();
        __syncthreads();  // chunk ci landed for all; both S copies refreshed; chunk ci - 1 done
        if (ci + 1 < count) fetch(ci + 1, buf ^ 1);
        cp_async_commit();
        const unsigned char* Q = base + buf * LW_BUF;
        const unsigned char* K = Q + LW_TILE;
        const unsigned char* V = K + LW_TILE;

        if (!OUT) {  // ---- states only: S_w += K^T V_w
            wgmma_fence();
            update_state(K, V);
            wgmma_commit();
            wgmma_wait<0>();
            wgmma_hold<32>(S[0]);
            wgmma_hold<32>(S[1]);
            continue;
        }
        // ---- 1. A = Q K^T, O = Q S_w (k-step kk: Dk columns 16 kk .., 32 bytes into a 128-byte row)
        float A[32], O[32];
#pragma unroll
        for (int e = 0; e < 32; e++) {
            A[e] = 0.f;
            O[e] = 0.f;
        }
        wgmma_hold<32>(A);
        wgmma_hold<32>(O);
        wgmma_fence();
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
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_hold<32>(A);
        wgmma_hold<32>(O);

        // ---- 2. A masked and packed as the A operand (row r = 16 w + g + 8 h, column s = 8 i + 2 tq + c)
        u32 af[4][4];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = 16 * w + g + 8 * h, s = 8 * i + 2 * tq;
                const float x0 = (rev ? s >= r : s <= r) ? A[4 * i + 2 * h] : 0.f;
                const float x1 = (rev ? s + 1 >= r : s + 1 <= r) ? A[4 * i + 2 * h + 1] : 0.f;
                af[i >> 1][2 * (i & 1) + h] = pack_bf16(x0, x1);
            }
        wgmma_fence();
#pragma unroll
        for (int j = 0; j < 4; j++) wgmma_m64n64k16_rs<1>(O, af[j], wgmma_desc(V + wg * 8192 + j * 2048, 8192, 1024, smem), smem);
        // (also after the segment's last chunk, where nothing reads S: a branch around MMAs on
        // accumulators makes ptxas serialise every wgmma of the kernel, C7514)
        update_state(K, V);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_hold<32>(O);
        wgmma_hold<32>(S[0]);
        wgmma_hold<32>(S[1]);

        // ---- 3. O stored; S_w's copy refreshed (this chunk's reads of it are done)
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = 16 * w + g + 8 * h, dv = 64 * wg + 8 * i + 2 * tq;
                if (r < n) *reinterpret_cast<u32*>(oh + (long)(c0 + r) * 128 + dv) = pack_bf16(O[4 * i + 2 * h], O[4 * i + 2 * h + 1]);
            }
        if (ci + 1 < count) publish();
    }
    cp_async_wait<0>();  // nothing in flight at exit
    if (!OUT) {
#pragma unroll
        for (int mh = 0; mh < 2; mh++)
#pragma unroll
            for (int e = 0; e < 32; e++) sf[s_at(mh, e)] = S[mh][e];
    }
}

// Block x = h * per + j: segment j of head h (seg_len chunks, the last one shorter), its first
// chunk in walk order (rev: from the end), its chunk count, and head h's row offset (128 wide).
struct LwSeg {
    long h, j, off;
    int first, count;
};
__device__ __forceinline__ LwSeg lw_segment(int per, int t_len, int seg_len, int rev) {
    LwSeg g;
    g.h = blockIdx.x / per;
    g.j = blockIdx.x % per;
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
    const LwSeg g = lw_segment(nseg, t_len, seg_len, rev);
    lw_body<true>(q + g.off, k + g.off, v + g.off, ws + blockIdx.x * (long)(128 * 128), o + g.off, nullptr, g.first, g.count, t_len, rev,
                  lw_smem);
}

// The segments' own sums, as linattn_tc128_seg_states_bf16: grid (BH * nrun), block x = h * nrun + j
// sums segment j of head h into ws[h * nseg + j]. Dynamic shared memory: 2 * LW_BUF + 1024.
extern "C" __global__ void __launch_bounds__(256, 1) linattn_wg_seg_states_bf16(const bf16* k, const bf16* v, float* ws, int t_len,
                                                                           int dk, int dv, int nseg, int nrun, int seg_len,
                                                                           int rev, int vec) {
    extern __shared__ __align__(16) unsigned char lw_smem[];
    (void)dk;
    (void)dv;
    (void)vec;
    const LwSeg g = lw_segment(nrun, t_len, seg_len, rev);
    lw_body<false>(nullptr, k + g.off, v + g.off, nullptr, nullptr, ws + (g.h * nseg + g.j) * (long)(128 * 128), g.first, g.count, t_len,
                   rev, lw_smem);
}
