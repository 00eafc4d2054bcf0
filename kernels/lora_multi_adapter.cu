// kernels/lora_multi_adapter.cu: the adapter terms of multi-adapter LoRA, each row i of the batch
// using adapter g(i) = ids[i]. Twin: backend/cpu/lora_multi_adapter.rs. Shapes: x (N, K),
// a (G, K, R), b (G, R, M), ids (N), y (N, M). The shared products x W, dY W^T and X^T dY run on
// kernels/lora.cu's GEMM (launch wrappers in backend/cuda/lora_multi_adapter.rs).
//
// Two kernels, both f32 accumulation, no atomics (every output written by one thread, sums in a
// fixed order: deterministic):
//
// lora_multi_adapter_rows_<TP>_<TQ>_<TC>: a row-gathered thin GEMM
//   out[i, c] = base[i, c] + alpha[g(i)] * sum_{kk < kdim} P[i, kk] * Q[g(i) * qg + kk * qr + c * qc]
//   P (N, kdim) row-major; Q one (kdim, ncols) operand per adapter, addressed by strides (so B^T
//   and A^T cost nothing); base f32 (N, ncols) or 0 for none; alpha (G) f32 or 0 for ones.
//   Serves t = s x A (base 0), y = xW + t B, u = s dY B^T (base 0), dX = dY W^T + u A^T.
//   Grid (N * ceil(ncols / 32)) flattened (column tile fastest), 256 threads = 8 warps x 32 lanes:
//   lane = column, warp w sums kk = w, w + 8, ...; the 8 partials are summed in order by warp 0.
//
// lora_multi_adapter_wgrad_<TP>_<TQ>_<TC>: per-adapter reductions over the rows
//   out[g, a, c] = alpha[g] * sum_{i: g(i) = g, in order} P[i, a] * Q[i, c]
//   P (N, pa) row-major, Q (N, qc) row-major, out (G, pa, qc). Serves dA_g = X_g^T u (alpha 0)
//   and dB_g = s_g t_g^T dY_g. Grid (ceil(qc / 32), ceil(pa / 8), G), 256 threads: warp = row a,
//   lane = column c; every block scans all N ids (rows of other adapters are skipped).

#define LMA_W 8     // warps per block
#define LMA_C 32    // columns per block

template <typename TP, typename TQ, typename TC>
__device__ void lma_rows_body(const TP* __restrict__ p, int kdim, const TQ* __restrict__ q, long qg, long qr, long qc,
                              const u32* __restrict__ ids, const float* __restrict__ alpha, const float* __restrict__ base,
                              TC* __restrict__ out, int ncols) {
    __shared__ float part[LMA_W][LMA_C];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int ntile = (ncols + LMA_C - 1) / LMA_C;
    const long i = blockIdx.x / ntile;
    const int c = (int)(blockIdx.x % ntile) * LMA_C + lane;
    const long g = ids[i];
    float acc = 0.f;
    if (c < ncols) {
        const TP* pi = p + i * (long)kdim;
        const TQ* qgp = q + g * qg + (long)c * qc;
        for (int kk = warp; kk < kdim; kk += LMA_W) acc = fmaf(load(pi, kk), load(qgp, (long)kk * qr), acc);
    }
    part[warp][lane] = acc;
    __syncthreads();
    if (warp == 0 && c < ncols) {
        float s = 0.f;
#pragma unroll
        for (int w = 0; w < LMA_W; ++w) s += part[w][lane];
        if (alpha != 0) s *= alpha[g];
        if (base != 0) s += base[i * ncols + c];
        store(out, i * ncols + c, s);
    }
}

template <typename TP, typename TQ, typename TC>
__device__ void lma_wgrad_body(const TP* __restrict__ p, int pa, const TQ* __restrict__ q, int qc, const u32* __restrict__ ids,
                               int n, const float* __restrict__ alpha, TC* __restrict__ out) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int a = blockIdx.y * LMA_W + warp, c = blockIdx.x * LMA_C + lane;
    const u32 g = blockIdx.z;
    if (a >= pa || c >= qc) return;  // no barrier below: early exit is safe
    float acc = 0.f;
    // Not unrolled: ptxas's unrolled version of this data-dependent skip spilled on sm_90.
#pragma unroll 1
    for (int i = 0; i < n; ++i) {
        if (ids[i] != g) continue;
        acc = fmaf(load(p, (long)i * pa + a), load(q, (long)i * qc + c), acc);
    }
    if (alpha != 0) acc *= alpha[g];
    store(out, ((long)g * pa + a) * qc + c, acc);
}

#define LMA_ROWS(TP, TQ, TC, NAME)                                                                          \
    extern "C" __global__ void __launch_bounds__(256) NAME(                                                 \
        const TP* p, int kdim, const TQ* q, long qg, long qr, long qc, const u32* ids, const float* alpha, \
        const float* base, TC* out, int ncols) {                                                            \
        lma_rows_body<TP, TQ, TC>(p, kdim, q, qg, qr, qc, ids, alpha, base, out, ncols);                   \
    }
#define LMA_WGRAD(TP, TQ, TC, NAME)                                                                         \
    extern "C" __global__ void __launch_bounds__(256) NAME(                                                 \
        const TP* p, int pa, const TQ* q, int qc, const u32* ids, int n, const float* alpha, TC* out) {    \
        lma_wgrad_body<TP, TQ, TC>(p, pa, q, qc, ids, n, alpha, out);                                       \
    }

LMA_ROWS(float, float, float, lora_multi_adapter_rows_f32_f32_f32)
LMA_ROWS(bf16, bf16, float, lora_multi_adapter_rows_bf16_bf16_f32)
LMA_ROWS(float, bf16, bf16, lora_multi_adapter_rows_f32_bf16_bf16)
LMA_WGRAD(float, float, float, lora_multi_adapter_wgrad_f32_f32_f32)
LMA_WGRAD(bf16, float, bf16, lora_multi_adapter_wgrad_bf16_f32_bf16)
LMA_WGRAD(float, bf16, bf16, lora_multi_adapter_wgrad_f32_bf16_bf16)
