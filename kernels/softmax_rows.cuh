// kernels/softmax_rows.cuh: the row-in-registers ("rc") kernels of kernels/softmax_xent.cu
// (included there; the kernel entry points and their shared arrays stay in the .cu file).
// Needs C % 8 == 0 and C / 8 <= RcChunk<T>::VPT * blockDim.x.
//
// The row is read from memory ONCE: chunk j (8 elements, one 16- or 32-byte access) lives in
// registers of thread j % blockDim.x, slot j / blockDim.x. Then two fixed-order block reductions
// (M = max, S = sum exp(x - M), as the CPU twin) and the output pass from registers, which uses
// exp(x - M) * (1/S). Every exp is exp_approx (one MUFU.EX2): with expf's ten-instruction range
// reduction twice per element, a bf16 row of 32000 spent as long computing as reading.
// f32 chunks are held as 8 floats (VPT = 4 chunks a thread: C <= 32768 at 1024 threads); bf16
// chunks stay packed, 4 u32 (VPT = 8: C <= 65536), so a bf16 row of 32000 needs 512 threads with
// the same 32 data registers, and two rows (blocks) share an SM.
//
// Staging (st != nullptr; launched with C elements' bytes of dynamic shared memory and a grid of
// the blocks that are resident at once): while a row is reduced and written, the block's next row
// is already on its way into shared memory by cp.async, each thread copying its own chunks to its
// own slots (piece h of chunk j at slot h * chunks + j). A thread waits for its copies, reads its
// slots into registers, and only after the barrier of the max (every thread has read its slots)
// issues the next row into them. Without it a block went load -> reduce -> exp -> store with no
// load in flight while it computed (one f32 block per SM, two bf16 ones).
template <typename T> struct RcChunk;
template <> struct RcChunk<float> {
    static constexpr int VPT = 4;
    float v[8];
    __device__ __forceinline__ float get(int e) const { return v[e]; }
    __device__ __forceinline__ void ld(const float* p, long i) {
        float4 u = *reinterpret_cast<const float4*>(p + i), w = *reinterpret_cast<const float4*>(p + i + 4);
        set(u, w);
    }
    __device__ __forceinline__ void set(const float4& u, const float4& w) {
        v[0] = u.x; v[1] = u.y; v[2] = u.z; v[3] = u.w; v[4] = w.x; v[5] = w.y; v[6] = w.z; v[7] = w.w;
    }
    __device__ __forceinline__ static void issue(uint4* st, const float* p, long i, int j, int chunks) {
        cp_async16(st + j, p + i, true);
        cp_async16(st + chunks + j, p + i + 4, true);
    }
    __device__ __forceinline__ void take(const uint4* st, int j, int chunks) {
        uint4 u = st[j], w = st[chunks + j];
        set(make_float4(__uint_as_float(u.x), __uint_as_float(u.y), __uint_as_float(u.z), __uint_as_float(u.w)),
            make_float4(__uint_as_float(w.x), __uint_as_float(w.y), __uint_as_float(w.z), __uint_as_float(w.w)));
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
    __device__ __forceinline__ void set(const uint4& u) { w[0] = u.x; w[1] = u.y; w[2] = u.z; w[3] = u.w; }
    __device__ __forceinline__ void ld(const bf16* p, long i) { set(*reinterpret_cast<const uint4*>(p + i)); }
    __device__ __forceinline__ static void issue(uint4* st, const bf16* p, long i, int j, int) { cp_async16(st + j, p + i, true); }
    __device__ __forceinline__ void take(const uint4* st, int j, int) { set(st[j]); }
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

// Stages this thread's chunks of `row` into its slots of st (one cp.async group).
template <typename T>
__device__ __forceinline__ void rc_issue(const T* row, uint4* st, int chunks) {
#pragma unroll
    for (int k = 0; k < RcChunk<T>::VPT; k++) {
        int j = threadIdx.x + k * blockDim.x;           // chunks <= 8192
        if (j < chunks) RcChunk<T>::issue(st, row, 8L * j, j, chunks);
    }
    cp_async_commit();
}

// This row's chunks into a (slots past the row end hold -inf), from memory, or when st from the
// staged copy; returns the block max M. Its barrier comes after every read of the slots, so the
// caller may stage the next row into them as soon as this returns.
template <typename T>
__device__ __forceinline__ float rc_load_max(const T* row, uint4* st, int chunks,
                                             RcChunk<T> (&a)[RcChunk<T>::VPT], float* sh) {
    constexpr int VPT = RcChunk<T>::VPT;
    if (st) cp_async_wait<0>();                         // this thread's copies of the row have landed
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        int j = threadIdx.x + k * blockDim.x;           // chunks <= 8192
        if (j >= chunks) a[k].fill(-KILN_INF);
        else if (st) a[k].take(st, j, chunks);
        else a[k].ld(row, 8L * j);
    }
    float m = -KILN_INF;
#pragma unroll
    for (int k = 0; k < VPT; k++) m = a[k].max(m);      // after every load is issued
    return block_max(m, sh);                            // its barrier: every slot has been read
}

// Block sum S of exp(x - M) over the row.
template <typename T>
__device__ __forceinline__ float rc_sum_exp(const RcChunk<T> (&a)[RcChunk<T>::VPT], int chunks, float M, float* sh) {
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < RcChunk<T>::VPT; k++) {
        int j = threadIdx.x + k * blockDim.x;           // chunks <= 8192
        if (j < chunks) {
#pragma unroll
            for (int e = 0; e < 8; e++) s += exp_approx(a[k].get(e) - M);
        }
    }
    return block_sum(s, sh);
}

// x, y: (N, C), C % 8 == 0. log != 0: log-softmax. st: staging slots or nullptr.
template <typename T>
__device__ void softmax_rc(const T* x, T* y, long n, long c, int log, uint4* st) {
    constexpr int VPT = RcChunk<T>::VPT;
    __shared__ float sh[32];
    int chunks = (int)(c >> 3);
    if (st && blockIdx.x < n) rc_issue(x + blockIdx.x * c, st, chunks);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        RcChunk<T> a[VPT];
        float M = rc_load_max(x + r * c, st, chunks, a, sh);
        if (st && r + gridDim.x < n) rc_issue(x + (r + gridDim.x) * c, st, chunks);
        float S = rc_sum_exp(a, chunks, M, sh);
        float lnS = logf(S), inv = 1.f / S;
        T* yr = y + r * c;
#pragma unroll
        for (int k = 0; k < VPT; k++) {
            int j = threadIdx.x + k * blockDim.x;       // chunks <= 8192
            if (j < chunks) {
                float o[8];
#pragma unroll
                for (int e = 0; e < 8; e++) o[e] = log ? a[k].get(e) - M - lnS : exp_approx(a[k].get(e) - M) * inv;
                st8(yr, 8L * j, o);
            }
        }
    }
    if (st) cp_async_wait<0>();                         // no copy in flight when the block exits
}

// As xent_rows, V % 8 == 0. Ignored rows are neither read nor staged.
template <typename T>
__device__ void xent_rows_rc(const T* x, const u32* tg, float* loss_row, long n, long v, u32 ignore, uint4* st) {
    __shared__ float sh[32];
    int chunks = (int)(v >> 3);
    auto wanted = [&](long r) { return r < n && tg[r] != ignore; };
    if (st && wanted(blockIdx.x)) rc_issue(x + blockIdx.x * v, st, chunks);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        long rn = r + gridDim.x;
        if (tg[r] == ignore) {                          // uniform across the block
            if (threadIdx.x == 0) loss_row[r] = 0.f;
            if (st && wanted(rn)) rc_issue(x + rn * v, st, chunks);   // the slots are idle
            continue;
        }
        const T* xr = x + r * v;
        RcChunk<T> a[RcChunk<T>::VPT];
        float M = rc_load_max(xr, st, chunks, a, sh);
        if (st && wanted(rn)) rc_issue(x + rn * v, st, chunks);
        u32 t = tg[r];
        float S = rc_sum_exp(a, chunks, M, sh);
        if (threadIdx.x == 0) loss_row[r] = (long)t < v ? M + logf(S) - load(xr, (long)t) : __int_as_float(0x7fc00000);
    }
    if (st) cp_async_wait<0>();
}

// As xent_bwd, V % 8 == 0. Rows that come out zero (ignored, or count == 0) are not read.
template <typename T>
__device__ void xent_bwd_rc(const T* x, const u32* tg, const void* dloss, int dl_bf16, const float* cnt,
                            T* dx, long n, long v, u32 ignore, uint4* st) {
    constexpr int VPT = RcChunk<T>::VPT;
    __shared__ float sh[32];
    float g = dl_bf16 ? load((const bf16*)dloss, 0) : load((const float*)dloss, 0);
    float count = cnt[0];
    float scale = count == 0.f ? 0.f : g / count;
    int chunks = (int)(v >> 3);
    auto wanted = [&](long r) { return r < n && tg[r] != ignore && count != 0.f; };
    if (st && wanted(blockIdx.x)) rc_issue(x + blockIdx.x * v, st, chunks);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        long rn = r + gridDim.x;
        T* dr = dx + r * v;
        if (!wanted(r)) {                               // uniform across the block: a zero row
            if (st && wanted(rn)) rc_issue(x + rn * v, st, chunks);   // the slots are idle
            float z[8];
#pragma unroll
            for (int e = 0; e < 8; e++) z[e] = 0.f;
#pragma unroll
            for (int k = 0; k < VPT; k++) {
                int j = threadIdx.x + k * blockDim.x;   // chunks <= 8192
                if (j < chunks) st8(dr, 8L * j, z);
            }
            continue;
        }
        RcChunk<T> a[VPT];
        float M = rc_load_max(x + r * v, st, chunks, a, sh);
        if (st && wanted(rn)) rc_issue(x + rn * v, st, chunks);
        u32 t = tg[r];
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
                    o[e] = (exp_approx(a[k].get(e) - M) * f - (8L * j + e == (long)t ? scale : 0.f)) + bad;
                st8(dr, 8L * j, o);
            }
        }
    }
    if (st) cp_async_wait<0>();
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
                    o[e] = log ? gv - exp_approx(av) * s : av * (gv - s);
                }
                st8(dx + r * c, 8L * j, o);
            }
        }
    }
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
            if (LOG) v = make_float4(g.x - exp_approx(v.x) * s, g.y - exp_approx(v.y) * s, g.z - exp_approx(v.z) * s, g.w - exp_approx(v.w) * s);
            else v = make_float4(v.x * (g.x - s), v.y * (g.y - s), v.z * (g.z - s), v.w * (g.w - s));
            d4[j] = v;
        }
    }
    if (hx) dr[xi] = LOG ? ge - exp_approx(ye) * s : ye * (ge - s);
}
