// kernels/lora_stream.cuh: lora_mma's streaming twin for the natural layouts (included by
// kernels/lora.cu, whose header states the contract): C (m x n) = alpha A1 B1 over one pair, A1
// (m x k) k-contiguous (row stride a1r), B1 (k x n) n-contiguous (row stride b1r), both with
// a1r, b1r, k and n multiples of 8 (every 16-byte piece wholly inside or outside the operand and
// 16-byte aligned). Split-K as lora_mma (gridDim.z splits of kchunk, a multiple of 32).
//
// Why: a decode product (16 rows x 4096 x 4096, W streaming through) is bound by how many bytes
// are in flight. lora_mma keeps one k-tile a block in registers, and takes W (k x n, n
// contiguous) through its transposing put; here both operands go global -> shared by cp.async in
// their own layout, LS_ST stages deep (LS_ST - 1 k-tiles in flight a block), and the tensor cores
// read B with ldmatrix.trans. Tiles: A [64 m][LM_LD] (k contiguous, as lora_mma's As), B [32 k]
// [LS_LDN] (n contiguous); 128 threads as 2 x 2 warps of 32 x 32 outputs (lora_mma's lm_mac layout).

#define LS_ST 4
#define LS_LDN 72   // B tile row pitch (bf16): 144 bytes, ldmatrix rows on distinct banks

template <typename TC>
__device__ void lora_stream_body(const bf16* __restrict__ a1, long a1r, const bf16* __restrict__ b1, long b1r, int k1,
                                 TC* __restrict__ c, int m, int n, float alpha, int kchunk) {
    __shared__ __align__(16) unsigned short As[LS_ST][64][LM_LD];
    __shared__ __align__(16) unsigned short Bs[LS_ST][LM_BK][LS_LDN];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1, g = lane >> 2, t = lane & 3;
    const int row0 = blockIdx.y * 64, col0 = blockIdx.x * 64;
    const int kbeg = blockIdx.z * kchunk, kend = min(k1, kbeg + kchunk);
    const int tiles = kend > kbeg ? (kend - kbeg + LM_BK - 1) / LM_BK : 0;
    // k-tile kt into stage s: A pieces e = tid, tid + 128 (row e / 4, k 8 (e % 4)); B pieces
    // (k e / 8, n 8 (e % 8)). Pieces past an edge are zero-filled and read nothing.
    auto load = [&](int kt, int s) {
        const int k0 = kbeg + kt * LM_BK;
#pragma unroll
        for (int l = 0; l < 2; ++l) {
            const int e = tid + 128 * l;
            const int ar = row0 + e / 4, ak = k0 + 8 * (e % 4);
            const bool aok = ar < m && ak < kend;
            cp_async16(&As[s][e / 4][8 * (e % 4)], aok ? a1 + (long)ar * a1r + ak : a1, aok);
            const int bk = k0 + e / 8, bn = col0 + 8 * (e % 8);
            const bool bok = bk < kend && bn < n;
            cp_async16(&Bs[s][e / 8][8 * (e % 8)], bok ? b1 + (long)bk * b1r + bn : b1, bok);
        }
    };
    float acc[2][4][4];
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.f;

#pragma unroll
    for (int s = 0; s < LS_ST - 1; ++s) {
        if (s < tiles) load(s, s);
        cp_async_commit();                          // always: the group count stays in step
    }
    for (int kt = 0; kt < tiles; ++kt) {
        cp_async_wait<LS_ST - 2>();                 // this thread's copies of tile kt have landed...
        __syncthreads();                            // ...and everyone's; tile kt - 1's stage is free
        if (kt + LS_ST - 1 < tiles) load(kt + LS_ST - 1, (kt + LS_ST - 1) % LS_ST);
        cp_async_commit();
        const int s = kt % LS_ST;
#pragma unroll
        for (int ks = 0; ks < LM_BK; ks += 16) {
            u32 af[2][4], bfr[4][2];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi) {
                const int r = wm * 32 + mi * 16 + g;
                af[mi][0] = *(const u32*)&As[s][r][ks + 2 * t];
                af[mi][1] = *(const u32*)&As[s][r + 8][ks + 2 * t];
                af[mi][2] = *(const u32*)&As[s][r][ks + 2 * t + 8];
                af[mi][3] = *(const u32*)&As[s][r + 8][ks + 2 * t + 8];
            }
#pragma unroll
            for (int ni = 0; ni < 4; ni += 2) {
                // matrices 0..3 = (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
                const int nc = wn * 32 + ni * 8;
                u32 rr[4];
                ldmatrix_x4_trans(rr, &Bs[s][ks + (lane & 7) + ((lane >> 3) & 1) * 8][nc + (lane >> 4) * 8]);
                bfr[ni][0] = rr[0];
                bfr[ni][1] = rr[1];
                bfr[ni + 1][0] = rr[2];
                bfr[ni + 1][1] = rr[3];
            }
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int ni = 0; ni < 4; ++ni) mma_bf16_16816(acc[mi][ni], af[mi], bfr[ni]);
        }
    }
    cp_async_wait<0>();                             // no copy in flight when the block exits
    TC* cz = c + (long)blockIdx.z * m * n;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int r = row0 + wm * 32 + mi * 16 + g + (q >= 2 ? 8 : 0);
                const int col = col0 + wn * 32 + ni * 8 + 2 * t + (q & 1);
                if (r < m && col < n) store(cz, (long)r * n + col, alpha * acc[mi][ni][q]);
            }
}
