// kernels/linear_attention.cu: chunked causal linear attention (C = 64). Twin:
// backend/cpu/linear_attention.rs. One kernel, `linattn_chunk`, serves the forward and all three
// backward products (the launch wrappers in backend/cuda/linear_attention.rs explain the mapping):
//
//   o_t = q_t S_t,   S_t = S0 + sum_{s <= t} k_s^T v_s          (rev = 0, causal)
//   o_t = q_t S_t,   S_t = S0 + sum_{s >= t} k_s^T v_s          (rev = 1, anti-causal)
//
// Shapes: q, k (BH, T, Dk), v, o (BH, T, Dv), s0 and s_final (BH, Dk, Dv) in f32 state.
// s0 element (a, b) of head h is at s0[h * Dk * Dv + a * ss0 + b * ss1] (ss0 = Dv, ss1 = 1 for
// the plain layout; a transposed state uses ss0 = 1, ss1 = Dk, as the dQ pass does). s0 == 0 means
// zeros; s_final == 0 means "do not write".
//
// Two algorithms share one chunk body (linattn_body):
//  * sequential (linattn_chunk): grid (BH, ceil(Dv / 64)); each block walks all chunks in order;
//  * two-phase (linattn_states + linattn_out), used when T > 64: phase 1 writes every chunk's
//    starting state to an f32 workspace W (BH, nchunks, Dk, Dv), parallel over (head, 32 x 64
//    state tile); phase 2 runs the body on ONE chunk per block, its state read from W, parallel
//    over (head, chunk, Dv slice). Both add the per-chunk sums K^T V to the state in the same
//    order, so the two algorithms give bit-identical results.
// In linattn_body each block owns one head and one 64-wide slice of Dv and
// walks its chunks in order (reverse order when rev = 1), keeping its state slice S (Dk x 64) in
// shared memory in f32. Per chunk of n <= 64 rows:
//   pass 1 (over Dk in pieces of 32): A = Q K^T (64 x 64) and O = Q S (64 x 64) in registers;
//   pass 2: A masked to shared memory, V chunk to shared memory, O += A V, O written;
//   pass 3 (over Dk in pieces of 32): S += K^T V.
// Rows past n and columns past Dk / Dv are loaded as zeros and never stored. In passes 1 and 2 each
// thread owns rows 4 ty + i and columns 4 tx + j (ty = tid / 16, tx = tid % 16) of every 64 x 64
// tile, so that every shared-memory operand is one float4 load: the Q / K pieces and A are kept
// transposed (column-major). Pass 3 owns state rows ty + 16 i, columns tx + 16 j of a 32 x 64 piece.
// No atomics: every output element is written by exactly one thread (deterministic).

#define LA_C 64     // chunk length
#define LA_P 32     // Dk piece width
#define LA_TS 68    // row stride of the transposed Q / K pieces (32 x 64), A^T and V (64 x 64); float4-aligned

// Dynamic shared memory layout (floats), every tile 16-byte aligned:
//   S [dk32 * 64] | Qt [32 * 68] | Kt [32 * 68] | V [64 * 68], with At [64 * 68] aliasing Qt + Kt
// qh, kh, vh, oh: this head's (T, D) rows. sh: this block's initial state seen as (Dk, Dv), element
// (a, b) at sh[a * ss0 + b * ss1], or 0 for zeros. sfh: this head's final state (Dk, Dv) row-major,
// or 0 for "do not write". Chunks visited: first, first +- 1, ... (count of them; minus when rev).
template <typename T, typename ST>
__device__ void linattn_body(const T* __restrict__ qh, const T* __restrict__ kh, const T* __restrict__ vh,
                             const ST* __restrict__ sh, long ss0, long ss1, T* __restrict__ oh,
                             T* __restrict__ sfh, int first, int count, int t_len, int dk, int dv,
                             int dv0, int rev) {
    extern __shared__ __align__(16) float la_smem[];
    const int dk32 = (dk + LA_P - 1) / LA_P * LA_P;
    float* Ss = la_smem;
    float* Qt = Ss + (long)dk32 * 64;
    float* Kt = Qt + LA_P * LA_TS;
    // A^T reuses the Q / K piece tiles (64 x 68 = 2 x 32 x 68): pass 2 writes it only after the
    // barrier that ends pass 1, and the next writers of Qt / Kt (pass 3, next chunk's pass 1) start
    // with a barrier after pass 2's last read. V stays intact through pass 3.
    float* At = Qt;
    float* Vs = Qt + LA_C * LA_TS;

    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;

    // S slice <- s0 (or zeros); padded rows stay zero forever (their K columns load as zeros).
    for (int e = tid; e < dk32 * 64; e += blockDim.x) {
        int a = e / 64, c = e % 64;
        float s = 0.f;
        if (sh != 0 && a < dk && dv0 + c < dv) s = load(sh, a * ss0 + (long)(dv0 + c) * ss1);
        Ss[e] = s;
    }

    for (int ci = 0; ci < count; ++ci) {
        const int chunk = rev ? first - ci : first + ci;
        const int c0 = chunk * LA_C;
        const int n = min(LA_C, t_len - c0);

        float acc_a[4][4], acc_o[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) { acc_a[i][j] = 0.f; acc_o[i][j] = 0.f; }

        // ---- pass 1: A = Q K^T, O = Q S over Dk pieces
        for (int p = 0; p < dk; p += LA_P) {
            __syncthreads();  // previous users of Qt / Kt / Ss are done
            for (int e = tid; e < LA_C * LA_P; e += blockDim.x) {
                int r = e / LA_P, kk = e % LA_P;
                bool ok = r < n && p + kk < dk;
                long gi = (long)(c0 + r) * dk + p + kk;
                Qt[kk * LA_TS + r] = ok ? load(qh, gi) : 0.f;
                Kt[kk * LA_TS + r] = ok ? load(kh, gi) : 0.f;
            }
            __syncthreads();
#pragma unroll 4
            for (int kk = 0; kk < LA_P; ++kk) {
                const float4 q4 = *reinterpret_cast<const float4*>(&Qt[kk * LA_TS + 4 * ty]);
                const float4 k4 = *reinterpret_cast<const float4*>(&Kt[kk * LA_TS + 4 * tx]);
                const float4 s4 = *reinterpret_cast<const float4*>(&Ss[(long)(p + kk) * 64 + 4 * tx]);
                const float qa[4] = {q4.x, q4.y, q4.z, q4.w};
                const float kb[4] = {k4.x, k4.y, k4.z, k4.w};
                const float sb[4] = {s4.x, s4.y, s4.z, s4.w};
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) {
                        acc_a[i][j] = fmaf(qa[i], kb[j], acc_a[i][j]);
                        acc_o[i][j] = fmaf(qa[i], sb[j], acc_o[i][j]);
                    }
            }
        }

        // ---- pass 2: O += (A . mask) V
        __syncthreads();  // At / Vs of the previous chunk are no longer read
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                int r = 4 * ty + i, c = 4 * tx + j;
                bool keep = rev ? (c >= r) : (c <= r);
                At[c * LA_TS + r] = keep ? acc_a[i][j] : 0.f;
            }
        for (int e = tid; e < LA_C * 64; e += blockDim.x) {
            int r = e / 64, c = e % 64;
            bool ok = r < n && dv0 + c < dv;
            Vs[r * LA_TS + c] = ok ? load(vh, (long)(c0 + r) * dv + dv0 + c) : 0.f;
        }
        __syncthreads();
#pragma unroll 4
        for (int jj = 0; jj < LA_C; ++jj) {
            const float4 a4 = *reinterpret_cast<const float4*>(&At[jj * LA_TS + 4 * ty]);
            const float4 v4 = *reinterpret_cast<const float4*>(&Vs[jj * LA_TS + 4 * tx]);
            const float a[4] = {a4.x, a4.y, a4.z, a4.w};
            const float vb[4] = {v4.x, v4.y, v4.z, v4.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc_o[i][j] = fmaf(a[i], vb[j], acc_o[i][j]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                int r = 4 * ty + i, c = dv0 + 4 * tx + j;
                if (r < n && c < dv) store(oh, (long)(c0 + r) * dv + c, acc_o[i][j]);
            }

        // ---- pass 3: S += K^T V over Dk pieces (Vs still holds this chunk's V); skipped (uniformly
        // for the block) when no later chunk and no final state needs S.
        if (ci + 1 < count || sfh != 0)
        for (int p = 0; p < dk; p += LA_P) {
            __syncthreads();  // Kt readers (pass 1 or the previous piece) are done
            for (int e = tid; e < LA_C * LA_P; e += blockDim.x) {
                int r = e / LA_P, kk = e % LA_P;
                bool ok = r < n && p + kk < dk;
                Kt[kk * LA_TS + r] = ok ? load(kh, (long)(c0 + r) * dk + p + kk) : 0.f;
            }
            __syncthreads();
            float su[2][4];
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) su[i][j] = 0.f;
#pragma unroll 4
            for (int r = 0; r < LA_C; ++r) {
                float ka[2], vb[4];
#pragma unroll
                for (int i = 0; i < 2; ++i) ka[i] = Kt[(ty + 16 * i) * LA_TS + r];
#pragma unroll
                for (int j = 0; j < 4; ++j) vb[j] = Vs[r * LA_TS + tx + 16 * j];
#pragma unroll
                for (int i = 0; i < 2; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) su[i][j] = fmaf(ka[i], vb[j], su[i][j]);
            }
            // Each S element of this piece is owned by exactly one thread: no race.
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) Ss[(long)(p + ty + 16 * i) * 64 + tx + 16 * j] += su[i][j];
        }
    }

    __syncthreads();
    if (sfh != 0) {
        for (int e = tid; e < dk * 64; e += blockDim.x) {
            int a = e / 64, c = e % 64;
            if (dv0 + c < dv) store(sfh, (long)a * dv + dv0 + c, Ss[e]);
        }
    }
}

// ---- Two-phase, phase 1: every chunk's starting state.
// Grid (BH * ceil(Dk / 32) * ceil(Dv / 64)) flattened, the tile index fastest (a head's tiles run
// together and share its K / V in L2); 128 threads. Block: head h, state tile rows a0 .. a0 + 31,
// columns dv0 .. dv0 + 63, in registers (thread: rows a0 + 4 ty + i, columns dv0 + 4 tx + j).
// Visits the chunks in order (reverse when rev); before each chunk stores S to
// w[((h * nchunks + chunk) * Dk + a) * Dv + b] (f32), then S += K_c^T V_c. The per-chunk sum su
// runs over the 64 rows in order from zero and is then added to S: the same arithmetic as pass 3
// of linattn_body, so W holds bit-identical states to the sequential kernel's.
#define LS_KS 36    // row stride of the K piece tile (64 x 32), float4-aligned
#define LS_VS 68    // row stride of the V tile (64 x 64), float4-aligned

template <typename T>
__device__ void linattn_states_body(const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ s0,
                                    float* __restrict__ w, T* __restrict__ s_final, int t_len, int dk, int dv,
                                    long ss0, long ss1, int rev) {
    __shared__ __align__(16) float Kp[LA_C * LS_KS];
    __shared__ __align__(16) float Vs[LA_C * LS_VS];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int nk = (dk + LA_P - 1) / LA_P, ndv = (dv + 63) / 64;
    const long bid = blockIdx.x;
    const long h = bid / (nk * ndv);
    const int tile = (int)(bid % (nk * ndv));
    const int a0 = (tile / ndv) * LA_P, dv0 = (tile % ndv) * 64;
    const int nchunks = (t_len + LA_C - 1) / LA_C;
    const T* kh = k + h * (long)t_len * dk;
    const T* vh = v + h * (long)t_len * dv;
    const int ra = a0 + 4 * ty, cb = dv0 + 4 * tx;  // this thread's first row / column
    const bool vec = (dv & 3) == 0;                  // 16-byte W stores (cb % 4 == 0 too)

    float S[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int a = ra + i, b = cb + j;
            S[i][j] = (s0 != 0 && a < dk && b < dv) ? load(s0, h * (long)dk * dv + a * ss0 + b * ss1) : 0.f;
        }

    for (int ci = 0; ci < nchunks; ++ci) {
        const int chunk = rev ? nchunks - 1 - ci : ci;
        const int c0 = chunk * LA_C;
        const int n = min(LA_C, t_len - c0);
        float* wc = w + (h * nchunks + chunk) * (long)dk * dv;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            if (ra + i >= dk) continue;
            float* row = wc + (long)(ra + i) * dv;
            if (vec) {
                if (cb < dv) *reinterpret_cast<float4*>(row + cb) = make_float4(S[i][0], S[i][1], S[i][2], S[i][3]);
            } else {
#pragma unroll
                for (int j = 0; j < 4; ++j)
                    if (cb + j < dv) row[cb + j] = S[i][j];
            }
        }

        __syncthreads();  // the previous chunk's readers of Kp / Vs are done
        for (int e = tid; e < LA_C * LA_P; e += blockDim.x) {
            int r = e / LA_P, kk = e % LA_P;
            bool ok = r < n && a0 + kk < dk;
            Kp[r * LS_KS + kk] = ok ? load(kh, (long)(c0 + r) * dk + a0 + kk) : 0.f;
        }
        for (int e = tid; e < LA_C * 64; e += blockDim.x) {
            int r = e / 64, c = e % 64;
            bool ok = r < n && dv0 + c < dv;
            Vs[r * LS_VS + c] = ok ? load(vh, (long)(c0 + r) * dv + dv0 + c) : 0.f;
        }
        __syncthreads();

        float su[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) su[i][j] = 0.f;
#pragma unroll 4
        for (int r = 0; r < LA_C; ++r) {
            const float4 ka4 = *reinterpret_cast<const float4*>(&Kp[r * LS_KS + 4 * ty]);
            const float4 vb4 = *reinterpret_cast<const float4*>(&Vs[r * LS_VS + 4 * tx]);
            const float ka[4] = {ka4.x, ka4.y, ka4.z, ka4.w};
            const float vb[4] = {vb4.x, vb4.y, vb4.z, vb4.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) su[i][j] = fmaf(ka[i], vb[j], su[i][j]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) S[i][j] += su[i][j];
    }

    if (s_final != 0) {
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                int a = ra + i, b = cb + j;
                if (a < dk && b < dv) store(s_final, h * (long)dk * dv + (long)a * dv + b, S[i][j]);
            }
    }
}

// Sequential: grid (BH, ceil(Dv / 64)), 256 threads, dynamic smem as in linattn_body.
// Two-phase: linattn_states grid (BH * ceil(Dk / 32) * ceil(Dv / 64)), 128 threads, static smem;
// linattn_out grid (BH * nchunks * ceil(Dv / 64)) (Dv slice fastest, then chunk, then head),
// 256 threads, dynamic smem as in linattn_body; it reads its chunk's state from w and skips pass 3.
#define LINATTN_INSTANCE(T, SUF)                                                                       \
    extern "C" __global__ void __launch_bounds__(256) linattn_chunk_##SUF(                             \
        const T* q, const T* k, const T* v, const T* s0, T* o, T* s_final,                            \
        int t_len, int dk, int dv, long ss0, long ss1, int rev) {                                      \
        const long h = blockIdx.x;                                                                     \
        const int nchunks = (t_len + LA_C - 1) / LA_C;                                                 \
        const T* sh = s0 != 0 ? s0 + h * (long)dk * dv : (const T*)0;                                 \
        T* sfh = s_final != 0 ? s_final + h * (long)dk * dv : (T*)0;                                   \
        linattn_body<T, T>(q + h * (long)t_len * dk, k + h * (long)t_len * dk, v + h * (long)t_len * dv, \
                           sh, ss0, ss1, o + h * (long)t_len * dv, sfh, rev ? nchunks - 1 : 0, nchunks, \
                           t_len, dk, dv, (int)blockIdx.y * 64, rev);                                  \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(128) linattn_states_##SUF(                            \
        const T* k, const T* v, const T* s0, float* w, T* s_final,                                    \
        int t_len, int dk, int dv, long ss0, long ss1, int rev) {                                      \
        linattn_states_body<T>(k, v, s0, w, s_final, t_len, dk, dv, ss0, ss1, rev);                    \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(256) linattn_out_##SUF(                               \
        const T* q, const T* k, const T* v, const float* w, T* o, int t_len, int dk, int dv, int rev) { \
        const int nchunks = (t_len + LA_C - 1) / LA_C, ndv = (dv + 63) / 64;                          \
        const long bid = blockIdx.x;                                                                   \
        const int dvs = (int)(bid % ndv);                                                              \
        const long hc = bid / ndv; /* h * nchunks + chunk */                                           \
        const int chunk = (int)(hc % nchunks);                                                         \
        const long h = hc / nchunks;                                                                   \
        linattn_body<T, float>(q + h * (long)t_len * dk, k + h * (long)t_len * dk, v + h * (long)t_len * dv, \
                               w + hc * (long)dk * dv, (long)dv, 1L, o + h * (long)t_len * dv, (T*)0, \
                               chunk, 1, t_len, dk, dv, dvs * 64, rev);                                \
    }

// Packed variable-length sequences (linear_attention_varlen): q, k (H, T, Dk), v, o (H, T, Dv),
// sequence n on rows cu[n] .. cu[n + 1] of every head, its states s0 / s_final (N, H, Dk, Dv).
// Grid (H * N, ceil(Dv / 64)), block x = h * N + n, 256 threads, dynamic smem as in linattn_body:
// the sequential body on one (head, sequence), so the state restarts at each sequence start.
// An empty sequence still copies s0 to s_final (the body runs no chunk).
#define LINATTN_VARLEN_INSTANCE(T, SUF)                                                                \
    extern "C" __global__ void __launch_bounds__(256) linattn_varlen_##SUF(                            \
        const T* q, const T* k, const T* v, const T* s0, T* o, T* s_final, const u32* cu,             \
        int nseq, int t_total, int dk, int dv, long ss0, long ss1, int rev) {                          \
        const long hn = blockIdx.x;                                                                    \
        const long h = hn / nseq, n = hn % nseq, nh = gridDim.x / nseq;                                \
        const long t0 = cu[n];                                                                         \
        const int len = (int)(cu[n + 1] - cu[n]);                                                      \
        const int nchunks = (len + LA_C - 1) / LA_C;                                                   \
        const long st = (n * nh + h) * (long)dk * dv;                                                  \
        const T* sh = s0 != 0 ? s0 + st : (const T*)0;                                                 \
        T* sfh = s_final != 0 ? s_final + st : (T*)0;                                                  \
        const long rq = h * (long)t_total + t0;                                                        \
        linattn_body<T, T>(q + rq * dk, k + rq * dk, v + rq * dv, sh, ss0, ss1, o + rq * dv, sfh,      \
                           rev ? nchunks - 1 : 0, nchunks, len, dk, dv, (int)blockIdx.y * 64, rev);    \
    }

LINATTN_INSTANCE(float, f32)
LINATTN_INSTANCE(bf16, bf16)
LINATTN_VARLEN_INSTANCE(float, f32)
LINATTN_VARLEN_INSTANCE(bf16, bf16)
