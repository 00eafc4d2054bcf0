// kernels/softmax_xent.cu: softmax / log-softmax over rows, their backward, and the fused
// cross-entropy loss with an ignore index and its backward. Twin: src/backend/cpu/softmax_xent.rs.
// x: (N, C) rows (C = V for the loss). One block per row (grid-stride over rows), threads stride
// over C with 16-byte vector loads (4 f32 or 8 bf16) when C is a multiple of that width.
// Arithmetic in f32 for f32 and bf16 storage.
//
// Pass 1 keeps an online (max m, sum s of exp(x - m)) per thread, so max and sum-exp come from one
// read of the row; the block combines them as M = max m, S = sum s exp(m - M). Pass 2 writes.
//   softmax_j = exp(x_j - M - ln S),  log_softmax_j = x_j - M - ln S
//   softmax bwd:  dx = y (dy - sum dy y);   log-softmax bwd: dx = dy - exp(y) sum dy
//   loss = (1/count) sum_{t != ignore} (M + ln S - x_t); dx = g (softmax - onehot) / count
// The loss mean is two-stage and fixed-order: per-row losses to a scratch (N) buffer, then one
// block sums them (no float atomics). An out-of-range target (not ignore, >= V) gives NaN.


// Online max / sum-exp update with one value; -inf values add nothing.
__device__ __forceinline__ void online(float& m, float& s, float v) {
    if (v > m) { s = s * expf(m - v) + 1.f; m = v; }
    else if (v != -KILN_INF) s += expf(v - m);     // NaN v: s becomes NaN, as on the CPU
}

// (M, ln S) of one row, every thread gets both. sh: 32 floats of shared memory.
template <typename T>
__device__ __forceinline__ void row_stats(const T* row, long c, float* sh, float& M, float& lnS) {
    constexpr int W = V16<T>::W;  // elements per 16-byte access
    float m = -KILN_INF, s = 0.f;
    if (c % W == 0) {
        for (long i = threadIdx.x; i < c / W; i += blockDim.x) {
            V16<T> v = load16(row, W * i);
            for (int k = 0; k < W; k++) online(m, s, v.v[k]);
        }
    } else {
        for (long i = threadIdx.x; i < c; i += blockDim.x) online(m, s, load(row, i));
    }
    M = block_max(m, sh);
    float part = (m == -KILN_INF) ? 0.f : s * expf(m - M);
    lnS = logf(block_sum(part, sh));
}

// x, y: (N, C). log != 0: log-softmax.
template <typename T>
__device__ void softmax_fwd(const T* x, T* y, long n, long c, int log) {
    constexpr int W = V16<T>::W;  // elements per 16-byte access
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        float M, lnS;
        row_stats(xr, c, sh, M, lnS);
        if (c % W == 0) {
            for (long i = threadIdx.x; i < c / W; i += blockDim.x) {
                V16<T> v = load16(xr, W * i);
                for (int k = 0; k < W; k++) v.v[k] = log ? v.v[k] - M - lnS : expf(v.v[k] - M - lnS);
                store16(yr, W * i, v);
            }
        } else {
            for (long i = threadIdx.x; i < c; i += blockDim.x) {
                float v = load(xr, i) - M - lnS;
                store(yr, i, log ? v : expf(v));
            }
        }
    }
}

// y, dy, dx: (N, C).
template <typename T>
__device__ void softmax_bwd(const T* y, const T* dy, T* dx, long n, long c, int log) {
    constexpr int W = V16<T>::W;  // elements per 16-byte access
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        const T* yr = y + r * c;
        const T* gr = dy + r * c;
        T* dr = dx + r * c;
        float acc = 0.f;                                // sum dy (log) or sum dy y
        bool vec = c % W == 0;
        if (vec) {
            for (long i = threadIdx.x; i < c / W; i += blockDim.x) {
                V16<T> a = load16(yr, W * i), g = load16(gr, W * i);
                for (int k = 0; k < W; k++) acc += log ? g.v[k] : g.v[k] * a.v[k];
            }
        } else {
            for (long i = threadIdx.x; i < c; i += blockDim.x) acc += log ? load(gr, i) : load(gr, i) * load(yr, i);
        }
        float s = block_sum(acc, sh);
        if (vec) {
            for (long i = threadIdx.x; i < c / W; i += blockDim.x) {
                V16<T> a = load16(yr, W * i), g = load16(gr, W * i);
                for (int k = 0; k < W; k++) a.v[k] = log ? g.v[k] - expf(a.v[k]) * s : a.v[k] * (g.v[k] - s);
                store16(dr, W * i, a);
            }
        } else {
            for (long i = threadIdx.x; i < c; i += blockDim.x) {
                float a = load(yr, i), g = load(gr, i);
                store(dr, i, log ? g - expf(a) * s : a * (g - s));
            }
        }
    }
}

// Stage 1 of the loss. logits: (N, V), targets: (N) u32 -> loss_row: (N) f32 (0 when ignored).
template <typename T>
__device__ void xent_rows(const T* x, const u32* tg, float* loss_row, long n, long v, u32 ignore) {
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        u32 t = tg[r];
        if (t == ignore) {                              // uniform across the block
            if (threadIdx.x == 0) loss_row[r] = 0.f;
            continue;
        }
        const T* xr = x + r * v;
        float M, lnS;
        row_stats(xr, v, sh, M, lnS);
        if (threadIdx.x == 0) loss_row[r] = (long)t < v ? M + lnS - load(xr, (long)t) : __int_as_float(0x7fc00000);
    }
}

// One block: the number of targets != ignore, as f32 (exact below 2^24 rows). sh: 32 floats.
__device__ __forceinline__ float count_valid(const u32* tg, long n, u32 ignore, float* sh) {
    float c = 0.f;
    for (long i = threadIdx.x; i < n; i += blockDim.x) c += tg[i] != ignore ? 1.f : 0.f;
    return block_sum(c, sh);
}

// Stage 2 of the loss, ONE block: out[0] = sum(loss_row) / count, 0 when count == 0.
template <typename T>
__device__ void xent_mean(const float* loss_row, const u32* tg, T* out, long n, u32 ignore) {
    __shared__ float sh[32];
    float acc = 0.f;
    for (long i = threadIdx.x; i < n; i += blockDim.x) acc += loss_row[i];
    float total = block_sum(acc, sh);
    float cnt = count_valid(tg, n, ignore, sh);
    if (threadIdx.x == 0) store(out, 0, cnt == 0.f ? 0.f : total / cnt);
}

// ONE block: cnt[0] = number of targets != ignore (for the backward's 1/count).
extern "C" __global__ void xent_count(const u32* tg, float* cnt, long n, u32 ignore) {
    __shared__ float sh[32];
    float c = count_valid(tg, n, ignore, sh);
    if (threadIdx.x == 0) cnt[0] = c;
}

// logits, dx: (N, V); dloss: one element (f32, or bf16 when dl_bf16); cnt: from xent_count.
// dx = g/count (softmax - onehot(t)); ignored rows and count == 0 give zeros.
template <typename T>
__device__ void xent_bwd(const T* x, const u32* tg, const void* dloss, int dl_bf16, const float* cnt,
                         T* dx, long n, long v, u32 ignore) {
    constexpr int W = V16<T>::W;  // elements per 16-byte access
    __shared__ float sh[32];
    float g = dl_bf16 ? load((const bf16*)dloss, 0) : load((const float*)dloss, 0);
    float count = cnt[0];
    float scale = count == 0.f ? 0.f : g / count;
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        u32 t = tg[r];
        const T* xr = x + r * v;
        T* dr = dx + r * v;
        bool skip = t == ignore || count == 0.f;        // uniform across the block
        float M = 0.f, lnS = 0.f, bad = 0.f;
        if (!skip) {
            row_stats(xr, v, sh, M, lnS);
            if ((long)t >= v) bad = __int_as_float(0x7fc00000);   // out-of-range target: NaN row
        }
        if (v % W == 0) {
            for (long i = threadIdx.x; i < v / W; i += blockDim.x) {
                V16<T> a;
                if (skip) { for (int k = 0; k < W; k++) a.v[k] = 0.f; }
                else {
                    a = load16(xr, W * i);
                    for (int k = 0; k < W; k++)
                        a.v[k] = (expf(a.v[k] - M - lnS) * scale - (W * i + k == (long)t ? scale : 0.f)) + bad;
                }
                store16(dr, W * i, a);
            }
        } else {
            for (long i = threadIdx.x; i < v; i += blockDim.x) {
                float a = skip ? 0.f : (expf(load(xr, i) - M - lnS) * scale - (i == (long)t ? scale : 0.f)) + bad;
                store(dr, i, a);
            }
        }
    }
}

// ---- Row-in-registers path: C % 8 == 0 and C / 8 <= RcChunk<T>::VPT * blockDim.x ------------
// The row is read from memory ONCE: chunk j (8 elements, one 16- or 32-byte access) lives in
// registers of thread j % blockDim.x, slot j / blockDim.x. Then two fixed-order block reductions
// (M = max, S = sum exp(x - M), as the CPU twin) and the output pass from registers.
// Output uses exp(x - M) * (1/S) (one exp per element on the write pass) instead of exp(x - M - ln S).
// f32 chunks are held as 8 floats (VPT = 4 chunks a thread: C <= 32768 at 1024 threads); bf16
// chunks stay packed, 4 u32 (VPT = 8: C <= 65536), so a bf16 row of 32000 needs 512 threads with
// the same 32 data registers, and two rows (blocks) share an SM: one loads while the other reduces
// and writes (one 1024-thread block per SM left the memory idle during its reductions).
template <typename T> struct RcChunk;
template <> struct RcChunk<float> {
    static constexpr int VPT = 4;
    float v[8];
    __device__ __forceinline__ float get(int e) const { return v[e]; }
    __device__ __forceinline__ void ld(const float* p, long i) {
        float4 u = *reinterpret_cast<const float4*>(p + i), w = *reinterpret_cast<const float4*>(p + i + 4);
        v[0] = u.x; v[1] = u.y; v[2] = u.z; v[3] = u.w; v[4] = w.x; v[5] = w.y; v[6] = w.z; v[7] = w.w;
    }
    __device__ __forceinline__ void fill(float f) {
#pragma unroll
        for (int e = 0; e < 8; e++) v[e] = f;
    }
    __device__ __forceinline__ float max(float m) const {
#pragma unroll
        for (int e = 0; e < 8; e++) m = fmaxf(m, v[e]);
        return m;
    }
};
template <> struct RcChunk<bf16> {
    static constexpr int VPT = 8;
    u32 w[4];                                          // element 2k in the low half of w[k]
    __device__ __forceinline__ float get(int e) const {
        return __uint_as_float((e & 1) ? (w[e >> 1] & 0xffff0000u) : (w[e >> 1] << 16));
    }
    __device__ __forceinline__ void ld(const bf16* p, long i) {
        uint4 u = *reinterpret_cast<const uint4*>(p + i);
        w[0] = u.x; w[1] = u.y; w[2] = u.z; w[3] = u.w;
    }
    __device__ __forceinline__ void fill(float f) {     // f is -inf here: exact in bf16
        u32 b = __float_as_uint(f) >> 16;
#pragma unroll
        for (int k = 0; k < 4; k++) w[k] = b | (b << 16);
    }
    // max(m, the chunk's elements), taken on the 16-bit patterns as ordered integers (sign-magnitude
    // flipped to two's complement) so the max pass shares no unpacked value with the exp pass: the
    // compiler would otherwise keep all 8 x VPT unpacked floats alive across the block reduction
    // (spills). A NaN element is ignored or wins; either way S, and the row, become NaN, as before.
    __device__ __forceinline__ static int key(int s) { return s ^ ((s >> 15) & 0x7fff); }
    __device__ __forceinline__ float max(float m) const {
        int k = key((short)(w[0] & 0xffffu));
#pragma unroll
        for (int i = 0; i < 4; i++) {
            k = ::max(k, key((short)(w[i] & 0xffffu)));
            k = ::max(k, key((int)w[i] >> 16));
        }
        return fmaxf(m, __uint_as_float((u32)(key(k) & 0xffff) << 16));
    }
};

__device__ __forceinline__ void st8(float* p, long i, const float* a) {
    *reinterpret_cast<float4*>(p + i) = make_float4(a[0], a[1], a[2], a[3]);
    *reinterpret_cast<float4*>(p + i + 4) = make_float4(a[4], a[5], a[6], a[7]);
}
__device__ __forceinline__ void st8(bf16* p, long i, const float* a) {
    *reinterpret_cast<uint4*>(p + i) = make_uint4(pack_bf16(a[0], a[1]), pack_bf16(a[2], a[3]),
                                                  pack_bf16(a[4], a[5]), pack_bf16(a[6], a[7]));
}

// Loads the row's chunks (slots past the row end hold -inf) and returns the block max M.
template <typename T>
__device__ __forceinline__ float rc_load_max(const T* row, int chunks, RcChunk<T> (&a)[RcChunk<T>::VPT], float* sh) {
    constexpr int VPT = RcChunk<T>::VPT;
    float m = -KILN_INF;
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        int j = threadIdx.x + k * blockDim.x;       // chunks <= 8192
        if (j < chunks) a[k].ld(row, 8L * j);
        else a[k].fill(-KILN_INF);
    }
#pragma unroll
    for (int k = 0; k < VPT; k++) m = a[k].max(m);  // after every load is issued
    return block_max(m, sh);
}

// Block sum S of exp(x - M) over the row.
template <typename T>
__device__ __forceinline__ float rc_sum_exp(const RcChunk<T> (&a)[RcChunk<T>::VPT], int chunks, float M, float* sh) {
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < RcChunk<T>::VPT; k++) {
        int j = threadIdx.x + k * blockDim.x;       // chunks <= 8192
        if (j < chunks) {
#pragma unroll
            for (int e = 0; e < 8; e++) s += expf(a[k].get(e) - M);
        }
    }
    return block_sum(s, sh);
}

// x, y: (N, C), C % 8 == 0. log != 0: log-softmax.
template <typename T>
__device__ void softmax_rc(const T* x, T* y, long n, long c, int log) {
    constexpr int VPT = RcChunk<T>::VPT;
    __shared__ float sh[32];
    int chunks = (int)(c >> 3);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        RcChunk<T> a[VPT];
        float M = rc_load_max(x + r * c, chunks, a, sh);
        float S = rc_sum_exp(a, chunks, M, sh);
        float lnS = logf(S), inv = 1.f / S;
        T* yr = y + r * c;
#pragma unroll
        for (int k = 0; k < VPT; k++) {
            int j = threadIdx.x + k * blockDim.x;       // chunks <= 8192
            if (j < chunks) {
                float o[8];
#pragma unroll
                for (int e = 0; e < 8; e++) o[e] = log ? a[k].get(e) - M - lnS : expf(a[k].get(e) - M) * inv;
                st8(yr, 8L * j, o);
            }
        }
    }
}

// As xent_rows, V % 8 == 0.
template <typename T>
__device__ void xent_rows_rc(const T* x, const u32* tg, float* loss_row, long n, long v, u32 ignore) {
    __shared__ float sh[32];
    int chunks = (int)(v >> 3);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        u32 t = tg[r];
        if (t == ignore) {                              // uniform across the block
            if (threadIdx.x == 0) loss_row[r] = 0.f;
            continue;
        }
        const T* xr = x + r * v;
        RcChunk<T> a[RcChunk<T>::VPT];
        float M = rc_load_max(xr, chunks, a, sh);
        float S = rc_sum_exp(a, chunks, M, sh);
        if (threadIdx.x == 0) loss_row[r] = (long)t < v ? M + logf(S) - load(xr, (long)t) : __int_as_float(0x7fc00000);
    }
}

// As xent_bwd, V % 8 == 0.
template <typename T>
__device__ void xent_bwd_rc(const T* x, const u32* tg, const void* dloss, int dl_bf16, const float* cnt,
                            T* dx, long n, long v, u32 ignore) {
    constexpr int VPT = RcChunk<T>::VPT;
    __shared__ float sh[32];
    float g = dl_bf16 ? load((const bf16*)dloss, 0) : load((const float*)dloss, 0);
    float count = cnt[0];
    float scale = count == 0.f ? 0.f : g / count;
    int chunks = (int)(v >> 3);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        u32 t = tg[r];
        T* dr = dx + r * v;
        if (t == ignore || count == 0.f) {              // uniform across the block: a zero row
            float z[8];
#pragma unroll
            for (int e = 0; e < 8; e++) z[e] = 0.f;
#pragma unroll
            for (int k = 0; k < VPT; k++) {
                int j = threadIdx.x + k * blockDim.x;       // chunks <= 8192
                if (j < chunks) st8(dr, 8L * j, z);
            }
            continue;
        }
        RcChunk<T> a[VPT];
        float M = rc_load_max(x + r * v, chunks, a, sh);
        float S = rc_sum_exp(a, chunks, M, sh);
        float f = scale / S;
        float bad = (long)t >= v ? __int_as_float(0x7fc00000) : 0.f;   // out-of-range target: NaN row
#pragma unroll
        for (int k = 0; k < VPT; k++) {
            int j = threadIdx.x + k * blockDim.x;       // chunks <= 8192
            if (j < chunks) {
                float o[8];
#pragma unroll
                for (int e = 0; e < 8; e++)
                    o[e] = (expf(a[k].get(e) - M) * f - (8L * j + e == (long)t ? scale : 0.f)) + bad;
                st8(dr, 8L * j, o);
            }
        }
    }
}

// Softmax backward with the row in registers, bf16 only (y and dy chunks both held packed:
// 2 x 4 x 4 = 32 data registers, C <= 32768 at 1024 threads): y and dy are read once instead of
// twice (the second read missed L2 when the rows in flight outgrew it). f32 would need twice the
// registers: softmax_backward_smem_f32 below keeps dy in shared memory instead. y, dy, dx: (N, C), C % 8 == 0.
#define SB_VPT 4
__device__ void softmax_bwd_rc(const bf16* y, const bf16* dy, bf16* dx, long n, long c, int log) {
    __shared__ float sh[32];
    int chunks = (int)(c >> 3);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        RcChunk<bf16> a[SB_VPT], g[SB_VPT];
#pragma unroll
        for (int k = 0; k < SB_VPT; k++) {
            int j = threadIdx.x + k * blockDim.x;       // chunks <= 4096
            if (j < chunks) { a[k].ld(y + r * c, 8L * j); g[k].ld(dy + r * c, 8L * j); }
        }
        float acc = 0.f;                                // sum dy (log) or sum dy y
#pragma unroll
        for (int k = 0; k < SB_VPT; k++) {
            int j = threadIdx.x + k * blockDim.x;
            if (j < chunks) {
#pragma unroll
                for (int e = 0; e < 8; e++) acc += log ? g[k].get(e) : g[k].get(e) * a[k].get(e);
            }
        }
        float s = block_sum(acc, sh);
#pragma unroll
        for (int k = 0; k < SB_VPT; k++) {
            int j = threadIdx.x + k * blockDim.x;
            if (j < chunks) {
                float o[8];
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    float av = a[k].get(e), gv = g[k].get(e);
                    o[e] = log ? gv - expf(av) * s : av * (gv - s);
                }
                st8(dx + r * c, 8L * j, o);
            }
        }
    }
}
extern "C" __global__ void __launch_bounds__(1024) softmax_backward_rc_bf16(const bf16* y, const bf16* dy, bf16* dx,
                                                                         long n, long c, int log) {
    softmax_bwd_rc(y, dy, dx, n, c, log);
}

// ---- f32 softmax backward, the row split between shared memory and registers ----------------
// An f32 row of 32000 fits neither registers for y and dy (64 floats a thread at 1024 threads) nor
// 48 KB of static shared memory, so softmax_bwd reads y and dy twice. Here, one block per row: dy
// goes to dynamic shared memory by cp.async (16 (C / 4) bytes, opt-in above 48 KB), y to registers,
// so y and dy are read once and dx written once: 3 row passes of traffic instead of 5. Each thread
// reads back only the shared chunks it copied itself (no barrier between copy and use).
// Row r starts at element r C (buffers 16-byte aligned): its first h = (-r C) mod 4 elements
// (head) and its last (C - h) mod 4 (tail), at most 6, are one extra element on each of threads
// 0 .. 5; the rest are 16-byte chunks, chunk j (elements h + 4j ..) in thread j % blockDim.x,
// slot j / blockDim.x. Needs C / 4 <= SX_VPT * blockDim.x and blockDim.x >= 32.
// y, dy, dx: (N, C), any C.
#define SX_VPT 8
// One row: yr, gr, dr the row's y, dy, dx; h its head; sx the dy chunks; sh 32 floats.
template <bool LOG>
__device__ __forceinline__ void softmax_bwd_smem_row(const float* yr, const float* gr, float* dr, int c, int h,
                                                     float4* sx, float* sh) {
    int chunks = (c - h) >> 2, extra = c - 4 * chunks;  // extra = head + tail
    const float4* y4 = reinterpret_cast<const float4*>(yr + h);
    const float4* g4 = reinterpret_cast<const float4*>(gr + h);
    float4* d4 = reinterpret_cast<float4*>(dr + h);
#ifdef KILN_EMU
    if (((size_t)y4 | (size_t)g4 | (size_t)d4) & 15) __trap();   // a GPU would fault
#endif
    float4 a[SX_VPT];                                   // y chunks
#pragma unroll
    for (int k = 0; k < SX_VPT; k++) {
        int j = threadIdx.x + k * blockDim.x;           // chunks <= 8192
        if (j < chunks) { cp_async16(&sx[j], &g4[j], true); a[k] = y4[j]; }
    }
    cp_async_commit();
    int t = threadIdx.x, xi = t < h ? t : 4 * chunks + t;   // this thread's extra element
    bool hx = t < extra;
    float ye = hx ? yr[xi] : 0.f, ge = hx ? gr[xi] : 0.f;
    cp_async_wait<0>();
    float acc = LOG ? ge : ge * ye;                     // sum dy (log) or sum dy y
#pragma unroll
    for (int k = 0; k < SX_VPT; k++) {
        int j = threadIdx.x + k * blockDim.x;
        if (j < chunks) {
            float4 g = sx[j];
            if (LOG) acc += g.x + g.y + g.z + g.w;
            else acc += g.x * a[k].x + g.y * a[k].y + g.z * a[k].z + g.w * a[k].w;
        }
    }
    float s = block_sum(acc, sh);
#pragma unroll
    for (int k = 0; k < SX_VPT; k++) {
        int j = threadIdx.x + k * blockDim.x;
        if (j < chunks) {
            float4 g = sx[j], v = a[k];
            if (LOG) v = make_float4(g.x - expf(v.x) * s, g.y - expf(v.y) * s, g.z - expf(v.z) * s, g.w - expf(v.w) * s);
            else v = make_float4(v.x * (g.x - s), v.y * (g.y - s), v.z * (g.z - s), v.w * (g.w - s));
            d4[j] = v;
        }
    }
    if (hx) dr[xi] = LOG ? ge - expf(ye) * s : ye * (ge - s);
}
extern "C" __global__ void __launch_bounds__(1024) softmax_backward_smem_f32(const float* y, const float* dy, float* dx,
                                                                          long n, long c, int log) {
    extern __shared__ __align__(16) float4 sx_dy[];     // (C / 4) chunks of the dy row
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        __syncthreads();                                // the previous row's reads of sx_dy are done
        int h = (int)((4 - (r * c) % 4) % 4);
        if (h > c) h = (int)c;
        if (log) softmax_bwd_smem_row<true>(y + r * c, dy + r * c, dx + r * c, (int)c, h, sx_dy, sh);
        else softmax_bwd_smem_row<false>(y + r * c, dy + r * c, dx + r * c, (int)c, h, sx_dy, sh);
    }
}

#define SOFTMAX_KERNELS(T, S)                                                                         \
extern "C" __global__ void softmax_##S(const T* x, T* y, long n, long c, int log) {                   \
    softmax_fwd(x, y, n, c, log);                                                                     \
}                                                                                                     \
extern "C" __global__ void softmax_backward_##S(const T* y, const T* dy, T* dx, long n, long c, int log) { \
    softmax_bwd(y, dy, dx, n, c, log);                                                                \
}                                                                                                     \
extern "C" __global__ void xent_rows_##S(const T* x, const u32* tg, float* loss_row, long n, long v, u32 ignore) { \
    xent_rows(x, tg, loss_row, n, v, ignore);                                                         \
}                                                                                                     \
extern "C" __global__ void xent_mean_##S(const float* loss_row, const u32* tg, T* out, long n, u32 ignore) { \
    xent_mean(loss_row, tg, out, n, ignore);                                                          \
}                                                                                                     \
extern "C" __global__ void xent_backward_##S(const T* x, const u32* tg, const void* dloss, int dl_bf16, \
                                             const float* cnt, T* dx, long n, long v, u32 ignore) {  \
    xent_bwd(x, tg, dloss, dl_bf16, cnt, dx, n, v, ignore);                                           \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(1024) softmax_rc_##S(const T* x, T* y, long n, long c, int log) { \
    softmax_rc(x, y, n, c, log);                                                                      \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(1024) xent_rows_rc_##S(const T* x, const u32* tg, float* loss_row, \
                                                                   long n, long v, u32 ignore) {     \
    xent_rows_rc(x, tg, loss_row, n, v, ignore);                                                      \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(1024) xent_backward_rc_##S(const T* x, const u32* tg, const void* dloss, \
                                int dl_bf16, const float* cnt, T* dx, long n, long v, u32 ignore) { \
    xent_bwd_rc(x, tg, dloss, dl_bf16, cnt, dx, n, v, ignore);                                        \
}
SOFTMAX_KERNELS(float, f32)
SOFTMAX_KERNELS(bf16, bf16)
