// kernels/norm_rows.cuh: the row-in-registers ("rc") kernels of kernels/norm.cu (included
// there; the kernel entry points stay in the .cu file). Twin: src/backend/cpu/norm.rs.
// Row-in-registers path: C % 8 == 0 and C / 8 <= blockDim.x (C <= 8192 at 1024 threads).
// (the backward, with its prefetch registers, is built for <= 512 threads: C <= 4096)
// Thread t owns the 8 columns 8t..8t+7 (one 16- or 32-byte access per array; threads t >= C/8
// own none and add zeros), so each row is read from memory once and every statistic comes from
// registers; w (and the backward's dw / db sums) stay in registers across the block's rows.
// Backward: block b takes rows b, b + G, ...; the next row's x and dy loads are issued before
// this row's reductions (prefetch). Reductions pair up two sums per barrier round (block_sum2).
template <typename T> struct Raw8;
template <> struct Raw8<float> { float4 lo, hi; };
template <> struct Raw8<bf16> { uint4 u; };
__device__ __forceinline__ Raw8<float> ldr(const float* p) {
    Raw8<float> r; r.lo = reinterpret_cast<const float4*>(p)[0]; r.hi = reinterpret_cast<const float4*>(p)[1]; return r;
}
__device__ __forceinline__ Raw8<bf16> ldr(const bf16* p) { Raw8<bf16> r; r.u = *reinterpret_cast<const uint4*>(p); return r; }
__device__ __forceinline__ void cvt8(const Raw8<float>& r, float* a) {
    a[0] = r.lo.x; a[1] = r.lo.y; a[2] = r.lo.z; a[3] = r.lo.w; a[4] = r.hi.x; a[5] = r.hi.y; a[6] = r.hi.z; a[7] = r.hi.w;
}
__device__ __forceinline__ void cvt8(const Raw8<bf16>& r, float* a) {
    a[0] = __uint_as_float(r.u.x << 16); a[1] = __uint_as_float(r.u.x & 0xffff0000u);
    a[2] = __uint_as_float(r.u.y << 16); a[3] = __uint_as_float(r.u.y & 0xffff0000u);
    a[4] = __uint_as_float(r.u.z << 16); a[5] = __uint_as_float(r.u.z & 0xffff0000u);
    a[6] = __uint_as_float(r.u.w << 16); a[7] = __uint_as_float(r.u.w & 0xffff0000u);
}
// 8 values at p (16- or 32-byte aligned), or zeros when !own.
template <typename T> __device__ __forceinline__ void ld8z(const T* p, bool own, float* a) {
    if (own) cvt8(ldr(p), a);
    else for (int e = 0; e < 8; e++) a[e] = 0.f;
}
__device__ __forceinline__ void st8(float* p, const float* a) {
    reinterpret_cast<float4*>(p)[0] = make_float4(a[0], a[1], a[2], a[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(a[4], a[5], a[6], a[7]);
}
__device__ __forceinline__ void st8(bf16* p, const float* a) {
    *reinterpret_cast<uint4*>(p) = make_uint4(pack_bf16(a[0], a[1]), pack_bf16(a[2], a[3]),
                                              pack_bf16(a[4], a[5]), pack_bf16(a[6], a[7]));
}
// Two block sums in one barrier round; every thread gets both. sh: 2 x 64 floats used in turn
// (ph flips each call), so ONE barrier per call suffices: a thread writes sh[ph] again only two
// calls later, after the barrier of the call between, which every thread reaches only once it has
// read this call's sums.
__device__ __forceinline__ void block_sum2(float& a, float& b, float (*sh)[64], int& ph) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    float* s = sh[ph];
    ph ^= 1;
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) { s[warp] = a; s[32 + warp] = b; }
    __syncthreads();
    a = warp_sum(lane < nw ? s[lane] : 0.f);
    b = warp_sum(lane < nw ? s[32 + lane] : 0.f);
}

// x, y: (N, C), w, b: (C); layer != 0: LayerNorm (b used), else RMSNorm (b unused, may be x).
template <typename T>
__device__ void norm_fwd_rc(const T* x, const T* w, const T* b, T* y, long n, long c, float eps, int layer) {
    __shared__ float sh[64];
    long j = 8L * threadIdx.x;
    bool own = j < c;
    long jj = own ? j : 0;                          // own => j + 8 <= c (C % 8 == 0)
    float ww[8], bb[8];
    ld8z(w + jj, own, ww);
    ld8z(b + jj, own && layer, bb);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        float a[8];
        ld8z(x + r * c + jj, own, a);
        float o[8];
        if (layer) {
            float acc = 0.f;
            for (int e = 0; e < 8; e++) acc += a[e];
            float mu = block_sum(acc, sh) / (float)c;
            acc = 0.f;
            if (own) for (int e = 0; e < 8; e++) acc += (a[e] - mu) * (a[e] - mu);
            float s = rsqrtf(block_sum(acc, sh) / (float)c + eps);
            for (int e = 0; e < 8; e++) o[e] = (a[e] - mu) * s * ww[e] + bb[e];
        } else {
            float ss = 0.f;
            for (int e = 0; e < 8; e++) ss += a[e] * a[e];
            float ri = rsqrtf(block_sum(ss, sh) / (float)c + eps);
            for (int e = 0; e < 8; e++) o[e] = a[e] * ri * ww[e];
        }
        if (own) st8(y + r * c + j, o);
    }
}

// Staging (the backward's default, STAGES > 0): instead of one row of registers ahead, the next
// STAGES - 1 rows of the block are in flight by cp.async into dynamic shared memory, stage i % STAGES
// holding the block's row i: with one 16 KB bf16 row pair in flight per block, an H200 moved LN
// backward rows at 0.38 of the copy rate. Stage layout, in 16-byte slots of T = blockDim.x:
// x pieces [q T + t], then dy pieces [(Q + q) T + t], q < Q = 16-byte pieces of a thread's 8
// columns (1 bf16, 2 f32). Thread t reads back only its own slots; a stage is refilled in the
// next row's iteration, after its first barrier (every thread has finished the row before).
template <typename T> __device__ __forceinline__ Raw8<T> ld_slots(const uint4* s, int nt);
template <> __device__ __forceinline__ Raw8<float> ld_slots<float>(const uint4* s, int nt) {
    Raw8<float> r;
    r.lo = *reinterpret_cast<const float4*>(s);
    r.hi = *reinterpret_cast<const float4*>(s + nt);
    return r;
}
template <> __device__ __forceinline__ Raw8<bf16> ld_slots<bf16>(const uint4* s, int) { Raw8<bf16> r; r.u = *s; return r; }

// x, dy, dx: (N, C), w: (C); pw (and pb when layer): (gridDim.x, C) f32 partial dw (db) rows.
// STAGES == 0: the next row's x and dy in registers (st unused); else st holds the stages.
template <typename T, int STAGES>
__device__ void norm_bwd_rc(const T* x, const T* w, const T* dy, T* dx, float* pw, float* pb,
                            long n, long c, float eps, int layer, uint4* st) {
    constexpr int Q = sizeof(T) / 2;                // 16-byte pieces of 8 values
    __shared__ float sh[2][64];
    int ph = 0;                                     // block_sum2 buffer in turn
    const int nt = blockDim.x;
    long j = 8L * threadIdx.x;
    bool own = j < c;
    long jj = own ? j : 0;                          // a safe offset for threads owning nothing
    float ww[8], aw[8], ab[8];
    ld8z(w + jj, own, ww);
    for (int e = 0; e < 8; e++) { aw[e] = 0.f; ab[e] = 0.f; }
    // Stages row r into stage s (one cp.async group, empty past the end or for idle threads).
    auto stage = [&](long r, int s) {
        if (own && r < n) {
            uint4* b = st + (long)s * 2 * Q * nt + threadIdx.x;
#pragma unroll
            for (int q = 0; q < Q; q++) {
                cp_async16(b + q * nt, x + r * c + j + q * (8 / Q), true);
                cp_async16(b + (Q + q) * nt, dy + r * c + j + q * (8 / Q), true);
            }
        }
        cp_async_commit();
    };
    Raw8<T> xn, gn;                                 // STAGES == 0: the next row's x and dy, raw
    long r = blockIdx.x;
    if constexpr (STAGES == 0) {
        if (own && r < n) { xn = ldr(x + r * c + j); gn = ldr(dy + r * c + j); }
    } else {
        for (int s = 0; s < STAGES - 1; s++) stage(r + s * (long)gridDim.x, s);
    }
    for (int i = 0; r < n; r += gridDim.x, i++) {
        // This row's x and dy as f32 (zeros for idle threads): from the registers loaded one row
        // ahead, or (staged) re-read from the row's slots by each pass, so no row values stay in
        // registers across the barriers (the staged kernel runs two blocks an SM, 64 registers).
        float a0[8], g0[8];
        constexpr int NS = STAGES > 0 ? STAGES : 1;     // (a modulus for the unstaged instance too)
        const uint4* b = STAGES > 0 ? st + (long)(i % NS) * 2 * Q * nt + threadIdx.x : nullptr;
        if constexpr (STAGES == 0) {
            if (own) { cvt8(xn, a0); cvt8(gn, g0); }
            else for (int e = 0; e < 8; e++) { a0[e] = 0.f; g0[e] = 0.f; }
            long rn = r + gridDim.x;
            if (own && rn < n) { xn = ldr(x + rn * c + j); gn = ldr(dy + rn * c + j); }
        } else {
            cp_async_wait<STAGES - 2>();            // this thread's copies of row i have landed
        }
        auto fetch = [&](float (&a)[8], float (&g)[8]) {
            if constexpr (STAGES == 0) {
                for (int e = 0; e < 8; e++) { a[e] = a0[e]; g[e] = g0[e]; }
            } else if (own) {
                cvt8(ld_slots<T>(b, nt), a);
                cvt8(ld_slots<T>(b + Q * nt, nt), g);
            } else {
                for (int e = 0; e < 8; e++) { a[e] = 0.f; g[e] = 0.f; }
            }
        };
        // After the first barrier of row i every thread is done with row i - 1's stage: refill it.
        auto refill = [&]() {
            if constexpr (STAGES > 0) stage(r + (STAGES - 1) * (long)gridDim.x, (i + STAGES - 1) % STAGES);
        };
        float a[8], g[8], o[8];
        fetch(a, g);
        if (layer) {
            // round 1: sum x, sum w dy; round 2: sum (x - mu)^2, sum w dy (x - mu)
            float sx = 0.f, s1 = 0.f;
            for (int e = 0; e < 8; e++) { sx += a[e]; s1 += ww[e] * g[e]; }
            block_sum2(sx, s1, sh, ph);
            refill();
            fetch(a, g);
            float mu = sx / (float)c, m1 = s1 / (float)c;
            float sv = 0.f, s2 = 0.f;
            if (own) for (int e = 0; e < 8; e++) { float d = a[e] - mu; sv += d * d; s2 += ww[e] * g[e] * d; }
            block_sum2(sv, s2, sh, ph);
            fetch(a, g);
            float s = rsqrtf(sv / (float)c + eps);
            float m2 = s * s2 / (float)c;           // mean(w dy xh)
            for (int e = 0; e < 8; e++) {
                float xh = (a[e] - mu) * s;
                o[e] = s * (ww[e] * g[e] - m1 - xh * m2);
                aw[e] += g[e] * xh;
                ab[e] += g[e];
            }
        } else {
            float ss = 0.f, wgx = 0.f;
            for (int e = 0; e < 8; e++) { ss += a[e] * a[e]; wgx += ww[e] * g[e] * a[e]; }
            block_sum2(ss, wgx, sh, ph);
            refill();
            fetch(a, g);
            float ri = rsqrtf(ss / (float)c + eps);
            float kk = ri * ri * ri * (wgx / (float)c);
            for (int e = 0; e < 8; e++) {
                o[e] = ri * ww[e] * g[e] - kk * a[e];
                aw[e] += g[e] * a[e] * ri;
            }
        }
        if (own) st8(dx + r * c + j, o);
    }
    if constexpr (STAGES > 0) cp_async_wait<0>();   // no copy in flight when the block exits
    if (own) {
        st8(pw + (long)blockIdx.x * c + j, aw);
        if (layer) st8(pb + (long)blockIdx.x * c + j, ab);
    }
}

