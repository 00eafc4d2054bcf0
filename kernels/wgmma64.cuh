// kernels/wgmma64.cuh: the matrix descriptor every wgmma kernel builds, and warpgroup MMAs with
// N = 64 (sm_90a) beside common.cuh's N = 128 / 256 forms: A from shared memory (SS, a matrix
// descriptor) or from registers (RS). Fragment of D
// (64 x 64 f32, this warpgroup): thread t, w = t / 32, l = t % 32, holds
// d[4i + 2h + c] = D[16w + l/4 + 8h][8i + 2(l%4) + c] (i < 8, h, c < 2). The RS form's A (64 x 16
// bf16) is spread like mma.m16n8k16's A fragment, warp w holding rows 16w .. 16w + 15: a[0] = row
// l/4, columns 2(l%4), +1; a[1] = row l/4 + 8; a[2], a[3] the same rows at columns + 8. So the
// fragment of an f32 result D' (64 x 64) gives the A of k-step j (columns 16j ..) as
// a = {pack(d'[8j], d'[8j+1]), pack(d'[8j+2], d'[8j+3]), pack(d'[8j+4], d'[8j+5]), pack(d'[8j+6], d'[8j+7])}.

// Matrix descriptor of the tile at p (PTX ISA "Matrix Descriptor Format"): 128-byte swizzle.
// window: the block's dynamic shared array (the emulator's stand-in for the shared window).
__device__ __forceinline__ u64 wgmma_desc(const void* p, u32 lbo, u32 sbo, const unsigned char* window) {
#ifndef KILN_EMU
    u32 a = smem_addr(p);
    (void)window;
#else
    u32 a = (u32)(static_cast<const unsigned char*>(p) - window);  // offset into the emulated window
#endif
    return (u64)((a & 0x3FFFF) >> 4) | ((u64)((lbo & 0x3FFFF) >> 4) << 16) | ((u64)((sbo & 0x3FFFF) >> 4) << 32) | (1ull << 62);
}

template <int TA, int TB>
__device__ __forceinline__ void wgmma_m64n64k16(float d[32], u64 da, u64 db, const void* window) {
#ifndef KILN_EMU
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %36, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %34, %35;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "n"(TA), "n"(TB), "r"(1));
#else
    kiln_emu::wgmma_bf16(d, 64, da, db, TA, TB, window);
#endif
}

template <int TB>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float d[32], const u32 a[4], u64 db, const void* window) {
#ifndef KILN_EMU
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %38, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %37;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(TB), "r"(1));
#else
    kiln_emu::wgmma_bf16_rs(d, 64, a, db, TB, window);
#endif
}
