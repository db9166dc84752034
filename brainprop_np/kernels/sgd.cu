// sgd.cu: the in-place updates after a trial (kernels/gpu.py: sgd_update,
// batchnorm_update_moving; their NumPy twins are in kernels/cpu.py). One launch per array
// instead of the two or three array operations (and a temporary) each would take.
//
// Every product and sum is rounded on its own (__fmul_rn, __fadd_rn, ...: no fused
// multiply-add), in the order of the NumPy reference, so that the same inputs give the
// same bits on both backends (for normal numbers: CuPy compiles with -ftz=true, which
// flushes float32 subnormals to zero).
// sgd_update_sumsq also sums the squares of w before the update (the L2 term of the
// reported loss, l2·ΣW², which then needs no pass of its own): a tree per block of
// BP_REDUCE_THREADS threads, per-block partial sums, and the block that finishes last
// (a completion counter) adds them in block order: deterministic. Σw² sums in another
// order than NumPy's vdot (float32 tolerance); the update keeps the reference's bits.
// Every array holds fewer than 2^31 elements (kernels/gpu.py checks).
// Self-contained (no #include): compiles with nvcc and with NVRTC (cupy.RawModule).

#define BP_REDUCE_THREADS 256
#define BP_SUMSQ_BLOCKS 1024

namespace bp_sgd {

static_assert(BP_REDUCE_THREADS > 0 && (BP_REDUCE_THREADS & (BP_REDUCE_THREADS - 1)) == 0,
              "the reduction trees halve the block: BP_REDUCE_THREADS must be a power of two");

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }

// Each thread: element e (grid-stride), in place: w = w·decay − lr·g
// (SGD.step: decay = 1 − 2·lr·l2 for L2-regularised kernels, else 1, which skips the product).
template <typename T>
__device__ __forceinline__ void sgd_update(T* __restrict__ w, const T* __restrict__ g, T lr, T decay,
                                           int total) {
    const bool scaled = decay != T(1);
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const T v = scaled ? mul_rn(w[e], decay) : w[e];
        w[e] = sub_rn(v, mul_rn(lr, g[e]));
    }
}

// A fixed tree over the block's BP_REDUCE_THREADS values in s; the sum ends in s[0].
template <typename T>
__device__ __forceinline__ void block_tree(T* s) {
    const int t = threadIdx.x;
    __syncthreads();
    for (int half = BP_REDUCE_THREADS / 2; half > 0; half /= 2) {
        if (t < half) s[t] += s[t + half];
        __syncthreads();
    }
}

// As sgd_update, and sumsq[0] += Σ w² over the old w. Block b (gridDim.x ≤ BP_SUMSQ_BLOCKS,
// BP_REDUCE_THREADS threads) writes its sum to partial[b]; the last block to finish sums
// partial[0..gridDim.x) in order into sumsq[0] and resets the counter for the next launch.
template <typename T>
__device__ __forceinline__ void sgd_update_sumsq(T* __restrict__ w, const T* __restrict__ g, T lr, T decay,
                                                 int total, T* __restrict__ partial,
                                                 unsigned int* __restrict__ counter, T* __restrict__ sumsq) {
    if (blockDim.x * blockDim.y * blockDim.z != BP_REDUCE_THREADS || gridDim.x > BP_SUMSQ_BLOCKS) __trap();
    __shared__ T s[BP_REDUCE_THREADS];
    __shared__ bool last;
    // A barrier before the first write to w: the CPU emulator of these kernels reruns a
    // launch from its start at the first barrier, which must find w untouched (no cost here).
    __syncthreads();
    const bool scaled = decay != T(1);
    T acc = T(0);
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const T old = w[e];
        acc += old * old;
        const T v = scaled ? mul_rn(old, decay) : old;
        w[e] = sub_rn(v, mul_rn(lr, g[e]));
    }
    s[threadIdx.x] = acc;
    block_tree(s);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = s[0];
        __threadfence();                                    // partial[b] is seen before the count
        last = atomicAdd(counter, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;                                      // uniform across the block
    __threadfence();
    T sum = T(0);
    for (int b = threadIdx.x; b < (int)gridDim.x; b += BP_REDUCE_THREADS)
        sum += ((volatile T*)partial)[b];
    s[threadIdx.x] = sum;
    block_tree(s);
    if (threadIdx.x == 0) {
        sumsq[0] = add_rn(sumsq[0], s[0]);
        *counter = 0u;
    }
}

// Each thread: channel c (grid-stride), in place (BatchNorm's running statistics):
// moving_mean = momentum·moving_mean + (1 − momentum)·mean,
// moving_var  = momentum·moving_var + (1 − momentum)·var·unbias, unbias = M/(M − 1).
template <typename T>
__device__ __forceinline__ void bn_update_moving(T* __restrict__ moving_mean, T* __restrict__ moving_var,
                                                 const T* __restrict__ mean, const T* __restrict__ var,
                                                 T momentum, T one_minus_momentum, T unbias, int C) {
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
        moving_mean[c] = add_rn(mul_rn(moving_mean[c], momentum), mul_rn(one_minus_momentum, mean[c]));
        moving_var[c] = add_rn(mul_rn(moving_var[c], momentum), mul_rn(mul_rn(one_minus_momentum, var[c]), unbias));
    }
}

}  // namespace bp_sgd

// ---- entry points: one per dtype (loaded by name from kernels/gpu.py) ----------------

extern "C" __global__ void sgd_update_f32(float* __restrict__ w, const float* __restrict__ g, float lr,
                                          float decay, int total) {
    bp_sgd::sgd_update(w, g, lr, decay, total);
}
extern "C" __global__ void sgd_update_f64(double* __restrict__ w, const double* __restrict__ g, double lr,
                                          double decay, int total) {
    bp_sgd::sgd_update(w, g, lr, decay, total);
}

extern "C" __global__ void sgd_update_sumsq_f32(float* __restrict__ w, const float* __restrict__ g, float lr,
                                                float decay, int total, float* __restrict__ partial,
                                                unsigned int* __restrict__ counter, float* __restrict__ sumsq) {
    bp_sgd::sgd_update_sumsq(w, g, lr, decay, total, partial, counter, sumsq);
}
extern "C" __global__ void sgd_update_sumsq_f64(double* __restrict__ w, const double* __restrict__ g, double lr,
                                                double decay, int total, double* __restrict__ partial,
                                                unsigned int* __restrict__ counter, double* __restrict__ sumsq) {
    bp_sgd::sgd_update_sumsq(w, g, lr, decay, total, partial, counter, sumsq);
}

extern "C" __global__ void bn_update_moving_f32(float* __restrict__ moving_mean, float* __restrict__ moving_var,
                                                const float* __restrict__ mean, const float* __restrict__ var,
                                                float momentum, float one_minus_momentum, float unbias, int C) {
    bp_sgd::bn_update_moving(moving_mean, moving_var, mean, var, momentum, one_minus_momentum, unbias, C);
}
extern "C" __global__ void bn_update_moving_f64(double* __restrict__ moving_mean, double* __restrict__ moving_var,
                                                const double* __restrict__ mean, const double* __restrict__ var,
                                                double momentum, double one_minus_momentum, double unbias, int C) {
    bp_sgd::bn_update_moving(moving_mean, moving_var, mean, var, momentum, one_minus_momentum, unbias, C);
}
