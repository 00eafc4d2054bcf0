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
// Grid (BH, ceil(Dv / 64)), 256 threads. Each block owns one head and one 64-wide slice of Dv and
// walks the chunks in order (reverse order when rev = 1), keeping its state slice S (Dk x 64) in
// shared memory in f32. Per chunk of n <= 64 rows:
//   pass 1 (over Dk in pieces of 32): A = Q K^T (64 x 64) and O = Q S (64 x 64) in registers;
//   pass 2: A masked to shared memory, V chunk to shared memory, O += A V, O written;
//   pass 3 (over Dk in pieces of 32): S += K^T V.
// Rows past n and columns past Dk / Dv are loaded as zeros and never stored. Each thread owns
// rows ty + 16 i and columns tx + 16 j (ty = tid / 16, tx = tid % 16) of every 64 x 64 tile.
// No atomics: every output element is written by exactly one thread (deterministic).

#define LA_C 64     // chunk length
#define LA_P 32     // Dk piece width
#define LA_QS 33    // row stride of the Q / K piece tiles (64 x 32, padded)
#define LA_AS 65    // row stride of the A and V tiles (64 x 64, padded)

// Dynamic shared memory layout (floats): S [dk32 * 64] | Qp [64 * 33] | Kp [64 * 33] | A [64 * 65] | V [64 * 65]
template <typename T>
__device__ void linattn_chunk_body(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                   const T* __restrict__ s0, T* __restrict__ o, T* __restrict__ s_final,
                                   int t_len, int dk, int dv, long ss0, long ss1, int rev) {
    extern __shared__ float la_smem[];
    const int dk32 = (dk + LA_P - 1) / LA_P * LA_P;
    float* Ss = la_smem;
    float* Qp = Ss + (long)dk32 * 64;
    float* Kp = Qp + LA_C * LA_QS;
    float* As = Kp + LA_C * LA_QS;
    float* Vs = As + LA_C * LA_AS;

    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const long h = blockIdx.x;
    const int dv0 = blockIdx.y * 64;
    const T* qh = q + h * (long)t_len * dk;
    const T* kh = k + h * (long)t_len * dk;
    const T* vh = v + h * (long)t_len * dv;
    T* oh = o + h * (long)t_len * dv;

    // S slice <- s0 (or zeros); padded rows stay zero forever (their K columns load as zeros).
    for (int e = tid; e < dk32 * 64; e += blockDim.x) {
        int a = e / 64, c = e % 64;
        float s = 0.f;
        if (s0 != 0 && a < dk && dv0 + c < dv) s = load(s0, h * (long)dk * dv + a * ss0 + (long)(dv0 + c) * ss1);
        Ss[e] = s;
    }

    const int nchunks = (t_len + LA_C - 1) / LA_C;
    for (int ci = 0; ci < nchunks; ++ci) {
        const int chunk = rev ? nchunks - 1 - ci : ci;
        const int c0 = chunk * LA_C;
        const int n = min(LA_C, t_len - c0);

        float acc_a[4][4], acc_o[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) { acc_a[i][j] = 0.f; acc_o[i][j] = 0.f; }

        // ---- pass 1: A = Q K^T, O = Q S over Dk pieces
        for (int p = 0; p < dk; p += LA_P) {
            __syncthreads();  // previous users of Qp / Kp / Ss are done
            for (int e = tid; e < LA_C * LA_P; e += blockDim.x) {
                int r = e / LA_P, kk = e % LA_P;
                bool ok = r < n && p + kk < dk;
                long gi = (long)(c0 + r) * dk + p + kk;
                Qp[r * LA_QS + kk] = ok ? load(qh, gi) : 0.f;
                Kp[r * LA_QS + kk] = ok ? load(kh, gi) : 0.f;
            }
            __syncthreads();
#pragma unroll 4
            for (int kk = 0; kk < LA_P; ++kk) {
                float qa[4], kb[4], sb[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) qa[i] = Qp[(ty + 16 * i) * LA_QS + kk];
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    kb[j] = Kp[(tx + 16 * j) * LA_QS + kk];
                    sb[j] = Ss[(long)(p + kk) * 64 + tx + 16 * j];
                }
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
        __syncthreads();  // As / Vs of the previous chunk are no longer read
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                int r = ty + 16 * i, c = tx + 16 * j;
                bool keep = rev ? (c >= r) : (c <= r);
                As[r * LA_AS + c] = keep ? acc_a[i][j] : 0.f;
            }
        for (int e = tid; e < LA_C * 64; e += blockDim.x) {
            int r = e / 64, c = e % 64;
            bool ok = r < n && dv0 + c < dv;
            Vs[r * LA_AS + c] = ok ? load(vh, (long)(c0 + r) * dv + dv0 + c) : 0.f;
        }
        __syncthreads();
#pragma unroll 4
        for (int jj = 0; jj < LA_C; ++jj) {
            float a[4], vb[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[(ty + 16 * i) * LA_AS + jj];
#pragma unroll
            for (int j = 0; j < 4; ++j) vb[j] = Vs[jj * LA_AS + tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc_o[i][j] = fmaf(a[i], vb[j], acc_o[i][j]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                int r = ty + 16 * i, c = dv0 + tx + 16 * j;
                if (r < n && c < dv) store(oh, (long)(c0 + r) * dv + c, acc_o[i][j]);
            }

        // ---- pass 3: S += K^T V over Dk pieces (Vs still holds this chunk's V)
        for (int p = 0; p < dk; p += LA_P) {
            __syncthreads();  // Kp readers (pass 1 or the previous piece) are done
            for (int e = tid; e < LA_C * LA_P; e += blockDim.x) {
                int r = e / LA_P, kk = e % LA_P;
                bool ok = r < n && p + kk < dk;
                Kp[r * LA_QS + kk] = ok ? load(kh, (long)(c0 + r) * dk + p + kk) : 0.f;
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
                for (int i = 0; i < 2; ++i) ka[i] = Kp[r * LA_QS + ty + 16 * i];
#pragma unroll
                for (int j = 0; j < 4; ++j) vb[j] = Vs[r * LA_AS + tx + 16 * j];
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
    if (s_final != 0) {
        for (int e = tid; e < dk * 64; e += blockDim.x) {
            int a = e / 64, c = e % 64;
            if (dv0 + c < dv) store(s_final, h * (long)dk * dv + (long)a * dv + dv0 + c, Ss[e]);
        }
    }
}

#define LINATTN_INSTANCE(T, SUF)                                                                       \
    extern "C" __global__ void __launch_bounds__(256) linattn_chunk_##SUF(                             \
        const T* q, const T* k, const T* v, const T* s0, T* o, T* s_final,                            \
        int t_len, int dk, int dv, long ss0, long ss1, int rev) {                                      \
        linattn_chunk_body<T>(q, k, v, s0, o, s_final, t_len, dk, dv, ss0, ss1, rev);                 \
    }

LINATTN_INSTANCE(float, f32)
LINATTN_INSTANCE(bf16, bf16)
