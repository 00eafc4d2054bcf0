// kernels/emu_selftest.cu: kernels that check the emulated device itself (tests/emu.rs), not a
// kernel family: NVRTC never compiles this file (it is not in backend/cuda/kernels.rs FAMILIES);
// build.rs compiles it into the emulator with every other kernels/*.cu.
#include "tma.cuh"

// out[b] = sum of row b of x [B, n], through common.cuh's block_sum (any blockDim up to 1024).
extern "C" __global__ void bsum(const float* x, float* out, int n) {
    __shared__ float scratch[32];
    float v = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[blockIdx.x * n + i];
    v = block_sum(v, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}
// One warp: D = A [16x16] . B [16x8] (both row-major bf16) with the standard fragment loads:
// A by ldmatrix_x4, B by ldmatrix_x2_trans (into D) and from a transposed copy by ldmatrix_x2 (D2).
extern "C" __global__ void mma16(const bf16* A, const bf16* B, float* D, float* D2) {
    __shared__ __align__(16) bf16 sa[16][16];
    __shared__ __align__(16) bf16 sb[16][8];
    __shared__ __align__(16) bf16 sbt[8][16];
    int l = threadIdx.x;
    for (int i = l; i < 256; i += 32) sa[i / 16][i % 16] = A[i];
    for (int i = l; i < 128; i += 32) { sb[i / 8][i % 8] = B[i]; sbt[i % 8][i / 8] = B[i]; }
    __syncthreads();
    u32 a[4], b[2], bt[2];
    ldmatrix_x4(a, &sa[(l % 8) + 8 * ((l / 8) & 1)][8 * (l / 16)]);
    ldmatrix_x2_trans(b, &sb[l % 16][0]);
    ldmatrix_x2(bt, &sbt[l % 8][8 * ((l / 8) & 1)]);
    float d[4] = {0, 0, 0, 0}, d2[4] = {0, 0, 0, 0};
    mma_bf16_16816(d, a, b);
    mma_bf16_16816(d2, a, bt);
    int g = l >> 2, t = l & 3;
    for (int i = 0; i < 4; i++) {
        int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        D[row * 8 + col] = d[i];
        D2[row * 8 + col] = d2[i];
    }
}
// Inclusive warp prefix sums by __shfl_up_sync, plus __shfl_down_sync and __ballot_sync checks.
extern "C" __global__ void scan(const int* x, int* y) {
    int v = x[threadIdx.x];
    for (int o = 1; o < 32; o <<= 1) { int u = __shfl_up_sync(0xffffffffu, v, o); if ((threadIdx.x & 31) >= o) v += u; }
    y[threadIdx.x] = v + __shfl_down_sync(0xffffffffu, 0, 1) + (__ballot_sync(0xffffffffu, x[threadIdx.x] > 0) == 0xffffffffu ? 1000 : 0);
}
// cp.async: even threads copy 16 bytes, odd ones zero-fill; then a reversed read through smem.
extern "C" __global__ void cpa(const float* x, float* y) {
    __shared__ __align__(16) float s[4 * 64];
    cp_async16(&s[4 * threadIdx.x], &x[4 * threadIdx.x], threadIdx.x % 2 == 0);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    for (int j = 0; j < 4; j++) y[4 * threadIdx.x + j] = s[4 * (63 - threadIdx.x) + j];
}
// Dynamic shared memory: reverse the thread ids through it.
extern "C" __global__ void dyn(float* y, int n) {
    extern __shared__ __align__(16) float ds[];
    ds[threadIdx.x] = threadIdx.x;
    __syncthreads();
    if (threadIdx.x < n) y[threadIdx.x] = ds[blockDim.x - 1 - threadIdx.x];
}
// A barrier half the block never reaches: the emulator reports a deadlock.
extern "C" __global__ void dead(float* y) {
    if (threadIdx.x < 16) __syncthreads();
    else __syncwarp();
}
// TMA + mbarrier: thread 0 loads the box of `map` at (c0, c1, c2) (bytes `n`) into shared memory,
// every thread waits on the barrier, then the block copies the box out to y as it lies in shared
// memory (swizzled). hang: nobody arrives, so the wait never ends.
extern "C" __global__ void tmabox(const __grid_constant__ TmaMap map, unsigned short* y, int c0, int c1, int c2, int n, int hang) {
    extern __shared__ __align__(16) unsigned char tb[];
    unsigned char* box = tb + ((1024 - (int)((unsigned long long)tb & 1023)) & 1023);
    __shared__ u64 bar;
    if (threadIdx.x == 0) {
        mbar_init(&bar, 1);
        mbar_fence_init();
    }
    __syncthreads();
    if (threadIdx.x == 0 && !hang) {
        mbar_arrive_expect_tx(&bar, n);
        tma_load_3d(box, &map, c0, c1, c2, &bar);
    }
    mbar_wait(&bar, 0);
    for (int i = threadIdx.x; i < n / 2; i += blockDim.x) y[i] = reinterpret_cast<const unsigned short*>(box)[i];
}
// Clusters of two: each block puts 100 * rank + blockIdx.x in its dynamic shared memory, the
// cluster syncs, each block writes its peer's word (read through cluster_map) to y[blockIdx.x],
// and syncs again so no block leaves while its peer still reads. skip: thread 0 of block 1 waits at
// a __syncthreads the rest of its block never reaches (they wait at the cluster barrier).
extern "C" __global__ void __cluster_dims__(2, 1, 1) pair(int* y, int skip) {
    extern __shared__ __align__(16) int cw[];
    if (threadIdx.x == 0) cw[0] = 100 * (int)cluster_rank() + (int)blockIdx.x;
    if (skip && cluster_rank() == 1 && threadIdx.x == 0) __syncthreads();
    cluster_sync();
    if (threadIdx.x == 0) y[blockIdx.x] = *cluster_map(cw, cluster_rank() ^ 1);
    cluster_sync();
}
