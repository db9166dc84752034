// philox.cuh: Philox4x32-10 (Salmon et al., SC 2011), the counter-based generator of the
// draws; the NumPy reference is brainprop_np/philox.py, the fast set's kernels/fast/philox.py.
// A random number is a pure function of (key, counter): a thread draws its own element's
// numbers with no generator state, and the CPU and every GPU get the same bits.
//
//   one round:  hi0:lo0 = M0·c0, hi1:lo1 = M1·c2   (32 × 32 → 64-bit products)
//               (c0, c1, c2, c3) ← (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
//               (k0, k1) ← (k0 + W0, k1 + W1) mod 2^32 between rounds; ten rounds.
//   counter of element e at trial `step`: (e mod 2^32, e div 2^32, step mod 2^32, step div 2^32);
//   key: (seed, purpose·2^16 + layer).
//   uniform from words (a, b): float (a >> 8)·2^-24, double (a·2^21 + (b >> 11))·2^-53, both
//   exact (an integer below 2^24 / 2^53 times a power of two).
// Included by the sources that draw; kernels/cuda_module.py pastes it in before NVRTC
// compiles them (so that CuPy's kernel cache sees its text), nvcc finds it beside them.

#ifndef BP_PHILOX_CUH
#define BP_PHILOX_CUH

namespace bp_philox {

struct Words { unsigned int w[4]; };

__device__ __forceinline__ Words philox4x32_10(unsigned int c0, unsigned int c1, unsigned int c2,
                                               unsigned int c3, unsigned int k0, unsigned int k1) {
    for (int r = 0; r < 10; ++r) {
        if (r) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        const unsigned long long p0 = (unsigned long long)0xD2511F53u * c0;
        const unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c2;
        const unsigned int n0 = (unsigned int)(p1 >> 32) ^ c1 ^ k0;
        const unsigned int n2 = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
        c1 = (unsigned int)p1;
        c3 = (unsigned int)p0;
        c0 = n0;
        c2 = n2;
    }
    Words out;
    out.w[0] = c0; out.w[1] = c1; out.w[2] = c2; out.w[3] = c3;
    return out;
}

// The four words of element e's block at trial `step`.
__device__ __forceinline__ Words block(long long e, unsigned long long step, unsigned int k0, unsigned int k1) {
    const unsigned long long u = (unsigned long long)e;
    return philox4x32_10((unsigned int)u, (unsigned int)(u >> 32), (unsigned int)step,
                         (unsigned int)(step >> 32), k0, k1);
}

template <typename T> __device__ __forceinline__ T uniform(unsigned int a, unsigned int b);
template <> __device__ __forceinline__ float uniform<float>(unsigned int a, unsigned int) {
    return (float)(a >> 8) * 0x1p-24f;
}
template <> __device__ __forceinline__ double uniform<double>(unsigned int a, unsigned int b) {
    return (double)(((unsigned long long)a << 21) | (unsigned long long)(b >> 11)) * 0x1p-53;
}

}  // namespace bp_philox

#endif  // BP_PHILOX_CUH
