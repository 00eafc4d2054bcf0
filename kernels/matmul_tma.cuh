// kernels/matmul_tma.cuh: the warp-specialised wgmma GEMM (h9tma_* in matmul_sm90.cu; GemmPath
// WgmmaTma, `KILN_GEMM=wgmma-tma`). Same contract and shared-memory tiles as h9_body; what differs
// is who moves the data and how the block learns it has landed:
//   - one producer warp (warp 8; its lane 0 alone) loads each k-tile with TMA (tma.cuh): A as one
//     128 x 64 box (two 64 x 64 boxes when TA), B as one 256 x 64 box when TB, else four 64 x 64;
//     the boxes land in exactly h9_load's swizzled layout, so the descriptors are wgmma_desc's;
//   - two consumer warpgroups (warps 0-7) each own 64 rows x 256 columns of the 128 x 256 tile and
//     issue one m64n256k16 per k16 step; none of them issues a copy or waits at __syncthreads;
//   - stage s has a `full` mbarrier (1 arrival + the stage's bytes: the producer's expect_tx and
//     its loads) and an `empty` one (8 arrivals: one per consumer warp once the MMAs reading the
//     stage are done), so loads run up to H9T_ST k-tiles ahead of the MMAs;
//   - the grid is persistent (one block per SM, tiles t = blockIdx.x + i * gridDim.x in groups of
//     8 M-tiles), so the producer loads the next tile while the consumers store this one's C.
// CL = 2 (h9tmc_*; `KILN_GEMM=wgmma-tma-c2`): clusters of two blocks take the two M-tiles of one
// 256-row unit at the same N-tile, so they share the B tile: each producer loads its own A and half
// of B, multicast into both blocks (a third less L2 -> shared traffic a block). A stage is then
// written by both producers, so its `empty` barrier waits for the consumer warps of both blocks
// (16 arrivals: every consumer warp arrives at its own block's and at the peer's), and a block
// leaves only after a cluster barrier (the peer may still arrive on its barriers).
// 288 threads: 65536 / 288 leaves 224 registers a thread, room for 128 accumulators without
// setmaxnreg. Shared: H9T_ST stages of 48 KiB, then the 2 x H9T_ST mbarriers.

#define H9T_ST 4
#define H9T_THREADS 288
#define H9T_CONSUMERS 256
// dynamic shared memory: H9T_ST * H9_STAGE + 2 * H9T_ST * 8 + 1024 (tiles start 1024-aligned)

// Unit t of `units_m` x `tiles_n` per batch entry (a unit: CL M-tiles, one a block of the cluster):
// batch z, this block's first row m0, first column n0. Groups of 8 M-units sweep all N-tiles, so
// the blocks running at once share A rows and B columns in L2.
template <int CL>
__device__ __forceinline__ void h9t_tile(int t, int units_m, int tiles_n, int& z, int& m0, int& n0) {
    const int per = units_m * tiles_n;
    z = t / per;
    const int r = t - z * per, first = r / (8 * tiles_n) * 8, gm = min(8, units_m - first), local = r - first * tiles_n;
    m0 = ((first + local % gm) * CL + (CL == 2 ? (int)cluster_rank() : 0)) * H9_BM;
    n0 = local / gm * H9_BN;
}

// The producer: lane 0 of warp 8 fills stage it % H9T_ST with k-tile kt of each of this block's
// tiles, once the consumers have emptied it. CAT: k-tiles past ceil(K / 64) come from (ma2, mb2).
template <bool TA, bool TB, bool CAT, int CL>
__device__ __forceinline__ void h9t_produce(unsigned char* base, u64* full, u64* empty, const TmaMap* ma, const TmaMap* mb,
                                            const TmaMap* ma2, const TmaMap* mb2, int units_m, int tiles_n, int units,
                                            int kt1, int ktiles, int b_shared) {
    const int rank = CL == 2 ? (int)cluster_rank() : 0;
    int it = 0;  // k-tiles issued by this block so far, over all its tiles
    for (int t = blockIdx.x / CL; t < units; t += gridDim.x / CL) {
        int z, m0, n0;
        h9t_tile<CL>(t, units_m, tiles_n, z, m0, n0);
        const int zb = b_shared ? 0 : z;
        for (int kt = 0; kt < ktiles; kt++, it++) {
            const int s = it % H9T_ST;
            mbar_wait(&empty[s], ((it / H9T_ST) & 1) ^ 1);  // the first pass finds every stage empty
            mbar_arrive_expect_tx(&full[s], H9_STAGE);
            unsigned char* sa = base + s * H9_STAGE;
            unsigned char* sb = sa + H9_A_BYTES;
            const bool second = CAT && kt >= kt1;
            const TmaMap* pa = second ? ma2 : ma;
            const TmaMap* pb = second ? mb2 : mb;
            const int k0 = (second ? kt - kt1 : kt) * H9_BK;
            if (TA) {
                tma_load_3d(sa, pa, m0, k0, z, &full[s]);
                tma_load_3d(sa + 8192, pa, m0 + 64, k0, z, &full[s]);
            } else {
                tma_load_3d(sa, pa, k0, m0, z, &full[s]);
            }
            if (CL == 2) {            // this block's half of B, into both blocks (TB: 128-row boxes)
                if (TB) {
                    tma_load_3d_multicast(sb + rank * 16384, pb, k0, n0 + 128 * rank, zb, &full[s], 3);
                } else {
#pragma unroll
                    for (int j = 2 * rank; j < 2 * rank + 2; j++) tma_load_3d_multicast(sb + j * 8192, pb, n0 + 64 * j, k0, zb, &full[s], 3);
                }
            } else if (TB) {
                tma_load_3d(sb, pb, k0, n0, zb, &full[s]);
            } else {
#pragma unroll
                for (int j = 0; j < 4; j++) tma_load_3d(sb + j * 8192, pb, n0 + 64 * j, k0, zb, &full[s]);
            }
        }
    }
}

// Stage s is free again in this block (and, CL = 2, in the peer: its producer writes here too).
template <int CL>
__device__ __forceinline__ void h9t_release(u64* empty, int s) {
    __syncwarp();
    if ((threadIdx.x & 31) == 0) {
        if (CL == 2) {
            mbar_arrive_cluster(&empty[s], 0);
            mbar_arrive_cluster(&empty[s], 1);
        } else {
            mbar_arrive(&empty[s]);
        }
    }
}

// A consumer warpgroup (wg 0 or 1): rows 64 wg .. 64 wg + 63 of each tile, all 256 columns.
template <bool TA, bool TB, int CL>
__device__ __forceinline__ void h9t_consume(unsigned char* base, const unsigned char* window, u64* full, u64* empty, bf16* c,
                                            int M, int N, int units_m, int tiles_n, int units, int ktiles) {
    const int wg = threadIdx.x >> 7, t = threadIdx.x & 127, w = t >> 5, l = t & 31;
    float acc[128];
    int it = 0;  // k-tiles consumed by this block so far
    for (int tile = blockIdx.x / CL; tile < units; tile += gridDim.x / CL) {
        int z, m0, n0;
        h9t_tile<CL>(tile, units_m, tiles_n, z, m0, n0);
#pragma unroll
        for (int e = 0; e < 128; e++) acc[e] = 0.f;
        for (int kt = 0; kt < ktiles; kt++, it++) {
            const int s = it % H9T_ST;
            mbar_wait(&full[s], (it / H9T_ST) & 1);
            const unsigned char* sa = base + s * H9_STAGE;
            const unsigned char* sb = sa + H9_A_BYTES;
            wgmma_hold<128>(acc);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < H9_BK / 16; kk++) {
                const u64 da = TA ? wgmma_desc(sa + wg * 8192 + kk * 2048, 8192, 1024, window) : wgmma_desc(sa + wg * 8192 + kk * 32, 16, 1024, window);
                const u64 db = TB ? wgmma_desc(sb + kk * 32, 16, 1024, window) : wgmma_desc(sb + kk * 2048, 8192, 1024, window);
                wgmma_m64n256k16<TA ? 1 : 0, TB ? 0 : 1>(acc, da, db, window);
            }
            wgmma_commit();
            wgmma_wait<1>();          // the MMAs of the previous k-tile are done: free its stage
            wgmma_hold<128>(acc);
            if (kt > 0) h9t_release<CL>(empty, (it - 1) % H9T_ST);
        }
        wgmma_wait<0>();
        wgmma_hold<128>(acc);
        if (ktiles > 0) h9t_release<CL>(empty, (it - 1) % H9T_ST);
        // d[4i + 2hh + cc] = D[16w + l/4 + 8hh][8i + 2(l%4) + cc] of this warpgroup's 64 x 256.
        bf16* cz = c + (long)z * M * N;
        const bool pair = (N & 1) == 0;
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int m = m0 + wg * 64 + 16 * w + (l >> 2) + 8 * hh;
            if (m >= M) continue;
#pragma unroll
            for (int i = 0; i < 32; i++) {
                const int n = n0 + 8 * i + 2 * (l & 3);
                store_bf16x2(cz, (long)m * N + n, n, N, pair, acc[4 * i + 2 * hh], acc[4 * i + 2 * hh + 1]);
            }
        }
    }
}

// The whole kernel: barriers, then the producer warp and the consumer warpgroups part ways.
template <bool TA, bool TB, bool CAT, int CL>
__device__ __forceinline__ void h9t_body(unsigned char* smem, const TmaMap* ma, const TmaMap* mb, const TmaMap* ma2, const TmaMap* mb2,
                                         bf16* c, int M, int K, int N, int K2, int batch, int b_shared) {
    unsigned char* base = smem + ((1024 - (int)((unsigned long long)smem & 1023)) & 1023);
    u64* full = reinterpret_cast<u64*>(base + H9T_ST * H9_STAGE);
    u64* empty = full + H9T_ST;
    if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < H9T_ST; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], CL * H9T_CONSUMERS / 32);
        }
        mbar_fence_init();
    }
    if (CL == 2) cluster_sync();      // the peer's barriers are initialised before anyone uses them
    else __syncthreads();
    const int units_m = (M + CL * H9_BM - 1) / (CL * H9_BM), tiles_n = (N + H9_BN - 1) / H9_BN, units = units_m * tiles_n * batch;
    const int kt1 = (K + H9_BK - 1) / H9_BK, ktiles = kt1 + (CAT ? (K2 + H9_BK - 1) / H9_BK : 0);
    if (threadIdx.x >= H9T_CONSUMERS) {
        if (threadIdx.x == H9T_CONSUMERS)
            h9t_produce<TA, TB, CAT, CL>(base, full, empty, ma, mb, ma2, mb2, units_m, tiles_n, units, kt1, ktiles, b_shared);
    } else {
        h9t_consume<TA, TB, CL>(base, smem, full, empty, c, M, N, units_m, tiles_n, units, ktiles);
    }
    if (CL == 2) cluster_sync();      // no block leaves while its peer may still arrive on its barriers
}
