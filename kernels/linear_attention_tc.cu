// kernels/linear_attention_tc.cu: chunked causal linear attention on tensor cores (bf16 operands,
// f32 accumulate, f32 state). Twin: backend/cpu/linear_attention.rs; same contract and arguments as
// linattn_chunk in linear_attention.cu (see there and backend/cuda/linear_attention.rs):
//
//   o_t = q_t S_t,   S_t = S0 + sum_{s <= t} k_s^T v_s          (rev = 0, causal)
//   o_t = q_t S_t,   S_t = S0 + sum_{s >= t} k_s^T v_s          (rev = 1, anti-causal)
//
// Shapes: q, k (BH, T, Dk), v, o (BH, T, Dv), s0 and s_final (BH, Dk, Dv); s0 element (a, b) of a
// head at sh[a * ss0 + b * ss1]; s0 == 0 means zeros, s_final == 0 "do not write". Dk <= DKP.
//
// Grid (BH * ceil(Dv / 64)), the Dv slice fastest (a head's slices run together and share its Q and
// K in L2), 256 threads (8 warps): one block walks one head's chunks (C = 64) in order for a
// 64-wide slice of Dv, the state slice S (DKP x 64) living in f32 mma accumulators.
// Per chunk of n <= 64 rows (rows past n and columns past Dk / Dv are zeros in shared memory):
//   1. A = Q K^T (64 x 64) and O = Q S (64 x 64): warp (rg, ch) = (w % 4, w / 4) owns rows
//      16 rg .. 16 rg + 15, A's columns and O's columns 32 ch .. 32 ch + 31; S is read from Sb, a
//      bf16 copy of the state. A, masked (causal / anti-causal), goes to shared memory as bf16.
//   2. O += A V over the chunk's 64 rows; O is written (bf16) for rows < n, columns < Dv.
//   3. S += K^T V (Dk x 64, reduction over the chunk's rows): warp w owns S rows 16 (w % NB) ..
//      and columns (w / NB) * 64 / CS .., NB = DKP / 16 row blocks, CS = 8 / NB column splits;
//      then it refreshes its part of Sb for the next chunk.
// The next chunk's Q, K, V are fetched (cp.async, double-buffered) while this one computes.
// Barriers per chunk: one before step 1 (chunk landed, Sb refreshed, last chunk's readers done) and
// one between steps 1 and 2 (A complete; every reader of Sb done, so step 3 may overwrite it).
// Segments (backend/cuda/linear_attention_tc.rs): the walk split into runs of whole chunks,
// linattn_tc<DKP>_seg_states_bf16 sums each run's K^T V (the body with OUT = false),
// linattn_seg_prefix turns the sums into starting states in a fixed order, and
// linattn_tc<DKP>_seg_out_bf16 walks each run from its f32 starting state (LtState.s0f).
// Precision: the state stays f32; the products see it and the masked A rounded to bf16 (the
// operands are bf16 already), which adds ~2^-9 relative error per term. Every output element is
// written by one thread, in a fixed order: deterministic.

#define LT_C 64     // chunk length
#define LT_LD 72    // row stride (bf16) of the 64-wide tiles A, V and Sb: 144 B, ldmatrix rows on distinct banks

// Shared memory (bf16): Q, K [2][64][DKP + 8] | V [2][64][72] | A [64][72] | Sb [DKP][72].
// Where a walk's state starts and ends (one head, Dk x Dv): s0 (bf16, element (a, b) at
// s0[a * ss0 + b * ss1]) or s0f (f32, at s0f[a * dv + b]) or zeros when both are null; the final
// state goes to sf (bf16) and / or sff (f32), each (Dk, Dv) row-major, when non-null.
struct LtState {
    const bf16* s0;
    const float* s0f;
    long ss0, ss1;
    bf16* sf;
    float* sff;
};

// OUT = false: the states-only walk (no Q, no O, steps 1-2 skipped): S = start + sum of K^T V over
// the walk's chunks, for a segment's sum (kernels linattn_tc<DKP>_seg_states_bf16 below).
template <int DKP, bool OUT>
__device__ void linattn_tc_body(const bf16* __restrict__ qh, const bf16* __restrict__ kh, const bf16* __restrict__ vh,
                                LtState st, bf16* __restrict__ oh, int first, int count, int t_len, int dk, int dv,
                                int dv0, int rev, bool vec) {
    constexpr int LQ = DKP + 8;             // row stride of the Q / K tiles: 4 words mod 8, conflict-free
    constexpr int NB = DKP / 16, CS = 8 / NB, SN = 64 / CS / 8;  // state: row blocks, column splits, n-tiles per warp
    static_assert(DKP == 64 || DKP == 128, "instances: DKP 64 and 128 (SN must be even)");
    extern __shared__ __align__(16) unsigned char lt_smem[];
    bf16* Qs = reinterpret_cast<bf16*>(lt_smem);
    bf16* Ks = OUT ? Qs + 2 * LT_C * LQ : Qs;  // states only: K, V and nothing else
    bf16* Vs = Ks + 2 * LT_C * LQ;
    bf16* As = Vs + 2 * LT_C * LT_LD;
    bf16* Sb = As + LT_C * LT_LD;

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int rg = warp & 3, ch = warp >> 2;               // steps 1-2: rows 16 rg.., columns 32 ch..
    const int rb = warp % NB, sc0 = (warp / NB) * SN * 8;   // step 3: S rows 16 rb.., columns sc0..

    auto fetch = [&](int ci, int buf) {  // chunk number ci of the walk into buffer buf
        const int c0 = (rev ? first - ci : first + ci) * LT_C, n = min(LT_C, t_len - c0);
        if (OUT) load_rows_bf16<LT_C>(Qs + buf * LT_C * LQ, LQ, qh, c0, n, dk, 0, DKP, vec);
        load_rows_bf16<LT_C>(Ks + buf * LT_C * LQ, LQ, kh, c0, n, dk, 0, DKP, vec);
        load_rows_bf16<LT_C>(Vs + buf * LT_C * LT_LD, LT_LD, vh, c0, n, dv, dv0, 64, vec);
    };
    // Step 3's fragment of S into Sb (bf16): rows 16 rb + g (+ 8), columns sc0 + 8 ni + 2 t (+ 1).
    float S[SN][4];
    auto publish = [&]() {
#pragma unroll
        for (int ni = 0; ni < SN; ni++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                *reinterpret_cast<u32*>(Sb + (16 * rb + g + 8 * h) * LT_LD + sc0 + 8 * ni + 2 * t) =
                    pack_bf16(S[ni][2 * h], S[ni][2 * h + 1]);
    };

    if (count > 0) fetch(0, 0);
    cp_async_commit();
#pragma unroll
    for (int ni = 0; ni < SN; ni++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int a = 16 * rb + g + (e >> 1) * 8, b = dv0 + sc0 + 8 * ni + 2 * t + (e & 1);
            const bool in = a < dk && b < dv;
            S[ni][e] = !in ? 0.f : st.s0 != 0 ? bf2f(st.s0[a * st.ss0 + b * st.ss1]) : st.s0f != 0 ? st.s0f[(long)a * dv + b] : 0.f;
        }
    if (OUT) publish();
    const bool keep = st.sf != 0 || st.sff != 0;  // the final state is wanted

    for (int ci = 0; ci < count; ci++) {
        const int buf = ci & 1, c0 = (rev ? first - ci : first + ci) * LT_C, n = min(LT_C, t_len - c0);
        cp_async_wait<0>();
        __syncthreads();  // chunk ci landed for all; Sb refreshed; chunk ci - 1's readers are done
        if (ci + 1 < count) fetch(ci + 1, buf ^ 1);
        cp_async_commit();
        const bf16* Q = Qs + buf * LT_C * LQ;
        const bf16* K = Ks + buf * LT_C * LQ;
        const bf16* V = Vs + buf * LT_C * LT_LD;
        if (OUT) {
            // ---- 1. A = Q K^T and O = Q S over DKP in steps of 16
            float acc_a[4][4], acc_o[4][4];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) { acc_a[i][e] = 0.f; acc_o[i][e] = 0.f; }
#pragma unroll
            for (int kk = 0; kk < DKP; kk += 16) {
                u32 aq[4];
                ldmatrix_x4(aq, Q + (16 * rg + (lane & 15)) * LQ + kk + (lane >> 4) * 8);
#pragma unroll
                for (int ni = 0; ni < 4; ni += 2) {
                    const int nc = 32 * ch + ni * 8;
                    u32 r[4], s[4];
                    // K rows are A's columns (B "col" layout); Sb rows are the reduction (B row layout).
                    ldmatrix_x4(r, K + (nc + (lane & 7) + (lane >> 4) * 8) * LQ + kk + ((lane >> 3) & 1) * 8);
                    ldmatrix_x4_trans(s, Sb + (kk + (lane & 7) + ((lane >> 3) & 1) * 8) * LT_LD + nc + (lane >> 4) * 8);
                    const u32 b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]}, s0[2] = {s[0], s[1]}, s1[2] = {s[2], s[3]};
                    mma_bf16_16816(acc_a[ni], aq, b0);
                    mma_bf16_16816(acc_a[ni + 1], aq, b1);
                    mma_bf16_16816(acc_o[ni], aq, s0);
                    mma_bf16_16816(acc_o[ni + 1], aq, s1);
                }
            }
            // A masked to shared memory: element (r, c) kept when c <= r (c >= r when rev).
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int r = 16 * rg + g + 8 * h, c = 32 * ch + 8 * ni + 2 * t;
                    float x0 = acc_a[ni][2 * h], x1 = acc_a[ni][2 * h + 1];
                    if (rev ? c < r : c > r) x0 = 0.f;
                    if (rev ? c + 1 < r : c + 1 > r) x1 = 0.f;
                    *reinterpret_cast<u32*>(As + r * LT_LD + c) = pack_bf16(x0, x1);
                }
            __syncthreads();  // A complete; nobody reads Sb any more in this chunk

            // ---- 2. O += A V over the chunk's rows; O stored
#pragma unroll
            for (int kk = 0; kk < LT_C; kk += 16) {
                u32 aa[4];
                ldmatrix_x4(aa, As + (16 * rg + (lane & 15)) * LT_LD + kk + (lane >> 4) * 8);
#pragma unroll
                for (int ni = 0; ni < 4; ni += 2) {
                    u32 r[4];
                    ldmatrix_x4_trans(r, V + (kk + (lane & 7) + ((lane >> 3) & 1) * 8) * LT_LD + 32 * ch + ni * 8 + (lane >> 4) * 8);
                    const u32 b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
                    mma_bf16_16816(acc_o[ni], aa, b0);
                    mma_bf16_16816(acc_o[ni + 1], aa, b1);
                }
            }
            const bool pair = (dv & 1) == 0;
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int r = 16 * rg + g + 8 * h, c = dv0 + 32 * ch + 8 * ni + 2 * t;
                    if (r < n) store_bf16x2(oh, (long)(c0 + r) * dv + c, c, dv, pair, acc_o[ni][2 * h], acc_o[ni][2 * h + 1]);
                }
        }  // OUT

        // ---- 3. S += K^T V (skipped, uniformly, when neither a later chunk nor the final state
        //         needs S). States only: the barrier above alone orders the buffers' reuse.
        if (ci + 1 < count || keep) {
#pragma unroll
            for (int kk = 0; kk < LT_C; kk += 16) {
                u32 ak[4];
                // K^T's rows are K's columns: the transposing load of the (s, dk) tile.
                ldmatrix_x4_trans(ak, K + (kk + (lane & 7) + (lane >> 4) * 8) * LQ + 16 * rb + ((lane >> 3) & 1) * 8);
#pragma unroll
                for (int ni = 0; ni < SN; ni += 2) {
                    u32 r[4];
                    ldmatrix_x4_trans(r, V + (kk + (lane & 7) + ((lane >> 3) & 1) * 8) * LT_LD + sc0 + ni * 8 + (lane >> 4) * 8);
                    const u32 b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
                    mma_bf16_16816(S[ni], ak, b0);
                    mma_bf16_16816(S[ni + 1], ak, b1);
                }
            }
            if (OUT) publish();
        }
    }
    cp_async_wait<0>();  // nothing in flight at exit

    if (keep) {
#pragma unroll
        for (int ni = 0; ni < SN; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int a = 16 * rb + g + (e >> 1) * 8, b = dv0 + sc0 + 8 * ni + 2 * t + (e & 1);
                if (a < dk && b < dv) {
                    if (st.sf != 0) st.sf[(long)a * dv + b] = f2bf(S[ni][e]);
                    if (st.sff != 0) st.sff[(long)a * dv + b] = S[ni][e];
                }
            }
    }
}

// Segment j of a walk split into runs of seg_len chunks, in walk order (the last chunk first when
// rev): its first chunk and its chunk count.
__device__ __forceinline__ int seg_first(int j, int seg_len, int nchunks, int rev) {
    return rev ? nchunks - 1 - j * seg_len : j * seg_len;
}
__device__ __forceinline__ int seg_count(int j, int seg_len, int nchunks) { return min(seg_len, nchunks - j * seg_len); }

// linattn_tc<DKP>_bf16: the arguments of linattn_chunk_bf16, plus vec (16-byte loads: Dk and Dv
// multiples of 8 and 16-byte aligned buffers). Dynamic smem: linear_attention_tc::smem_bytes(DKP).
// linattn_tc<DKP>_varlen_bf16: the arguments of linattn_varlen_bf16, plus vec; grid
// (H * N * ceil(Dv / 64)), block x = (h * N + n) * ceil(Dv / 64) + slice.
#define LINATTN_TC(DKP)                                                                                \
    extern "C" __global__ void __launch_bounds__(256) linattn_tc##DKP##_bf16(                          \
        const bf16* q, const bf16* k, const bf16* v, const bf16* s0, bf16* o, bf16* s_final,           \
        int t_len, int dk, int dv, long ss0, long ss1, int rev, int vec) {                             \
        const int ndv = (dv + 63) / 64, slice = (int)(blockIdx.x % ndv);                             \
        const long h = blockIdx.x / ndv, hs = h * (long)dk * dv;                                       \
        const int nchunks = (t_len + LT_C - 1) / LT_C;                                                 \
        const LtState st = {s0 != 0 ? s0 + hs : s0, 0, ss0, ss1, s_final != 0 ? s_final + hs : s_final, 0}; \
        linattn_tc_body<DKP, true>(q + h * (long)t_len * dk, k + h * (long)t_len * dk, v + h * (long)t_len * dv, \
                                   st, o + h * (long)t_len * dv, rev ? nchunks - 1 : 0, nchunks, t_len, dk, dv, \
                                   slice * 64, rev, vec != 0);                                         \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(256) linattn_tc##DKP##_varlen_bf16(                   \
        const bf16* q, const bf16* k, const bf16* v, const bf16* s0, bf16* o, bf16* s_final,           \
        const u32* cu, int nseq, int t_total, int dk, int dv, long ss0, long ss1, int rev, int vec) {  \
        const int ndv = (dv + 63) / 64, slice = (int)(blockIdx.x % ndv);                             \
        const long hn = blockIdx.x / ndv, h = hn / nseq, n = hn % nseq, nh = gridDim.x / ndv / nseq;  \
        const long t0 = cu[n];                                                                         \
        const int len = (int)(cu[n + 1] - cu[n]), nchunks = (len + LT_C - 1) / LT_C;                  \
        const long sto = (n * nh + h) * (long)dk * dv, rq = h * (long)t_total + t0;                   \
        const LtState st = {s0 != 0 ? s0 + sto : s0, 0, ss0, ss1, s_final != 0 ? s_final + sto : s_final, 0}; \
        linattn_tc_body<DKP, true>(q + rq * dk, k + rq * dk, v + rq * dv, st, o + rq * dv,             \
                                   rev ? nchunks - 1 : 0, nchunks, len, dk, dv, slice * 64, rev, vec != 0); \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(256) linattn_tc##DKP##_seg_states_bf16(               \
        const bf16* k, const bf16* v, float* ws, int t_len, int dk, int dv, int nseg, int nrun,        \
        int seg_len, int rev, int vec) {                                                               \
        const int ndv = (dv + 63) / 64, slice = (int)(blockIdx.x % ndv);                             \
        const long hj = blockIdx.x / ndv, h = hj / nrun;                                               \
        const int j = (int)(hj % nrun), nchunks = (t_len + LT_C - 1) / LT_C;                          \
        const LtState st = {0, 0, 0, 0, 0, ws + (h * nseg + j) * (long)dk * dv};                       \
        linattn_tc_body<DKP, false>(0, k + h * (long)t_len * dk, v + h * (long)t_len * dv, st, 0,      \
                                    seg_first(j, seg_len, nchunks, rev), seg_count(j, seg_len, nchunks), \
                                    t_len, dk, dv, slice * 64, rev, vec != 0);                         \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(256) linattn_tc##DKP##_seg_out_bf16(                  \
        const bf16* q, const bf16* k, const bf16* v, const float* ws, bf16* o, int t_len, int dk,      \
        int dv, int nseg, int seg_len, int rev, int vec) {                                             \
        const int ndv = (dv + 63) / 64, slice = (int)(blockIdx.x % ndv);                             \
        const long hj = blockIdx.x / ndv, h = hj / nseg;                                               \
        const int j = (int)(hj % nseg), nchunks = (t_len + LT_C - 1) / LT_C;                          \
        const LtState st = {0, ws + hj * (long)dk * dv, 0, 0, 0, 0};                                   \
        linattn_tc_body<DKP, true>(q + h * (long)t_len * dk, k + h * (long)t_len * dk, v + h * (long)t_len * dv, \
                                   st, o + h * (long)t_len * dv, seg_first(j, seg_len, nchunks, rev),  \
                                   seg_count(j, seg_len, nchunks), t_len, dk, dv, slice * 64, rev, vec != 0); \
    }

LINATTN_TC(64)
LINATTN_TC(128)

// linattn_seg_prefix: the segments' sums (BH, nseg, Dk, Dv) f32 in ws (segment nseg - 1's only
// when s_final != 0) become, in place, each segment's starting state S0 + seg_0 + ... + seg_{j-1}
// (added in this order: deterministic); s_final (bf16, (BH, Dk, Dv)) gets S0 + all segments.
// s0 as in linattn_tc<DKP>_bf16 (bf16, strides ss0, ss1; null: zeros). Grid (BH * ceil(Dk Dv / 256)),
// 256 threads, one state element a thread.
extern "C" __global__ void __launch_bounds__(256) linattn_seg_prefix(const bf16* s0, float* ws, bf16* s_final, int dk,
                                                                     int dv, long ss0, long ss1, int nseg) {
    const long per = (long)dk * dv, nb = (per + 255) / 256;
    const long h = blockIdx.x / nb, e = (blockIdx.x % nb) * 256 + threadIdx.x;
    if (e >= per) return;
    const long a = e / dv, b = e % dv;
    float acc = s0 != 0 ? bf2f(s0[h * per + a * ss0 + b * ss1]) : 0.f;
    float* w = ws + h * nseg * per + e;
    for (int j = 0; j < nseg; j++) {
        const float x = (j + 1 < nseg || s_final != 0) ? w[j * per] : 0.f;
        w[j * per] = acc;
        acc += x;
    }
    if (s_final != 0) s_final[h * per + e] = f2bf(acc);
}
