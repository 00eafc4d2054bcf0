// kernels/sampling_select.cuh: the block-wide selection pieces of the chunked sampler
// (kernels/sampling.cu): counts, the k-th largest key (radix select), the k-th largest of one
// value a thread (warp sort + binary search), and ordered compaction. Included after
// sampling_row.cuh (block_min_u32).

// Sum of c over the block, for every thread. slots: 64 u64 of shared memory used by nothing else;
// `par` alternates between consecutive calls, so one barrier each suffices (a call's slots are
// rewritten two calls later, after every thread has passed the barrier of the call between).
__device__ __forceinline__ u64 block_count(u64 c, u64* slots, int par) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
    u64* s = slots + 32 * (par & 1);
    if (lane == 0) s[warp] = c;
    __syncthreads();
    c = lane < nw ? s[lane] : 0ull;
    for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
    return c;
}

// The k-th largest of the block's nonzero keys (PER a thread; 0 = no key), or 0 when fewer than k
// are nonzero. Radix select from the top byte: a step counts the keys that share the bytes found
// so far in a 256-bin shared histogram (a warp's equal digits add once: __match_any_sync), and
// warp 0 picks the next byte from suffix sums of the bins. 4 steps, 3 barriers each (the per-bit
// block reductions this replaced cost 16 and were the sampler's largest fixed cost on the H200).
// hist: 256 u32 and ctl: 2 u32 of shared memory used by nothing else.
template <int PER>
__device__ u32 kth_key(const u32 (&key)[PER], u32 k, u32* hist, u32* ctl) {
    const u32 tid = threadIdx.x, lane = tid & 31;
    u32 t = 0, need = k;  // the answer's bytes so far; its rank among the keys that share them
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (u32 i = tid; i < 256; i += blockDim.x) hist[i] = 0u;
        __syncthreads();
        const u32 hi = shift == 24 ? 0u : ~0u << (shift + 8);
        #pragma unroll
        for (int j = 0; j < PER; j++) {
            const bool in = key[j] != 0u && (key[j] & hi) == t;
            const u32 d = in ? (key[j] >> shift) & 255u : 0xffffffffu;
            const u32 peers = __match_any_sync(0xffffffffu, d); // the whole warp: lanes out share d = ~0
            if (in && lane == (u32)__ffs(peers) - 1) atomicAdd(&hist[d], (u32)__popc(peers));
        }
        __syncthreads();
        if (tid < 32) { // lane l: bins 8l .. 8l + 7; suf = keys in bins 8l .. 255
            u32 c[8], own = 0;
            #pragma unroll
            for (int e = 0; e < 8; e++) { c[e] = hist[8 * lane + e]; own += c[e]; }
            u32 suf = own;
            for (int o = 1; o < 32; o <<= 1) {
                const u32 y = __shfl_down_sync(0xffffffffu, suf, o);
                if (lane + o < 32) suf += y;
            }
            const u32 ok = __ballot_sync(0xffffffffu, suf >= need);
            if (ok == 0u && lane == 0) { ctl[0] = 0u; ctl[1] = 0u; } // fewer than k keys
            if (ok != 0u && lane == 31 - (u32)__clz(ok)) {           // the highest such lane holds it
                u32 above = suf - own, d = 7;
                #pragma unroll
                for (int e = 7; e > 0; e--)
                    if (d == (u32)e && above + c[e] < need) { above += c[e]; d = e - 1; }
                ctl[0] = t | (8 * lane + d) << shift;
                ctl[1] = need - above;
            }
        }
        __syncthreads();
        t = ctl[0];
        need = ctl[1];
        if (need == 0u) return 0u;
    }
    return t;
}

// The k-th largest (1 <= k <= blockDim.x) of the block's values m, one a thread: each warp sorts
// its 32 (bitonic, by shuffles) into `lists` (blockDim.x u32 of shared memory, warp w's list
// descending at 32 w), then each thread counts the values >= its own by a binary search in every
// list; the largest value whose count reaches k is the k-th largest. scratch: block_min_u32's.
__device__ u32 kth_largest(u32 m, u32 k, u32* lists, u32* scratch) {
    const u32 lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    u32 v = m;
    for (u32 s = 2; s <= 32; s <<= 1)
        for (u32 j = s >> 1; j > 0; j >>= 1) { // pairs (lane, lane ^ j); blocks of s alternate direction
            const u32 o = __shfl_xor_sync(0xffffffffu, v, j);
            v = ((lane & j) == 0) == ((lane & s) == 0) ? max(v, o) : min(v, o);
        }
    lists[threadIdx.x] = v;
    __syncthreads();
    u32 rank = 0;
    for (u32 w = 0; w < nw; w++) {
        const u32* l = lists + 32 * w;
        u32 c = 0;
        #pragma unroll
        for (u32 s = 16; s > 0; s >>= 1)
            if (l[c + s - 1] >= m) c += s;
        rank += c + (l[c] >= m);
    }
    return ~block_min_u32(rank >= k ? ~m : 0xffffffffu, scratch);
}

// Ordered compaction: item j of thread t (kept if bit j of `keep` is set) sits at position
// j * blockDim.x + t. rank_scan returns the number of kept items and leaves in `scan` what
// rank_of needs to give item j its rank among them, in position order. scan: n + 1 u32 of shared
// memory, n = PER * blockDim.x / 32 (a multiple of 32).
template <int PER>
__device__ u32 rank_scan(u32 keep, u32* scan) {
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5, n = PER * nw, per = n / 32;
    __syncthreads(); // a previous call's offsets may still be read
    #pragma unroll
    for (int j = 0; j < PER; j++) {
        const u32 ball = __ballot_sync(0xffffffffu, keep >> j & 1);
        if (lane == 0) scan[j * nw + warp] = __popc(ball);
    }
    __syncthreads();
    if (warp == 0) { // exclusive prefix over the n counts in (j, warp) order; lane l owns `per` in a row
        u32 own = 0;
        for (u32 e = 0; e < per; e++) own += scan[lane * per + e];
        u32 incl = own;
        for (int o = 1; o < 32; o <<= 1) {
            const u32 y = __shfl_up_sync(0xffffffffu, incl, o);
            if (lane >= (u32)o) incl += y;
        }
        u32 run = incl - own;
        for (u32 e = 0; e < per; e++) {
            const u32 cnt = scan[lane * per + e];
            scan[lane * per + e] = run;
            run += cnt;
        }
        if (lane == 31) scan[n] = incl;
    }
    __syncthreads();
    return scan[n];
}
// Item j's rank (meaningful when kept); every lane of the warp must call it (a ballot).
__device__ __forceinline__ u32 rank_of(int j, u32 keep, const u32* scan) {
    const u32 lane = threadIdx.x & 31, ball = __ballot_sync(0xffffffffu, keep >> j & 1);
    return scan[j * (blockDim.x >> 5) + (threadIdx.x >> 5)] + __popc(ball & ((1u << lane) - 1u));
}
