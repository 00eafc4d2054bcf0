// kernels/norm_warp.cu: RMSNorm and LayerNorm for rows of moderate width, one warp per row: the
// forward for bf16 (C % 8 == 0, C <= 8192) and f32 (C % 4 == 0, C <= 4096), the backward for bf16.
// Twin: src/backend/cpu/norm.rs; same formulas, f32 arithmetic and thread-level sums as the
// row-in-registers ("rc") kernels of kernels/norm.cu, whose header states them.
// x, y, dy, dx: (N, C) bf16 (the forward also f32); w, b: (C) likewise; pw, pb: (gridDim.x, C)
// f32 partial dw / db rows. Below, for bf16 (f32 pieces hold 4 values, so C <= 128 P).
// Why: a bf16 row of 4096 is 8 KB; one 512-thread block per row (the rc kernels) spends its time
// in block barriers. Here a warp owns a row: C % 8 == 0, the row is C / 8 pieces of 16 bytes
// (8 bf16), lane l holds pieces l, l + 32, .., l + 32 (P - 1) that are < C / 8 packed in
// registers (4 P registers an array; C <= 256 P), every row statistic is a warp shuffle sum, and
// there is no barrier in the row loop, so one SM has 8-16 rows in flight.
// Warp g of the grid's G warps (g = blockIdx.x * warps + warp) takes rows g, g + G, ...

// Element k (0..7) of a piece of 8 bf16 as f32.
__device__ __forceinline__ float bf8(const uint4& u, int k) {
    u32 h = (k >> 1) == 0 ? u.x : (k >> 1) == 1 ? u.y : (k >> 1) == 2 ? u.z : u.w;
    return __uint_as_float((k & 1) ? (h & 0xffff0000u) : (h << 16));
}
__device__ __forceinline__ uint4 pack8(const float* a) {
    return make_uint4(pack_bf16(a[0], a[1]), pack_bf16(a[2], a[3]), pack_bf16(a[4], a[5]), pack_bf16(a[6], a[7]));
}

// A 16-byte piece of the forward's rows: 8 bf16 or 4 f32 (the forward also runs f32 rows of
// C <= 4096, C % 4 == 0: the same 128 registers of row at P = 32).
template <typename T> struct Piece;
template <> struct Piece<bf16> {
    static constexpr int K = 8;
    __device__ __forceinline__ static float get(const uint4& u, int k) { return bf8(u, k); }
    __device__ __forceinline__ static uint4 pack(const float* a) { return pack8(a); }
};
template <> struct Piece<float> {
    static constexpr int K = 4;
    __device__ __forceinline__ static float get(const uint4& u, int k) {
        return __uint_as_float(k == 0 ? u.x : k == 1 ? u.y : k == 2 ? u.z : u.w);
    }
    __device__ __forceinline__ static uint4 pack(const float* a) {
        return make_uint4(__float_as_uint(a[0]), __float_as_uint(a[1]), __float_as_uint(a[2]), __float_as_uint(a[3]));
    }
};

// ---- forward: x, y: (N, C), w, b: (C); layer != 0: LayerNorm (b used), else RMSNorm (b unused).
// Blocks of 8 warps; w and b are re-read per row (16 KB at most, from L1). T = bf16 or float.
// Staged (st != nullptr: 512 P bytes of dynamic shared memory a warp, a grid of resident blocks):
// a warp's next row is on its way by cp.async into its lanes' own slots (piece i of lane l at
// slot 32 i + l) while it works on this one; a lane reads its slots, the warp syncs, then the
// lane refills them. Unstaged, a warp had no load in flight between its row's load and store.
template <typename T, int P>
__device__ void norm_fwd_warp(const T* x, const T* w, const T* b, T* y, long n, long c, float eps, int layer, uint4* st) {
    typedef Piece<T> E;
    constexpr int K = E::K;
    const int lane = threadIdx.x & 31;
    const long np = c / K, warps = (long)gridDim.x * (blockDim.x >> 5);
    const uint4* w4 = reinterpret_cast<const uint4*>(w);
    const uint4* b4 = reinterpret_cast<const uint4*>(b);
    uint4* slot = st ? st + (threadIdx.x >> 5) * 32 * P + lane : nullptr;
    auto stage = [&](long r) {                      // row r (if any) into this lane's slots
        if (r < n) {
            const uint4* xr = reinterpret_cast<const uint4*>(x + r * c);
#pragma unroll
            for (int i = 0; i < P; i++)
                if (lane + 32 * i < np) cp_async16(slot + 32 * i, xr + lane + 32 * i, true);
        }
        cp_async_commit();
    };
    long r = (long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (st) stage(r);
    for (; r < n; r += warps) {
        const uint4* xr = reinterpret_cast<const uint4*>(x + r * c);
        uint4* yr = reinterpret_cast<uint4*>(y + r * c);
        uint4 u[P];                                 // this lane's pieces of the row, packed
        if (st) cp_async_wait<0>();
#pragma unroll
        for (int i = 0; i < P; i++) {
            long p = lane + 32 * i;
            u[i] = p >= np ? make_uint4(0u, 0u, 0u, 0u) : st ? slot[32 * i] : xr[p];   // zeros add nothing below
        }
        if (st) {
            __syncwarp();                           // every slot read before any is refilled
            stage(r + warps);
        }
        float mu = 0.f, s;                          // y = (x - mu) s w (+ b)
        if (layer) {
            float sx = 0.f;
#pragma unroll
            for (int i = 0; i < P; i++) for (int k = 0; k < K; k++) sx += E::get(u[i], k);
            mu = warp_sum(sx) / (float)c;
            float sv = 0.f;
#pragma unroll
            for (int i = 0; i < P; i++)
                if (lane + 32 * i < np) for (int k = 0; k < K; k++) { float d = E::get(u[i], k) - mu; sv += d * d; }
            s = rsqrtf(warp_sum(sv) / (float)c + eps);
        } else {
            float ss = 0.f;
#pragma unroll
            for (int i = 0; i < P; i++) for (int k = 0; k < K; k++) { float a = E::get(u[i], k); ss += a * a; }
            s = rsqrtf(warp_sum(ss) / (float)c + eps);
        }
#pragma unroll
        for (int i = 0; i < P; i++) {
            long p = lane + 32 * i;
            if (p >= np) continue;
            uint4 g = w4[p], h = layer ? b4[p] : make_uint4(0u, 0u, 0u, 0u);
            float o[K];
            for (int k = 0; k < K; k++)
                o[k] = layer ? (E::get(u[i], k) - mu) * s * E::get(g, k) + E::get(h, k) : E::get(u[i], k) * s * E::get(g, k);
            yr[p] = E::pack(o);
        }
    }
    if (st) cp_async_wait<0>();                 // no copy in flight when the block exits
}

// ---- backward: x, dy, dx: (N, C), w: (C); pw (and pb when layer): (gridDim.x, C) f32.
// Each warp adds its rows' dw (db) terms into its own f32 rows of dynamic shared memory,
// (1 + layer) C floats a warp, lane l touching only its own pieces' columns (so no barrier until
// the rows are done). Shared layout, per warp and array: half h (columns 8p + 4h .. + 3) of piece p
// at float4 index h (C / 8) + p, so a warp's 16-byte accesses hit consecutive addresses. After
// the rows: one barrier, then the block adds its warps' rows in warp order into pw[blockIdx.x]
// (pb), and norm_colsum adds those over blocks in order. Each column's sum is therefore
// 0 + row terms in row order per warp, warps in order, blocks in order: fixed by (N, C, grid,
// warps), never by scheduling.
__device__ __forceinline__ void add8(float4* s, long np, long p, const float* t) {
    float4 a = s[p], b = s[np + p];
    a.x += t[0]; a.y += t[1]; a.z += t[2]; a.w += t[3];
    b.x += t[4]; b.y += t[5]; b.z += t[6]; b.w += t[7];
    s[p] = a;
    s[np + p] = b;
}

template <int P>
__device__ void norm_bwd_warp(const bf16* x, const bf16* w, const bf16* dy, bf16* dx, float* pw, float* pb,
                              long n, long c, float eps, int layer) {
    extern __shared__ __align__(16) float4 nw_smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwb = blockDim.x >> 5;
    const long np = c >> 3, per = (1 + layer) * 2 * np;   // float4s of shared memory a warp
    float4* sw = nw_smem + warp * per;                      // this warp's dw row; db row at sw + 2 np
    const uint4* w4 = reinterpret_cast<const uint4*>(w);
#pragma unroll
    for (int i = 0; i < P; i++) {
        long p = lane + 32 * i;
        if (p >= np) continue;
        for (int a = 0; a < 1 + layer; a++) {
            sw[2 * np * a + p] = make_float4(0.f, 0.f, 0.f, 0.f);
            sw[2 * np * a + np + p] = make_float4(0.f, 0.f, 0.f, 0.f);
        }
    }
    const long warps = (long)gridDim.x * nwb;
    for (long r = (long)blockIdx.x * nwb + warp; r < n; r += warps) {
        const uint4* xr = reinterpret_cast<const uint4*>(x + r * c);
        const uint4* gr = reinterpret_cast<const uint4*>(dy + r * c);
        uint4* dr = reinterpret_cast<uint4*>(dx + r * c);
        uint4 u[P], v[P];                           // x and dy pieces, packed; zeros past the row
#pragma unroll
        for (int i = 0; i < P; i++) {
            long p = lane + 32 * i;
            u[i] = p < np ? xr[p] : make_uint4(0u, 0u, 0u, 0u);
            v[i] = p < np ? gr[p] : make_uint4(0u, 0u, 0u, 0u);
        }
        if (layer) {
            // round 1: sum x, sum w dy; round 2: sum (x - mu)^2, sum w dy (x - mu)
            float sx = 0.f, s1 = 0.f;
#pragma unroll
            for (int i = 0; i < P; i++) {
                long p = lane + 32 * i;
                if (p >= np) continue;
                uint4 g = w4[p];
                for (int k = 0; k < 8; k++) { sx += bf8(u[i], k); s1 += bf8(g, k) * bf8(v[i], k); }
            }
            float mu = warp_sum(sx) / (float)c, m1 = warp_sum(s1) / (float)c;
            float sv = 0.f, s2 = 0.f;
#pragma unroll
            for (int i = 0; i < P; i++) {
                long p = lane + 32 * i;
                if (p >= np) continue;
                uint4 g = w4[p];
                for (int k = 0; k < 8; k++) { float d = bf8(u[i], k) - mu; sv += d * d; s2 += bf8(g, k) * bf8(v[i], k) * d; }
            }
            float s = rsqrtf(warp_sum(sv) / (float)c + eps);
            float m2 = s * warp_sum(s2) / (float)c;       // mean(w dy xh)
#pragma unroll
            for (int i = 0; i < P; i++) {
                long p = lane + 32 * i;
                if (p >= np) continue;
                uint4 g = w4[p];
                float o[8], tw[8], tb[8];
                for (int k = 0; k < 8; k++) {
                    float gk = bf8(v[i], k), xh = (bf8(u[i], k) - mu) * s;
                    o[k] = s * (bf8(g, k) * gk - m1 - xh * m2);
                    tw[k] = gk * xh;
                    tb[k] = gk;
                }
                dr[p] = pack8(o);
                add8(sw, np, p, tw);
                add8(sw + 2 * np, np, p, tb);
            }
        } else {
            float ss = 0.f, wgx = 0.f;
#pragma unroll
            for (int i = 0; i < P; i++) {
                long p = lane + 32 * i;
                if (p >= np) continue;
                uint4 g = w4[p];
                for (int k = 0; k < 8; k++) { float a = bf8(u[i], k); ss += a * a; wgx += bf8(g, k) * bf8(v[i], k) * a; }
            }
            float ri = rsqrtf(warp_sum(ss) / (float)c + eps);
            float kk = ri * ri * ri * (warp_sum(wgx) / (float)c);
#pragma unroll
            for (int i = 0; i < P; i++) {
                long p = lane + 32 * i;
                if (p >= np) continue;
                uint4 g = w4[p];
                float o[8], tw[8];
                for (int k = 0; k < 8; k++) {
                    float a = bf8(u[i], k), gk = bf8(v[i], k);
                    o[k] = ri * bf8(g, k) * gk - kk * a;
                    tw[k] = gk * a * ri;
                }
                dr[p] = pack8(o);
                add8(sw, np, p, tw);
            }
        }
    }
    __syncthreads();                                // every warp's shared rows are complete
    // float4 q of an array: half h = q / np of piece p = q % np, columns 8p + 4h ..
    for (long q = threadIdx.x; q < 2 * np; q += blockDim.x) {
        long j = 8 * (q % np) + 4 * (q / np);
        for (int a = 0; a < 1 + layer; a++) {
            float4 t = make_float4(0.f, 0.f, 0.f, 0.f);
            for (int k = 0; k < nwb; k++) {
                float4 e = nw_smem[k * per + 2 * np * a + q];
                t.x += e.x; t.y += e.y; t.z += e.z; t.w += e.w;
            }
            *reinterpret_cast<float4*>((a ? pb : pw) + (long)blockIdx.x * c + j) = t;
        }
    }
}

// P = pieces a lane holds: C <= 1024 (P = 4), 4096 (16), 8192 (32, forward only: the backward
// holds x and dy, 8 P registers). Backward blocks: at most 8 warps, as many as the shared
// memory allows (backend/cuda/norm_warp.rs).
// The forward's staging slots (dynamic shared memory), or nullptr when launched without.
__device__ __forceinline__ uint4* norm_fwd_slots(int stage) {
    extern __shared__ __align__(16) uint4 nf_slots[];
    return stage ? nf_slots : nullptr;
}
#define NORM_WARP_FWD(P, T, S)                                                                        \
extern "C" __global__ void __launch_bounds__(256) norm_fwd_warp##P##_##S(const T* x, const T* w, const T* b, \
                                                  T* y, long n, long c, float eps, int layer, int stage) { \
    norm_fwd_warp<T, P>(x, w, b, y, n, c, eps, layer, norm_fwd_slots(stage));                         \
}
#define NORM_WARP_BWD(P)                                                                              \
extern "C" __global__ void __launch_bounds__(256) norm_backward_warp##P##_bf16(const bf16* x, const bf16* w, const bf16* dy, \
                                            bf16* dx, float* pw, float* pb, long n, long c, float eps, int layer) { \
    norm_bwd_warp<P>(x, w, dy, dx, pw, pb, n, c, eps, layer);                                         \
}
NORM_WARP_FWD(4, bf16, bf16)
NORM_WARP_FWD(16, bf16, bf16)
NORM_WARP_FWD(32, bf16, bf16)
NORM_WARP_FWD(4, float, f32)
NORM_WARP_FWD(16, float, f32)
NORM_WARP_FWD(32, float, f32)
NORM_WARP_BWD(4)
NORM_WARP_BWD(16)
