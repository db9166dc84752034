// random.cu: uniforms from the counter-based generator (philox.cuh), written to an array; the
// reference is brainprop_np/philox.py (uniforms). Training never launches it (dropout and
// the action choice draw inside their own kernels); it lets the tests compare the device's
// draws with the CPU's bit for bit, and a reader see the draws of one stream.
//
//   philox_uniforms: out[e] = uniform(words 0, 1 of element e's block at `step`, key (k0, k1));
//   philox_words: out[4i..4i+4) = Philox4x32-10(counter[4i..4i+4), key (k0, k1)), the raw
//   generator (its published known-answer vectors are checked with it).
// Every array holds fewer than 2^31 elements (kernels/gpu.py checks).

#include "philox.cuh"

namespace bp_random {

// Each thread: element e (grid-stride).
template <typename T>
__device__ __forceinline__ void uniforms(T* __restrict__ out, unsigned int k0, unsigned int k1,
                                         unsigned long long step, int total) {
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const bp_philox::Words r = bp_philox::block(e, step, k0, k1);
        out[e] = bp_philox::uniform<T>(r.w[0], r.w[1]);
    }
}

// Each thread: counter i (grid-stride).
__device__ __forceinline__ void words(const unsigned int* __restrict__ counter, unsigned int* __restrict__ out,
                                      unsigned int k0, unsigned int k1, int n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const unsigned int* c = counter + 4 * i;
        const bp_philox::Words r = bp_philox::philox4x32_10(c[0], c[1], c[2], c[3], k0, k1);
        for (int j = 0; j < 4; ++j) out[4 * i + j] = r.w[j];
    }
}

}  // namespace bp_random

extern "C" __global__ void philox_uniforms_f32(float* __restrict__ out, unsigned int k0, unsigned int k1,
                                               unsigned long long step, int total) {
    bp_random::uniforms(out, k0, k1, step, total);
}

extern "C" __global__ void philox_uniforms_f64(double* __restrict__ out, unsigned int k0, unsigned int k1,
                                               unsigned long long step, int total) {
    bp_random::uniforms(out, k0, k1, step, total);
}

extern "C" __global__ void philox_words(const unsigned int* __restrict__ counter, unsigned int* __restrict__ out,
                                        unsigned int k0, unsigned int k1, int n) {
    bp_random::words(counter, out, k0, k1, n);
}
