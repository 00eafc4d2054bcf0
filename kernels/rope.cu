// kernels/rope.cu: rotary position embedding (Su et al. 2021, "RoFormer") in HF Llama's
// "rotate half" layout: dimension i pairs with i + D/2. Twin: src/backend/cpu/rope.rs.
//
// x, y: (B, H, T, D), positions: (B, T), inv_freq: (D/2); for i < D/2 and a = pos * inv_freq[i]:
//   y_i = x_i cos a - x_{i+D/2} sin a,    y_{i+D/2} = x_{i+D/2} cos a + x_i sin a
// `sign` = -1 rotates by -a (the inverse, used by the backward pass).
//
// One block per (b, t) row of positions (grid-stride): the block computes the D/2 angles' cos and
// sin once, in f64 like the CPU (positions reach 1e5 and beyond), into shared memory, then its
// threads sweep the H head rows of that (b, t), VEC consecutive pairs per thread. sincospi(a / pi)
// rather than sincos(a): its argument reduction is exact, so it has no Payne-Hanek slow path
// (which costs a local-memory stack frame).

template <int VEC> struct Vf { float v[VEC]; };
__device__ __forceinline__ void ldv(const float* p, long i, Vf<4>& r) {
    float4 t = *reinterpret_cast<const float4*>(p + i);
    r.v[0] = t.x; r.v[1] = t.y; r.v[2] = t.z; r.v[3] = t.w;
}
__device__ __forceinline__ void ldv(const float* p, long i, Vf<2>& r) {
    float2 t = *reinterpret_cast<const float2*>(p + i);
    r.v[0] = t.x; r.v[1] = t.y;
}
__device__ __forceinline__ void ldv(const float* p, long i, Vf<1>& r) { r.v[0] = p[i]; }
__device__ __forceinline__ void ldv(const bf16* p, long i, Vf<4>& r) {
    uint2 t = *reinterpret_cast<const uint2*>(p + i);
    r.v[0] = __uint_as_float(t.x << 16); r.v[1] = __uint_as_float(t.x & 0xffff0000u);
    r.v[2] = __uint_as_float(t.y << 16); r.v[3] = __uint_as_float(t.y & 0xffff0000u);
}
__device__ __forceinline__ void ldv(const bf16* p, long i, Vf<2>& r) {
    u32 t = *reinterpret_cast<const u32*>(p + i);
    r.v[0] = __uint_as_float(t << 16); r.v[1] = __uint_as_float(t & 0xffff0000u);
}
__device__ __forceinline__ void ldv(const bf16* p, long i, Vf<1>& r) { r.v[0] = bf2f(p[i]); }
__device__ __forceinline__ void stv(float* p, long i, const Vf<4>& r) {
    *reinterpret_cast<float4*>(p + i) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
}
__device__ __forceinline__ void stv(float* p, long i, const Vf<2>& r) {
    *reinterpret_cast<float2*>(p + i) = make_float2(r.v[0], r.v[1]);
}
__device__ __forceinline__ void stv(float* p, long i, const Vf<1>& r) { p[i] = r.v[0]; }
__device__ __forceinline__ void stv(bf16* p, long i, const Vf<4>& r) {
    *reinterpret_cast<uint2*>(p + i) = make_uint2(pack_bf16(r.v[0], r.v[1]), pack_bf16(r.v[2], r.v[3]));
}
__device__ __forceinline__ void stv(bf16* p, long i, const Vf<2>& r) {
    *reinterpret_cast<u32*>(p + i) = pack_bf16(r.v[0], r.v[1]);
}
__device__ __forceinline__ void stv(bf16* p, long i, const Vf<1>& r) { p[i] = f2bf(r.v[0]); }

// Dynamic shared memory: 2 * half floats (cos, then sign * sin). VEC divides half (the wrapper
// picks it), so every vector access is aligned to VEC elements.
template <typename T, int VEC>
__device__ __forceinline__ void rope_k(const T* x, const u32* pos, const float* inv_freq, T* y,
                                       long bt, int H, int Tn, int half, float sign) {
    extern __shared__ float cs[];
    int per_row = half / VEC, work = H * per_row;
    long D = 2L * half;
    for (long r = blockIdx.x; r < bt; r += gridDim.x) {
        long b = r / Tn, t = r - b * Tn;
        double p = (double)pos[r];
        __syncthreads();                           // the previous row's readers are done
        for (int i = threadIdx.x; i < half; i += blockDim.x) {
            double s, c;
            sincospi(p * (double)inv_freq[i] * 0.31830988618379067154, &s, &c);
            cs[i] = (float)c;
            cs[half + i] = sign * (float)s;
        }
        __syncthreads();
        for (int k = threadIdx.x; k < work; k += blockDim.x) {
            int h = k / per_row, i = (k - h * per_row) * VEC;
            long base = ((b * H + h) * Tn + t) * D;
            Vf<VEC> a, e, ya, ye;
            ldv(x, base + i, a);
            ldv(x, base + half + i, e);
#pragma unroll
            for (int q = 0; q < VEC; q++) {
                float c = cs[i + q], s = cs[half + i + q];
                ya.v[q] = a.v[q] * c - e.v[q] * s;
                ye.v[q] = e.v[q] * c + a.v[q] * s;
            }
            stv(y, base + i, ya);
            stv(y, base + half + i, ye);
        }
    }
}

#define ROPE(T, S, VEC)                                                                               \
extern "C" __global__ void rope_##S##_v##VEC(const T* x, const u32* pos, const float* inv_freq, T* y, \
                                             long bt, int H, int Tn, int half, float sign) {          \
    rope_k<T, VEC>(x, pos, inv_freq, y, bt, H, Tn, half, sign);                                       \
}
ROPE(float, f32, 1)
ROPE(float, f32, 2)
ROPE(float, f32, 4)
ROPE(bf16, bf16, 1)
ROPE(bf16, bf16, 2)
ROPE(bf16, bf16, 4)
