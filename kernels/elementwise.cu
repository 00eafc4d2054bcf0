// kernels/elementwise.cu: unary maps, affine, broadcasting binary ops, SwiGLU and casts.
// Twin: src/backend/cpu/elementwise.rs (op codes follow the order of UnaryOp / BinaryOp there).
// All memory-bound: contiguous paths move 4 f32 or 8 bf16 elements per thread per step (16-byte
// loads) in a grid-stride loop; arithmetic is f32 for both storage types.


__device__ __forceinline__ float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }

// UnaryOp: Neg Exp Log Sqrt Tanh Square Recip Relu Gelu Silu GeluGrad SiluGrad Step
__device__ __forceinline__ float unary_f(int op, float x) {
    const float c = 0.7978845608028654f, k = 0.044715f;
    switch (op) {
        case 0: return -x;
        case 1: return expf(x);
        case 2: return logf(x);
        case 3: return sqrtf(x);
        case 4: return tanhf(x);
        case 5: return x * x;
        case 6: return 1.f / x;
        case 7: return x > 0.f ? x : 0.f;
        case 8: return x * sigmoidf(2.f * c * (x + k * x * x * x));
        case 9: return x * sigmoidf(x);
        case 10: {
            float s = sigmoidf(2.f * c * (x + k * x * x * x));
            return s + x * s * (1.f - s) * 2.f * c * (1.f + 3.f * k * x * x);
        }
        case 11: { float s = sigmoidf(x); return s * (1.f + x * (1.f - s)); }
        default: return x > 0.f ? 1.f : 0.f;
    }
}
// BinaryOp: Add Sub Mul Div Maximum Ge
__device__ __forceinline__ float binary_f(int op, float a, float b) {
    switch (op) {
        case 0: return a + b;
        case 1: return a - b;
        case 2: return a * b;
        case 3: return a / b;
        case 4: return (a >= b || b != b) ? a : b;
        default: return a >= b ? 1.f : 0.f;
    }
}

// y[i] = f(x[i]) over n elements; n4 = n / 4 vector steps, then a scalar tail.
template <typename T, typename F>
__device__ __forceinline__ void map1(const T* x, T* y, long n, F f) {
    long n4 = n / 4;
    GRID_STRIDE(i, n4) {
        V4 v = load4(x, 4 * i);
        for (int j = 0; j < 4; j++) v.v[j] = f(v.v[j]);
        store4(y, 4 * i, v);
    }
    GRID_STRIDE(i, n - 4 * n4) store(y, 4 * n4 + i, f(load(x, 4 * n4 + i)));
}
template <typename T, typename F>
__device__ __forceinline__ void map2(const T* a, const T* b, T* y, long n, F f) {
    long n4 = n / 4;
    GRID_STRIDE(i, n4) {
        V4 u = load4(a, 4 * i), w = load4(b, 4 * i);
        for (int j = 0; j < 4; j++) u.v[j] = f(u.v[j], w.v[j]);
        store4(y, 4 * i, u);
    }
    GRID_STRIDE(i, n - 4 * n4) store(y, 4 * n4 + i, f(load(a, 4 * n4 + i), load(b, 4 * n4 + i)));
}

// bf16 storage: 8 elements (one 16-byte access) per step, so each thread keeps more bytes in
// flight; more specialised than the templates above, so overload resolution picks these for bf16.
struct V8 { float v[8]; };
__device__ __forceinline__ V8 load8(const bf16* p, long i) {
    uint4 t = *reinterpret_cast<const uint4*>(p + i);
    V8 r;
    r.v[0] = __uint_as_float(t.x << 16); r.v[1] = __uint_as_float(t.x & 0xffff0000u);
    r.v[2] = __uint_as_float(t.y << 16); r.v[3] = __uint_as_float(t.y & 0xffff0000u);
    r.v[4] = __uint_as_float(t.z << 16); r.v[5] = __uint_as_float(t.z & 0xffff0000u);
    r.v[6] = __uint_as_float(t.w << 16); r.v[7] = __uint_as_float(t.w & 0xffff0000u);
    return r;
}
__device__ __forceinline__ void store8(bf16* p, long i, const V8& r) {
    *reinterpret_cast<uint4*>(p + i) = make_uint4(pack_bf16(r.v[0], r.v[1]), pack_bf16(r.v[2], r.v[3]),
                                                  pack_bf16(r.v[4], r.v[5]), pack_bf16(r.v[6], r.v[7]));
}
// Two pieces a step, i and i + stride (launched with a thread per 16 elements), both loads issued
// before either is computed: the H200 ran bf16 gelu at 0.69 of the copy rate with one piece a
// thread, its math between the load and the store with nothing else in flight.
template <typename F>
__device__ __forceinline__ void map1(const bf16* x, bf16* y, long n, F f) {
    const long n8 = n / 8, stride = (long)blockDim.x * gridDim.x;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n8; i += 2 * stride) {
        const bool two = i + stride < n8;
        V8 u = load8(x, 8 * i), w;
        if (two) w = load8(x, 8 * (i + stride));
        for (int j = 0; j < 8; j++) u.v[j] = f(u.v[j]);
        store8(y, 8 * i, u);
        if (two) {
            for (int j = 0; j < 8; j++) w.v[j] = f(w.v[j]);
            store8(y, 8 * (i + stride), w);
        }
    }
    GRID_STRIDE(i, n - 8 * n8) store(y, 8 * n8 + i, f(load(x, 8 * n8 + i)));
}
template <typename F>
__device__ __forceinline__ void map2(const bf16* a, const bf16* b, bf16* y, long n, F f) {
    const long n8 = n / 8, stride = (long)blockDim.x * gridDim.x;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n8; i += 2 * stride) {
        const bool two = i + stride < n8;
        V8 u = load8(a, 8 * i), w = load8(b, 8 * i), u2, w2;
        if (two) { u2 = load8(a, 8 * (i + stride)); w2 = load8(b, 8 * (i + stride)); }
        for (int j = 0; j < 8; j++) u.v[j] = f(u.v[j], w.v[j]);
        store8(y, 8 * i, u);
        if (two) {
            for (int j = 0; j < 8; j++) u2.v[j] = f(u2.v[j], w2.v[j]);
            store8(y, 8 * (i + stride), u2);
        }
    }
    GRID_STRIDE(i, n - 8 * n8) store(y, 8 * n8 + i, f(load(a, 8 * n8 + i), load(b, 8 * n8 + i)));
}

// Unary maps with the op switch hoisted out of the loop for the common activations. For bf16
// storage the sigmoid uses the fast exp / divide (relative error ~1e-6, far below the 2^-9 of the
// bf16 result); f32 keeps the exact unary_f arithmetic.
__device__ __forceinline__ float sigmoid_fast(float x) { return __fdividef(1.f, 1.f + __expf(-x)); }
__device__ __forceinline__ float gelu_fast(float x) {
    const float c = 0.7978845608028654f, k = 0.044715f;
    return x * sigmoid_fast(2.f * c * (x + k * x * x * x));
}
__device__ __forceinline__ float silu_fast(float x) { return x * sigmoid_fast(x); }
template <typename T>
__device__ __forceinline__ void unary_map(const T* x, T* y, long n, int op) {
    switch (op) {
        case 8: map1(x, y, n, [](float v) { return unary_f(8, v); }); break;
        case 9: map1(x, y, n, [](float v) { return unary_f(9, v); }); break;
        default: map1(x, y, n, [op](float v) { return unary_f(op, v); }); break;
    }
}
template <>
__device__ __forceinline__ void unary_map<bf16>(const bf16* x, bf16* y, long n, int op) {
    switch (op) {
        case 8: map1(x, y, n, [](float v) { return gelu_fast(v); }); break;
        case 9: map1(x, y, n, [](float v) { return silu_fast(v); }); break;
        default: map1(x, y, n, [op](float v) { return unary_f(op, v); }); break;
    }
}

// SwiGLU backward: dg = dy u s (1 + g (1 - s)), du = dy g s, s = sigmoid(g). bf16: 16-byte pieces.
__device__ __forceinline__ void swiglu_bwd1(float gv, float uv, float d, float& dgv, float& duv) {
    float s = sigmoidf(gv);
    dgv = d * uv * s * (1.f + gv * (1.f - s));
    duv = d * gv * s;
}
template <typename T>
__device__ __forceinline__ void swiglu_bwd_each(const T* g, const T* u, const T* dy, T* dg, T* du, long n) {
    GRID_STRIDE(i, n) {
        float a, b;
        swiglu_bwd1(load(g, i), load(u, i), load(dy, i), a, b);
        store(dg, i, a);
        store(du, i, b);
    }
}
template <typename T>
__device__ __forceinline__ void swiglu_bwd(const T* g, const T* u, const T* dy, T* dg, T* du, long n) {
    swiglu_bwd_each(g, u, dy, dg, du, n);
}
template <>
__device__ __forceinline__ void swiglu_bwd<bf16>(const bf16* g, const bf16* u, const bf16* dy, bf16* dg, bf16* du, long n) {
    const long n8 = n / 8;
    GRID_STRIDE(i, n8) {
        V8 gv = load8(g, 8 * i), uv = load8(u, 8 * i), d = load8(dy, 8 * i), a, b;
        for (int j = 0; j < 8; j++) swiglu_bwd1(gv.v[j], uv.v[j], d.v[j], a.v[j], b.v[j]);
        store8(dg, 8 * i, a);
        store8(du, 8 * i, b);
    }
    const long k = 8 * n8;                          // the tail, element by element
    swiglu_bwd_each(g + k, u + k, dy + k, dg + k, du + k, n - k);
}

// Broadcast layout, passed by value: rank, then output dims, then a's and b's strides in
// elements (0 on broadcast axes), each padded to 8 entries.
struct Bcast { u32 w[32]; };

template <typename T>
__device__ void binary_bcast(const T* a, const T* b, T* y, long n, int op, const Bcast& bc) {
    int rank = bc.w[0];
    GRID_STRIDE(i, n) {
        long rem = i, oa = 0, ob = 0;
        // Innermost axis first; unrolled with constant indices so `bc` stays in parameter space.
#pragma unroll
        for (int e = 0; e < 8; e++) {
            int d = 7 - e;
            if (d < rank) {
                long dim = bc.w[1 + d], idx = rem % dim;
                rem /= dim;
                oa += idx * bc.w[9 + d];
                ob += idx * bc.w[17 + d];
            }
        }
        store(y, i, binary_f(op, load(a, oa), load(b, ob)));
    }
}

#define EW_KERNELS(T, S)                                                                              \
extern "C" __global__ void unary_##S(const T* x, T* y, long n, int op) {                              \
    unary_map(x, y, n, op);                                                                           \
}                                                                                                     \
extern "C" __global__ void affine_##S(const T* x, T* y, long n, float mul, float add) {               \
    map1(x, y, n, [mul, add](float v) { return v * mul + add; });                                     \
}                                                                                                     \
extern "C" __global__ void binary_same_##S(const T* a, const T* b, T* y, long n, int op) {            \
    map2(a, b, y, n, [op](float u, float w) { return binary_f(op, u, w); });                          \
}                                                                                                     \
extern "C" __global__ void binary_bcast_##S(const T* a, const T* b, T* y, long n, int op, Bcast bc) { \
    binary_bcast(a, b, y, n, op, bc);                                                                 \
}                                                                                                     \
extern "C" __global__ void swiglu_##S(const T* g, const T* u, T* y, long n) {                         \
    map2(g, u, y, n, [](float gv, float uv) { return gv * sigmoidf(gv) * uv; });                      \
}                                                                                                     \
extern "C" __global__ void swiglu_backward_##S(const T* g, const T* u, const T* dy, T* dg, T* du, long n) { \
    swiglu_bwd(g, u, dy, dg, du, n);                                                                  \
}
EW_KERNELS(float, f32)
EW_KERNELS(bf16, bf16)

// ---- casts ------------------------------------------------------------------------------------
// f32 <-> bf16: 8 elements per step (two 16-byte f32 accesses, one 16-byte bf16 access), then a
// scalar tail of n % 8; launched with a thread per 8 elements.
extern "C" __global__ void cast_f32_bf16(const float* x, bf16* y, long n) {
    long n8 = n / 8;
    GRID_STRIDE(i, n8) {
        float4 a = reinterpret_cast<const float4*>(x)[2 * i], b = reinterpret_cast<const float4*>(x)[2 * i + 1];
        reinterpret_cast<uint4*>(y)[i] = make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w),
                                                    pack_bf16(b.x, b.y), pack_bf16(b.z, b.w));
    }
    GRID_STRIDE(i, n - 8 * n8) y[8 * n8 + i] = f2bf(x[8 * n8 + i]);
}
extern "C" __global__ void cast_bf16_f32(const bf16* x, float* y, long n) {
    long n8 = n / 8;
    GRID_STRIDE(i, n8) {
        V8 v = load8(x, 8 * i);
        reinterpret_cast<float4*>(y)[2 * i] = make_float4(v.v[0], v.v[1], v.v[2], v.v[3]);
        reinterpret_cast<float4*>(y)[2 * i + 1] = make_float4(v.v[4], v.v[5], v.v[6], v.v[7]);
    }
    GRID_STRIDE(i, n - 8 * n8) y[8 * n8 + i] = bf2f(x[8 * n8 + i]);
}
extern "C" __global__ void cast_f32_u32(const float* x, u32* y, long n) { GRID_STRIDE(i, n) y[i] = (u32)x[i]; }
extern "C" __global__ void cast_u32_f32(const u32* x, float* y, long n) { GRID_STRIDE(i, n) y[i] = (float)x[i]; }
