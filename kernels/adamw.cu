// kernels/adamw.cu: fused AdamW step (Loshchilov & Hutter 2019), one pass over each parameter.
// Twin: src/backend/cpu/adamw.rs. p, m, v: (N) f32 master weights and state; g: (N) f32 or bf16.
// With the constants rounded to f32 on the host exactly as the CPU rounds them
// (ib1 = 1 - b1, ib2 = 1 - b2, ic1 = 1 / (1 - b1^t), ic2 = 1 / (1 - b2^t)):
//   m' = b1 m + ib1 g      v' = b2 v + ib2 g g
//   p' = p - lr (wd p + (m' ic1) / (sqrt(v' ic2) + eps))
// Memory-bound (7 streams of 4 bytes per element with an f32 g): grid-stride, 4 elements per
// thread per step with 16-byte loads and stores, then a scalar tail.

struct Hyper { float b1, b2, ib1, ib2, ic1, ic2, lr, wd, eps; };

__device__ __forceinline__ void step(float& p, float g, float& m, float& v, const Hyper& h) {
    float mi = h.b1 * m + h.ib1 * g;
    float vi = h.b2 * v + h.ib2 * g * g;
    p = p - h.lr * (h.wd * p + (mi * h.ic1) / (sqrtf(vi * h.ic2) + h.eps));
    m = mi;
    v = vi;
}

__device__ __forceinline__ float4 ld4(const float* p, long i) { return *reinterpret_cast<const float4*>(p + i); }
__device__ __forceinline__ float4 ld4(const bf16* p, long i) {
    uint2 t = *reinterpret_cast<const uint2*>(p + i);
    return make_float4(__uint_as_float(t.x << 16), __uint_as_float(t.x & 0xffff0000u),
                       __uint_as_float(t.y << 16), __uint_as_float(t.y & 0xffff0000u));
}
__device__ __forceinline__ void st4(float* p, long i, float4 v) { *reinterpret_cast<float4*>(p + i) = v; }

template <typename G>
__device__ __forceinline__ void adamw_k(const float* p, const G* g, const float* m, const float* v,
                                        float* po, float* mo, float* vo, long n, const Hyper& h) {
    long n4 = n / 4;
    GRID_STRIDE(i, n4) {
        float4 pp = ld4(p, 4 * i), gg = ld4(g, 4 * i), mm = ld4(m, 4 * i), vv = ld4(v, 4 * i);
        step(pp.x, gg.x, mm.x, vv.x, h);
        step(pp.y, gg.y, mm.y, vv.y, h);
        step(pp.z, gg.z, mm.z, vv.z, h);
        step(pp.w, gg.w, mm.w, vv.w, h);
        st4(po, 4 * i, pp);
        st4(mo, 4 * i, mm);
        st4(vo, 4 * i, vv);
    }
    GRID_STRIDE(k, n - 4 * n4) {
        long i = 4 * n4 + k;
        float pp = p[i], mm = m[i], vv = v[i];
        step(pp, load(g, i), mm, vv, h);
        po[i] = pp;
        mo[i] = mm;
        vo[i] = vv;
    }
}

#define ADAMW(G, S)                                                                                   \
extern "C" __global__ void adamw_g##S(const float* p, const G* g, const float* m, const float* v,      \
                                      float* po, float* mo, float* vo, long n, Hyper h) {              \
    adamw_k(p, g, m, v, po, mo, vo, n, h);                                                            \
}
ADAMW(float, f32)
ADAMW(bf16, bf16)
