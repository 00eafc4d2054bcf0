// kernels/attention_tc_bwd.cu: the bf16 causal GQA attention backward on tensor cores (mma.sync,
// f32 accumulate). Twin: backend/cpu/attention.rs; the same math as attn_bwd_dq / attn_bwd_dkdv in
// attention.cu (shapes there), from the forward's row logsumexp lse (B, Hq, Tq):
//   P = exp(s Q K^T - lse) (causal; exp_approx, one MUFU.EX2), delta_i = dO_i . O_i, dS = P * (dO V^T - delta)
//   dQ = s dS K                       (attn_bwd_dq_tc: one block per 64 query rows; writes delta)
//   dV = P^T dO, dK = s dS^T Q        (attn_bwd_dkdv_tc: one block per 64 keys, summed over the
//                                      group's query heads in head order, then query tiles in order)
// 128 threads (4 warps); warp w owns rows 16 w .. 16 w + 15 of the block's 64 (queries or keys),
// each thread rows g and g + 8 (g = lane / 4) in the mma fragment layout. Streamed tiles (K / V for
// dQ; Q / dO with their lse and delta for dK / dV) are double-buffered by cp.async. Products whose
// left operand is computed (dS, P^T, dS^T) take it straight from the f32 accumulators, rounded to
// bf16 (a C fragment pair is an A fragment); dS^T uses the bf16 P^T (registers). Deterministic:
// fixed orders, no atomics.

#define AB_T 64     // rows per block and per streamed tile

// Fragment loaders for a [64][LD] bf16 tile X at k-step kk (16 wide), rows / columns in 16s:
//   ab_a:     A fragment of rows r0 .. r0 + 15 of X (X row-major, k along the row)
//   ab_bcol:  B fragments (n 8 * ni .. + 15, two n-tiles) of X^T: X's rows are n, k along the row
//   ab_brow:  B fragments (n c0 .. c0 + 15) of X itself: X's rows are k (transposing load)
__device__ __forceinline__ void ab_a(u32 a[4], const bf16* X, int LD, int r0, int kk, int lane) {
    ldmatrix_x4(a, X + (r0 + (lane & 15)) * LD + 16 * kk + (lane >> 4) * 8);
}
__device__ __forceinline__ void ab_bcol(u32 b0[2], u32 b1[2], const bf16* X, int LD, int n0, int kk, int lane) {
    u32 r[4];
    ldmatrix_x4(r, X + (n0 + (lane & 7) + (lane >> 4) * 8) * LD + 16 * kk + ((lane >> 3) & 1) * 8);
    b0[0] = r[0]; b0[1] = r[1]; b1[0] = r[2]; b1[1] = r[3];
}
__device__ __forceinline__ void ab_brow(u32 b0[2], u32 b1[2], const bf16* X, int LD, int c0, int kk, int lane) {
    u32 r[4];
    ldmatrix_x4_trans(r, X + (16 * kk + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + c0 + (lane >> 4) * 8);
    b0[0] = r[0]; b0[1] = r[1]; b1[0] = r[2]; b1[1] = r[3];
}
// acc (16 x 64, 8 n-tiles) += A (16 x DP, shared X rows r0..) times Y^T (Y's 64 rows are n, DP wide).
template <int DP>
__device__ __forceinline__ void ab_xyt(float acc[8][4], const bf16* X, const bf16* Y, int LD, int r0, int lane) {
#pragma unroll
    for (int kk = 0; kk < DP / 16; kk++) {
        u32 a[4];
        ab_a(a, X, LD, r0, kk, lane);
#pragma unroll
        for (int ni = 0; ni < 8; ni += 2) {
            u32 b0[2], b1[2];
            ab_bcol(b0, b1, Y, LD, 8 * ni, kk, lane);
            mma_bf16_16816(acc[ni], a, b0);
            mma_bf16_16816(acc[ni + 1], a, b1);
        }
    }
}
// A 16 x 64 accumulator (8 n-tiles) as four bf16 A fragments (k-steps of 16), and back: element
// (ni, e) sits in fragment ni / 2, register 2 (ni % 2) + e / 2, half e % 2.
__device__ __forceinline__ void ab_pack(u32 pa[4][4], const float c[8][4]) {
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        pa[kk][0] = pack_bf16(c[2 * kk][0], c[2 * kk][1]);
        pa[kk][1] = pack_bf16(c[2 * kk][2], c[2 * kk][3]);
        pa[kk][2] = pack_bf16(c[2 * kk + 1][0], c[2 * kk + 1][1]);
        pa[kk][3] = pack_bf16(c[2 * kk + 1][2], c[2 * kk + 1][3]);
    }
}
__device__ __forceinline__ float ab_unpack(const u32 pa[4][4], int ni, int e) {
    const u32 w = pa[ni / 2][2 * (ni % 2) + (e >> 1)];
    return __uint_as_float((e & 1) ? (w & 0xffff0000u) : (w << 16));
}
// acc (16 x DP) += A (16 x 64, bf16 fragments) times Y (64 x DP, rows are k).
template <int DP>
__device__ __forceinline__ void ab_ay(float acc[DP / 8][4], const u32 pa[4][4], const bf16* Y, int LD, int lane) {
#pragma unroll
    for (int kk = 0; kk < 4; kk++)
#pragma unroll
        for (int ni = 0; ni < DP / 8; ni += 2) {
            u32 b0[2], b1[2];
            ab_brow(b0, b1, Y, LD, 8 * ni, kk, lane);
            mma_bf16_16816(acc[ni], pa[kk], b0);
            mma_bf16_16816(acc[ni + 1], pa[kk], b1);
        }
}
// acc (16 x DP) += C (16 x 64, f32 accumulators, rounded to bf16) times Y (64 x DP, rows are k).
template <int DP>
__device__ __forceinline__ void ab_cy(float acc[DP / 8][4], const float c[8][4], const bf16* Y, int LD, int lane) {
    u32 pa[4][4];
    ab_pack(pa, c);
    ab_ay<DP>(acc, pa, Y, LD, lane);
}
template <int N>
__device__ __forceinline__ void ab_zero(float (&acc)[N][4]) {
#pragma unroll
    for (int i = 0; i < N; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[i][e] = 0.f;
}
// Rows r0 + 16 wr + g (+ 8), columns c0 .. c0 + NC - 1 of a (., D) output from acc * mult: rows
// < rows_end, columns < D.
template <int NC>
__device__ __forceinline__ void ab_store(bf16* out, const float acc[NC / 8][4], long r0, int rows_end, int c0, int D, float mult, int lane, int wr) {
    const int g = lane >> 2, t = lane & 3;
    const bool pair = (D & 1) == 0;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const long i = r0 + 16 * wr + g + 8 * h;
        if (i >= rows_end) continue;
#pragma unroll
        for (int ni = 0; ni < NC / 8; ni++) {
            const int c = 8 * ni + 2 * t;
            store_bf16x2(out + i * D + c0, c, c, D - c0, pair, acc[ni][2 * h] * mult, acc[ni][2 * h + 1] * mult);
        }
    }
}

// ---- dQ (and delta). Grid (ceil(Tq / 64), B * Hq). Shared (bf16): Q, dO [64][LD] | K, V
// [2][64][LD]; f32: lse, delta [64].
template <int DP>
__device__ void attn_bwd_dq_tc_body(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                    const bf16* __restrict__ o, const bf16* __restrict__ dout, const float* __restrict__ lse,
                                    float* __restrict__ delta, bf16* __restrict__ dq, int Hq, int Hkv, int Tq, int Tk, int D,
                                    float scale, bool vec) {
    constexpr int LD = DP + 8;
    extern __shared__ __align__(16) unsigned char ab_smem[];
    bf16* Qs = reinterpret_cast<bf16*>(ab_smem);
    bf16* Os = Qs + AB_T * LD;  // dO
    bf16* Ks = Os + AB_T * LD;
    bf16* Vs = Ks + 2 * AB_T * LD;
    float* Ls = reinterpret_cast<float*>(Vs + 2 * AB_T * LD);
    float* Ds = Ls + AB_T;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int bh = blockIdx.y, q0 = blockIdx.x * AB_T;
    const long kvbase = ((long)(bh / Hq) * Hkv + (bh % Hq) / (Hq / Hkv)) * Tk * D;
    const long qbase = (long)bh * Tq * D;
    const int kend = Tk - Tq + min(q0 + AB_T, Tq), ntiles = (kend + AB_T - 1) / AB_T;
    auto fetch = [&](int j, int buf) {
        const int n = min(AB_T, Tk - j * AB_T);
        load_rows_bf16<AB_T>(Ks + buf * AB_T * LD, LD, k + kvbase, (long)j * AB_T, n, D, 0, DP, vec);
        load_rows_bf16<AB_T>(Vs + buf * AB_T * LD, LD, v + kvbase, (long)j * AB_T, n, D, 0, DP, vec);
    };
    load_rows_bf16<AB_T>(Qs, LD, q + qbase, q0, Tq - q0, D, 0, DP, vec);
    load_rows_bf16<AB_T>(Os, LD, dout + qbase, q0, Tq - q0, D, 0, DP, vec);
    fetch(0, 0);
    cp_async_commit();
    // delta_i = dO_i . O_i (f32, from global), written for the dK / dV kernel; lse of the rows.
    for (int rr = warp; rr < AB_T; rr += 4) {
        const int i = q0 + rr;
        float s = 0.f;
        if (i < Tq)
            for (int d = lane; d < D; d += 32) s += bf2f(dout[qbase + (long)i * D + d]) * bf2f(o[qbase + (long)i * D + d]);
        s = warp_sum(s);
        if (lane == 0) {
            Ds[rr] = s;
            Ls[rr] = i < Tq ? lse[(long)bh * Tq + i] : 0.f;
            if (i < Tq) delta[(long)bh * Tq + i] = s;
        }
    }
    int pos[2];
    float L[2], Dl[2];
    float acc[DP / 8][4];
    ab_zero(acc);
    for (int j = 0; j < ntiles; j++) {
        cp_async_wait<0>();
        __syncthreads();  // tile j, Q, dO, lse, delta landed for all; tile j - 1's readers are done
        if (j == 0) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int rr = 16 * warp + g + 8 * h, i = q0 + rr;
                pos[h] = i < Tq ? Tk - Tq + i : -1;  // rows past Tq see no key: P = 0
                L[h] = Ls[rr];
                Dl[h] = Ds[rr];
            }
        }
        if (j + 1 < ntiles) fetch(j + 1, (j + 1) & 1);
        cp_async_commit();
        const bf16* K = Ks + (j & 1) * AB_T * LD;
        const bf16* V = Vs + (j & 1) * AB_T * LD;
        float s[8][4], dp[8][4];
        ab_zero(s);
        ab_zero(dp);
        ab_xyt<DP>(s, Qs, K, LD, 16 * warp, lane);   // S = Q K^T
        ab_xyt<DP>(dp, Os, V, LD, 16 * warp, lane);  // dP = dO V^T
#pragma unroll
        for (int ni = 0; ni < 8; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = j * AB_T + 8 * ni + 2 * t + (e & 1), h = e >> 1;
                const float p = key <= pos[h] ? exp_approx(s[ni][e] * scale - L[h]) : 0.f;
                s[ni][e] = p * (dp[ni][e] - Dl[h]);  // dS
            }
        ab_cy<DP>(acc, s, K, LD, lane);  // dQ += dS K
    }
    cp_async_wait<0>();
    ab_store<DP>(dq + qbase, acc, q0, Tq, 0, D, scale, lane, warp);
}

// ---- dK, dV. Grid (ceil(Tk / 64), B * Hkv), 64 NH threads. Shared (bf16): K, V [64][LD] | Q, dO
// [2][64][LD]; f32: lse, delta [2][64]. Streams (query head of the group, query tile) in order,
// from the first query tile that sees one of the block's keys. NH = DP / 64 warp sets: warp w owns
// keys 16 (w % 4) .. and the columns (w / 4) * 64 .. + 63 of dK and dV (so their accumulators
// take 32 registers each); each set computes S^T and dP^T for its keys in full.
template <int DP>
__device__ void attn_bwd_dkdv_tc_body(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                      const bf16* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta,
                                      bf16* __restrict__ dk, bf16* __restrict__ dv, int Hq, int Hkv, int Tq, int Tk, int D,
                                      float scale, bool vec) {
    constexpr int LD = DP + 8;
    extern __shared__ __align__(16) unsigned char ab_smem[];
    bf16* Ks = reinterpret_cast<bf16*>(ab_smem);
    bf16* Vs = Ks + AB_T * LD;
    bf16* Qs = Vs + AB_T * LD;
    bf16* Os = Qs + 2 * AB_T * LD;  // dO
    float* Ls = reinterpret_cast<float*>(Os + 2 * AB_T * LD);
    float* Ds = Ls + 2 * AB_T;
    constexpr int NC = 64;  // dK / dV columns per warp
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int warp = (threadIdx.x >> 5) & 3, c0 = (threadIdx.x >> 7) * NC;  // key rows 16 warp.., columns c0..
    const int bkv = blockIdx.y, k0 = blockIdx.x * AB_T, G = Hq / Hkv;
    const int b = bkv / Hkv, hkv = bkv % Hkv;
    const long kvbase = (long)bkv * Tk * D;
    const int off = Tk - Tq;                        // query i sees keys <= off + i
    const int qt0 = max(0, k0 - off) / AB_T;        // first query tile that sees a key of the block
    const int nqt = (Tq + AB_T - 1) / AB_T, per = max(0, nqt - qt0), total = G * per;
    auto fetch = [&](int idx, int buf) {
        const int hq = hkv * G + idx / per, i0 = (qt0 + idx % per) * AB_T, n = min(AB_T, Tq - i0);
        const long qb = ((long)b * Hq + hq) * Tq * D, rb = ((long)b * Hq + hq) * Tq;
        load_rows_bf16<AB_T>(Qs + buf * AB_T * LD, LD, q + qb, i0, n, D, 0, DP, vec);
        load_rows_bf16<AB_T>(Os + buf * AB_T * LD, LD, dout + qb, i0, n, D, 0, DP, vec);
        for (int e = threadIdx.x; e < AB_T; e += blockDim.x) {  // plain loads: this buffer is idle
            Ls[buf * AB_T + e] = e < n ? lse[rb + i0 + e] : 0.f;
            Ds[buf * AB_T + e] = e < n ? delta[rb + i0 + e] : 0.f;
        }
    };
    load_rows_bf16<AB_T>(Ks, LD, k + kvbase, k0, Tk - k0, D, 0, DP, vec);
    load_rows_bf16<AB_T>(Vs, LD, v + kvbase, k0, Tk - k0, D, 0, DP, vec);
    if (total > 0) fetch(0, 0);
    cp_async_commit();
    float adk[NC / 8][4], adv[NC / 8][4];
    ab_zero(adk);
    ab_zero(adv);
    for (int idx = 0; idx < total; idx++) {
        cp_async_wait<0>();
        __syncthreads();  // tile idx (and K, V) landed for all; tile idx - 1's readers are done
        if (idx + 1 < total) fetch(idx + 1, (idx + 1) & 1);
        cp_async_commit();
        const int buf = idx & 1, i0 = (qt0 + idx % per) * AB_T;
        const bf16* Q = Qs + buf * AB_T * LD;
        const bf16* dO = Os + buf * AB_T * LD;
        const float* L = Ls + buf * AB_T;
        const float* Dl = Ds + buf * AB_T;
        float st[8][4];
        ab_zero(st);
        ab_xyt<DP>(st, Ks, Q, LD, 16 * warp, lane);  // S^T = K Q^T (keys x queries)
#pragma unroll
        for (int ni = 0; ni < 8; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int c = 8 * ni + 2 * t + (e & 1), i = i0 + c;               // query
                const int key = k0 + 16 * warp + g + 8 * (e >> 1);
                st[ni][e] = (i < Tq && key <= off + i) ? exp_approx(st[ni][e] * scale - L[c]) : 0.f;  // P^T
            }
        // P^T kept as bf16 fragments only (registers: dK and dV take 2 DP / 4 per thread)
        u32 pt[4][4];
        ab_pack(pt, st);
        ab_ay<NC>(adv, pt, dO + c0, LD, lane);  // dV += P^T dO (columns c0..)
        float dpt[8][4];
        ab_zero(dpt);
        ab_xyt<DP>(dpt, Vs, dO, LD, 16 * warp, lane);  // dP^T = V dO^T
#pragma unroll
        for (int ni = 0; ni < 8; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) dpt[ni][e] = ab_unpack(pt, ni, e) * (dpt[ni][e] - Dl[8 * ni + 2 * t + (e & 1)]);  // dS^T
        ab_cy<NC>(adk, dpt, Q + c0, LD, lane);  // dK += dS^T Q (columns c0..)
    }
    cp_async_wait<0>();
    ab_store<NC>(dk + kvbase, adk, k0, Tk, c0, D, scale, lane, warp);
    ab_store<NC>(dv + kvbase, adv, k0, Tk, c0, D, 1.f, lane, warp);
}

// attn_bwd_{dq,dkdv}_tc<DP>_bf16: attn_bwd_{dq,dkdv}_bf16's arguments (attention.cu) plus vec
// (16-byte loads: D a multiple of 8). Threads: 128 (dq), 2 DP (dkdv). Shared bytes:
// backend/cuda/attention.rs.
#define ATTN_BWD_TC(DP)                                                                                      \
    extern "C" __global__ void __launch_bounds__(128) attn_bwd_dq_tc##DP##_bf16(                             \
        const bf16* q, const bf16* k, const bf16* v, const bf16* o, const bf16* dout, const float* lse,      \
        float* delta, bf16* dq, int Hq, int Hkv, int Tq, int Tk, int D, float scale, int vec) {              \
        attn_bwd_dq_tc_body<DP>(q, k, v, o, dout, lse, delta, dq, Hq, Hkv, Tq, Tk, D, scale, vec != 0);      \
    }                                                                                                        \
    extern "C" __global__ void __launch_bounds__(2 * DP) attn_bwd_dkdv_tc##DP##_bf16(                           \
        const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse, const float* delta, \
        bf16* dk, bf16* dv, int Hq, int Hkv, int Tq, int Tk, int D, float scale, int vec) {                  \
        attn_bwd_dkdv_tc_body<DP>(q, k, v, dout, lse, delta, dk, dv, Hq, Hkv, Tq, Tk, D, scale, vec != 0);   \
    }
ATTN_BWD_TC(64)
ATTN_BWD_TC(128)
