// kernels/attention.cu: causal softmax attention with GQA, flash-style (online softmax, no T x T
// matrix in memory), forward and backward. Twin: backend/cpu/attention.rs.
// q, o, dq, do: (B, Hq, Tq, D); k, v, dk, dv: (B, Hkv, Tk, D); query head h reads kv head h / G
// (G = Hq / Hkv). Query i sits at position p_i = Tk - Tq + i and sees keys 0..=p_i.
// Any D in 1..=128 (each lane owns d = lane + 32 c, c < 4), any T. Storage f32 or bf16; all
// arithmetic in f32 on CUDA cores. lse and delta are f32 (B, Hq, Tq).
//
//   fwd:  S = s Q K^T, P = softmax(S), O = P V, lse = rowmax + log(rowsum exp)     (attn_fwd)
//   bwd:  delta_i = dO_i . O_i;  P = exp(S - lse);  dS = P * (dO V^T - delta)
//         dQ = s dS K                                  (attn_bwd_dq: one block per query tile)
//         dV = P^T dO, dK = s dS^T Q, summed over the group's heads in head order
//                                                      (attn_bwd_dkdv: one block per key tile)
// Every output element is written by exactly one thread, with a fixed summation order: the
// results are deterministic and no atomics are used.

#define AT_WARPS 8
#define AT_THREADS (AT_WARPS * 32)
#define AT_R 4      // rows (fwd, dq: queries; dkdv: keys) per warp
#define AT_BQ 32    // = AT_WARPS * AT_R: query rows per block (fwd, dq), key rows per block (dkdv)
#define AT_BK 64    // keys per streamed tile (fwd, dq), queries per streamed tile (dkdv)
#define AT_DC 4     // d values per lane: D <= 128

// Rows [row0, row0 + rows) of a (., D) tensor into shared memory with row stride ld; rows past
// `limit` are zero.
template <typename T>
__device__ __forceinline__ void at_tile(float* s, int ld, const T* g, long base, int row0, int rows, int limit, int D) {
    for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
        int r = e / D, d = e - r * D;
        s[r * ld + d] = row0 + r < limit ? load(g, base + (long)(row0 + r) * D + d) : 0.f;
    }
}

// ---------------------------------------------------------------------------------------------
// Forward. grid (ceil(Tq / 32), B * Hq), 256 threads; warp w owns query rows q0 + 4w .. +4.
// Streams key tiles of 64: lane j scores keys j and j + 32 of the tile; then each lane
// accumulates its d's of O with P broadcast by shuffles. lse may be null.
// smem: qs (32, D), ks (64, D|1), vs (64, D).
template <typename T>
__device__ __forceinline__ void attn_fwd_body(const T* q, const T* k, const T* v, T* o, float* lse,
                                              int Hq, int Hkv, int Tq, int Tk, int D, float scale) {
    extern __shared__ __align__(16) float at_smem[];
    const int ldk = D | 1;
    float* qs = at_smem;
    float* ks = qs + AT_BQ * D;
    float* vs = ks + AT_BK * ldk;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bh = blockIdx.y, q0 = blockIdx.x * AT_BQ;
    const long kvbase = ((long)(bh / Hq) * Hkv + (bh % Hq) / (Hq / Hkv)) * Tk * D;
    const long qbase = (long)bh * Tq * D;
    at_tile(qs, D, q, qbase, q0, AT_BQ, Tq, D);

    int pos[AT_R];
    float m[AT_R], l[AT_R], acc[AT_R][AT_DC];
#pragma unroll
    for (int r = 0; r < AT_R; r++) {
        int i = q0 + warp * AT_R + r;
        pos[r] = i < Tq ? Tk - Tq + i : Tk - 1;   // rows past Tq compute (unwritten) garbage safely
        m[r] = -KILN_INF;
        l[r] = 0.f;
#pragma unroll
        for (int c = 0; c < AT_DC; c++) acc[r][c] = 0.f;
    }
    const int kend = Tk - Tq + min(q0 + AT_BQ, Tq);   // keys seen by the block's last row
    for (int j0 = 0; j0 < kend; j0 += AT_BK) {
        __syncthreads();   // previous tile fully consumed (and qs written, first time)
        at_tile(ks, ldk, k, kvbase, j0, AT_BK, Tk, D);
        at_tile(vs, D, v, kvbase, j0, AT_BK, Tk, D);
        __syncthreads();
        float s[AT_R][2];
#pragma unroll
        for (int r = 0; r < AT_R; r++) s[r][0] = s[r][1] = 0.f;
        const float* qw = qs + warp * AT_R * D;
        for (int d = 0; d < D; d++) {
            float k0 = ks[lane * ldk + d], k1 = ks[(lane + 32) * ldk + d];
#pragma unroll
            for (int r = 0; r < AT_R; r++) {
                float qv = qw[r * D + d];
                s[r][0] = fmaf(qv, k0, s[r][0]);
                s[r][1] = fmaf(qv, k1, s[r][1]);
            }
        }
#pragma unroll
        for (int r = 0; r < AT_R; r++) {
#pragma unroll
            for (int h = 0; h < 2; h++) s[r][h] = j0 + lane + 32 * h <= pos[r] ? s[r][h] * scale : -KILN_INF;
            float mn = fmaxf(m[r], warp_max(fmaxf(s[r][0], s[r][1])));   // finite: key 0 is always seen
            float corr = expf(m[r] - mn);
            s[r][0] = expf(s[r][0] - mn);
            s[r][1] = expf(s[r][1] - mn);
            l[r] = l[r] * corr + warp_sum(s[r][0] + s[r][1]);
            m[r] = mn;
#pragma unroll
            for (int c = 0; c < AT_DC; c++) acc[r][c] *= corr;
        }
        // O += P V: key j of the tile is held by lane j % 32 in s[.][j / 32].
#pragma unroll
        for (int h = 0; h < 2; h++) {
            for (int j = 0; j < 32; j++) {
                const float* vr = vs + (h * 32 + j) * D;
                float vv[AT_DC];
#pragma unroll
                for (int c = 0; c < AT_DC; c++) vv[c] = lane + 32 * c < D ? vr[lane + 32 * c] : 0.f;
#pragma unroll
                for (int r = 0; r < AT_R; r++) {
                    float p = __shfl_sync(0xffffffffu, s[r][h], j);
#pragma unroll
                    for (int c = 0; c < AT_DC; c++) acc[r][c] = fmaf(p, vv[c], acc[r][c]);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < AT_R; r++) {
        int i = q0 + warp * AT_R + r;
        if (i >= Tq) continue;
        float inv = 1.f / l[r];
#pragma unroll
        for (int c = 0; c < AT_DC; c++)
            if (lane + 32 * c < D) store(o, qbase + (long)i * D + lane + 32 * c, acc[r][c] * inv);
        if (lse != nullptr && lane == 0) lse[(long)bh * Tq + i] = m[r] + logf(l[r]);
    }
}

// ---------------------------------------------------------------------------------------------
// Backward, dQ. grid (ceil(Tq / 32), B * Hq), 256 threads; warp w owns query rows q0 + 4w .. +4.
// Also writes delta_i = dO_i . O_i, which attn_bwd_dkdv reads.
// smem: qs, dos (32, D); ks, vs (64, D|1).
template <typename T>
__device__ __forceinline__ void attn_dq_body(const T* q, const T* k, const T* v, const T* o, const T* dout,
                                             const float* lse, float* delta, T* dq,
                                             int Hq, int Hkv, int Tq, int Tk, int D, float scale) {
    extern __shared__ __align__(16) float at_smem[];
    const int ldk = D | 1;
    float* qs = at_smem;
    float* dos = qs + AT_BQ * D;
    float* ks = dos + AT_BQ * D;
    float* vs = ks + AT_BK * ldk;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bh = blockIdx.y, q0 = blockIdx.x * AT_BQ;
    const long kvbase = ((long)(bh / Hq) * Hkv + (bh % Hq) / (Hq / Hkv)) * Tk * D;
    const long qbase = (long)bh * Tq * D;
    at_tile(qs, D, q, qbase, q0, AT_BQ, Tq, D);
    at_tile(dos, D, dout, qbase, q0, AT_BQ, Tq, D);
    __syncthreads();

    int pos[AT_R];
    float L[AT_R], dl[AT_R], acc[AT_R][AT_DC];
#pragma unroll
    for (int r = 0; r < AT_R; r++) {
        int i = q0 + warp * AT_R + r;
        pos[r] = i < Tq ? Tk - Tq + i : -1;   // rows past Tq see no key: P = 0
        float part = 0.f;
#pragma unroll
        for (int c = 0; c < AT_DC; c++) {
            int d = lane + 32 * c;
            if (i < Tq && d < D) part += dos[(warp * AT_R + r) * D + d] * load(o, qbase + (long)i * D + d);
            acc[r][c] = 0.f;
        }
        dl[r] = warp_sum(part);
        L[r] = i < Tq ? lse[(long)bh * Tq + i] : 0.f;
        if (i < Tq && lane == 0) delta[(long)bh * Tq + i] = dl[r];
    }
    const int kend = Tk - Tq + min(q0 + AT_BQ, Tq);
    for (int j0 = 0; j0 < kend; j0 += AT_BK) {
        __syncthreads();
        at_tile(ks, ldk, k, kvbase, j0, AT_BK, Tk, D);
        at_tile(vs, ldk, v, kvbase, j0, AT_BK, Tk, D);
        __syncthreads();
        float s[AT_R][2], dp[AT_R][2];
#pragma unroll
        for (int r = 0; r < AT_R; r++) s[r][0] = s[r][1] = dp[r][0] = dp[r][1] = 0.f;
        const float* qw = qs + warp * AT_R * D;
        const float* dw = dos + warp * AT_R * D;
        for (int d = 0; d < D; d++) {
            float k0 = ks[lane * ldk + d], k1 = ks[(lane + 32) * ldk + d];
            float v0 = vs[lane * ldk + d], v1 = vs[(lane + 32) * ldk + d];
#pragma unroll
            for (int r = 0; r < AT_R; r++) {
                float qv = qw[r * D + d], gv = dw[r * D + d];
                s[r][0] = fmaf(qv, k0, s[r][0]);
                s[r][1] = fmaf(qv, k1, s[r][1]);
                dp[r][0] = fmaf(gv, v0, dp[r][0]);
                dp[r][1] = fmaf(gv, v1, dp[r][1]);
            }
        }
        // s becomes dS = P * (dP - delta)
#pragma unroll
        for (int r = 0; r < AT_R; r++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                float p = j0 + lane + 32 * h <= pos[r] ? expf(s[r][h] * scale - L[r]) : 0.f;
                s[r][h] = p * (dp[r][h] - dl[r]);
            }
#pragma unroll
        for (int h = 0; h < 2; h++) {
            for (int j = 0; j < 32; j++) {
                const float* kr = ks + (h * 32 + j) * ldk;
                float kv[AT_DC];
#pragma unroll
                for (int c = 0; c < AT_DC; c++) kv[c] = lane + 32 * c < D ? kr[lane + 32 * c] : 0.f;
#pragma unroll
                for (int r = 0; r < AT_R; r++) {
                    float g = __shfl_sync(0xffffffffu, s[r][h], j);
#pragma unroll
                    for (int c = 0; c < AT_DC; c++) acc[r][c] = fmaf(g, kv[c], acc[r][c]);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < AT_R; r++) {
        int i = q0 + warp * AT_R + r;
        if (i >= Tq) continue;
#pragma unroll
        for (int c = 0; c < AT_DC; c++)
            if (lane + 32 * c < D) store(dq, qbase + (long)i * D + lane + 32 * c, acc[r][c] * scale);
    }
}

// ---------------------------------------------------------------------------------------------
// Backward, dK and dV. grid (ceil(Tk / 32), B * Hkv), 256 threads; warp w owns keys j0 + 4w .. +4.
// Loops over the group's query heads in order, and over query tiles of 64 from the first query
// that sees the block's first key; lane i scores queries i and i + 32 of the tile.
// smem: ks, vs (32, D); qs, dos (64, D|1); ls, dls (64).
template <typename T>
__device__ __forceinline__ void attn_dkdv_body(const T* q, const T* k, const T* v, const T* dout,
                                               const float* lse, const float* delta, T* dk, T* dv,
                                               int Hq, int Hkv, int Tq, int Tk, int D, float scale) {
    extern __shared__ __align__(16) float at_smem[];
    const int ldq = D | 1;
    float* ks = at_smem;
    float* vs = ks + AT_BQ * D;
    float* qs = vs + AT_BQ * D;
    float* dos = qs + AT_BK * ldq;
    float* ls = dos + AT_BK * ldq;
    float* dls = ls + AT_BK;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bkv = blockIdx.y, j0 = blockIdx.x * AT_BQ;
    const int G = Hq / Hkv;
    const long kvbase = (long)bkv * Tk * D;
    at_tile(ks, D, k, kvbase, j0, AT_BQ, Tk, D);
    at_tile(vs, D, v, kvbase, j0, AT_BQ, Tk, D);

    float gk[AT_R][AT_DC], gv[AT_R][AT_DC];
#pragma unroll
    for (int r = 0; r < AT_R; r++)
#pragma unroll
        for (int c = 0; c < AT_DC; c++) gk[r][c] = gv[r][c] = 0.f;
    const int off = Tk - Tq;                 // query i sees key j iff j <= off + i
    const int istart = max(0, j0 - off);     // first query that sees key j0
    for (int hh = 0; hh < G; hh++) {
        const int bh = (bkv / Hkv) * Hq + (bkv % Hkv) * G + hh;
        const long qbase = (long)bh * Tq * D;
        for (int i0 = istart; i0 < Tq; i0 += AT_BK) {
            __syncthreads();   // previous tile consumed (ks, vs written, first time)
            at_tile(qs, ldq, q, qbase, i0, AT_BK, Tq, D);
            at_tile(dos, ldq, dout, qbase, i0, AT_BK, Tq, D);
            for (int e = threadIdx.x; e < AT_BK; e += blockDim.x) {
                bool ok = i0 + e < Tq;
                ls[e] = ok ? lse[(long)bh * Tq + i0 + e] : 0.f;
                dls[e] = ok ? delta[(long)bh * Tq + i0 + e] : 0.f;
            }
            __syncthreads();
            float s[AT_R][2], dp[AT_R][2];
#pragma unroll
            for (int r = 0; r < AT_R; r++) s[r][0] = s[r][1] = dp[r][0] = dp[r][1] = 0.f;
            const float* kw = ks + warp * AT_R * D;
            const float* vw = vs + warp * AT_R * D;
            for (int d = 0; d < D; d++) {
                float q0 = qs[lane * ldq + d], q1 = qs[(lane + 32) * ldq + d];
                float g0 = dos[lane * ldq + d], g1 = dos[(lane + 32) * ldq + d];
#pragma unroll
                for (int r = 0; r < AT_R; r++) {
                    float kv = kw[r * D + d], vv = vw[r * D + d];
                    s[r][0] = fmaf(q0, kv, s[r][0]);
                    s[r][1] = fmaf(q1, kv, s[r][1]);
                    dp[r][0] = fmaf(g0, vv, dp[r][0]);
                    dp[r][1] = fmaf(g1, vv, dp[r][1]);
                }
            }
            // s becomes P, dp becomes dS = P * (dP - delta)
#pragma unroll
            for (int r = 0; r < AT_R; r++) {
                int j = j0 + warp * AT_R + r;
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    int il = lane + 32 * h, i = i0 + il;
                    float p = (i < Tq && j < Tk && j <= off + i) ? expf(s[r][h] * scale - ls[il]) : 0.f;
                    s[r][h] = p;
                    dp[r][h] = p * (dp[r][h] - dls[il]);
                }
            }
#pragma unroll
            for (int h = 0; h < 2; h++) {
                for (int i = 0; i < 32; i++) {
                    const float* qr = qs + (h * 32 + i) * ldq;
                    const float* gr = dos + (h * 32 + i) * ldq;
                    float qv[AT_DC], gd[AT_DC];
#pragma unroll
                    for (int c = 0; c < AT_DC; c++) {
                        bool in = lane + 32 * c < D;
                        qv[c] = in ? qr[lane + 32 * c] : 0.f;
                        gd[c] = in ? gr[lane + 32 * c] : 0.f;
                    }
#pragma unroll
                    for (int r = 0; r < AT_R; r++) {
                        float p = __shfl_sync(0xffffffffu, s[r][h], i);
                        float g = __shfl_sync(0xffffffffu, dp[r][h], i);
#pragma unroll
                        for (int c = 0; c < AT_DC; c++) {
                            gv[r][c] = fmaf(p, gd[c], gv[r][c]);
                            gk[r][c] = fmaf(g, qv[c], gk[r][c]);
                        }
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < AT_R; r++) {
        int j = j0 + warp * AT_R + r;
        if (j >= Tk) continue;
#pragma unroll
        for (int c = 0; c < AT_DC; c++) {
            int d = lane + 32 * c;
            if (d < D) {
                store(dk, kvbase + (long)j * D + d, gk[r][c] * scale);
                store(dv, kvbase + (long)j * D + d, gv[r][c]);
            }
        }
    }
}

#define ATTN_INSTANCES(T, sfx)                                                                                    \
    extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_fwd_##sfx(                                   \
        const T* q, const T* k, const T* v, T* o, float* lse, int Hq, int Hkv, int Tq, int Tk, int D, float scale) { \
        attn_fwd_body<T>(q, k, v, o, lse, Hq, Hkv, Tq, Tk, D, scale);                                              \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_bwd_dq_##sfx(                                \
        const T* q, const T* k, const T* v, const T* o, const T* dout, const float* lse, float* delta, T* dq,     \
        int Hq, int Hkv, int Tq, int Tk, int D, float scale) {                                                     \
        attn_dq_body<T>(q, k, v, o, dout, lse, delta, dq, Hq, Hkv, Tq, Tk, D, scale);                              \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_bwd_dkdv_##sfx(                              \
        const T* q, const T* k, const T* v, const T* dout, const float* lse, const float* delta, T* dk, T* dv,    \
        int Hq, int Hkv, int Tq, int Tk, int D, float scale) {                                                     \
        attn_dkdv_body<T>(q, k, v, dout, lse, delta, dk, dv, Hq, Hkv, Tq, Tk, D, scale);                           \
    }
ATTN_INSTANCES(float, f32)
ATTN_INSTANCES(bf16, bf16)
