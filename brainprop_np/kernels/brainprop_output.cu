// brainprop_output.cu: the output step of a trial, one thread per image (row b of q);
// the reference is brainprop_np/kernels/cpu.py (softmax, select_actions,
// brainprop_output, brainprop_step, ebp_output).
//
//   q (B, C) output activity (Q-values, or logits for EBP); labels, actions int64 (B,).
//   BrainProp: action = argmax q with probability 1 − ε (u_explore ≥ ε), else a sample
//   of softmax(q) by inverse CDF with u_sample; reward = [action = label];
//   delta = reward − q[action]; the attention-gated top feedback is non-zero only at
//   the chosen unit: fb[b, action] = −scale·delta (scale = 1/nominal, so that the
//   layers' grads are ∂L/∂W of L = Σ_b ½ delta_b² / nominal, the trial's loss).
//   brainprop_step draws image b's u_explore and u_sample itself from the counter-based
//   generator (philox.cuh: key (k0, k1) = (seed, EXPLORE·2^16 + layer), counter (b, trial
//   step); words 0, 1 give u_explore, words 2, 3 u_sample): the CPU's uniforms, bit for bit.
//   EBP: p = softmax(q), fb = scale·(p − onehot(label)).
// Scalars (epsilon, −scale, scale, nominal) arrive rounded to the dtype, as numpy
// rounds them.
// B and C are small (C = number of classes), so each thread walks its row serially,
// in the reference's order (cumulative sums included).
// Rounding. reward, delta = reward − q[action] and fb = −scale·delta are one operation
// each: the reference's bits. NVRTC contracts a·b + c into fused multiply-adds (and
// expf, exp and division expand to them), so what sums or exponentiates agrees with the
// reference to a tolerance only: softmax, the sampling CDF (an action can differ where
// u_sample lies within float rounding of a CDF step), EBP's p and fb (float32: rtol 1e-5),
// and brainprop_step's sums, which a tree adds in double in another order than NumPy's
// pairwise sum (the reward and explored counts are exact, sums of small integers).
// The epoch's metrics. With want_sums brainprop_step also adds, in double, to the
// epoch's accumulator metrics[0..5) (read by the training loop once per epoch):
//   metrics[0] += B·½·Σ delta² / nominal (the loss, per image), metrics[1] += Σ reward,
//   metrics[2] += Σ delta, metrics[3] += Σ |delta|, metrics[4] += Σ [action ≠ argmax q].
//
// The sums' tree is written for one block of exactly BP_REDUCE_THREADS = 256 threads
// (kernels/gpu.py launches it so and checks it on the host, against this #define);
// brainprop_step with want_sums traps when launched with another block size.
// Includes only philox.cuh (pasted in by kernels/cuda_module.py for NVRTC).

#include "philox.cuh"

#define BP_REDUCE_THREADS 256

namespace bp_output {

static_assert(BP_REDUCE_THREADS > 0 && (BP_REDUCE_THREADS & (BP_REDUCE_THREADS - 1)) == 0,
              "the reduction tree halves the block: BP_REDUCE_THREADS must be a power of two");

__device__ __forceinline__ float exp_t(float v) { return expf(v); }
__device__ __forceinline__ double exp_t(double v) { return exp(v); }

// Index of the first maximum of q[0..C) (a NaN wins, as with numpy's argmax).
template <typename T>
__device__ __forceinline__ int argmax_row(const T* __restrict__ q, int C) {
    int best = 0;
    T m = q[0];
    for (int c = 1; c < C; ++c) {
        const T v = q[c];
        if (v > m || (v != v && m == m)) { m = v; best = c; }
    }
    return best;
}

// ε-greedy Boltzmann choice for one row, as cpu.select_actions: greedy unless
// u_explore < epsilon; then the number of c with cdf[c] < u_sample·cdf[C−1], where
// cdf = cumsum(softmax(q)), capped at C − 1.
template <typename T>
__device__ __forceinline__ int select_row(const T* __restrict__ q, int C, T epsilon, T u_explore,
                                          T u_sample) {
    const int greedy = argmax_row(q, C);
    if (!(u_explore < epsilon)) return greedy;
    const T m = q[greedy];
    T s = T(0);
    for (int c = 0; c < C; ++c) s += exp_t(q[c] - m);
    T cdf = T(0);
    for (int c = 0; c < C; ++c) cdf += exp_t(q[c] - m) / s;
    const T threshold = u_sample * cdf;
    int below = 0;
    cdf = T(0);
    for (int c = 0; c < C; ++c) {
        cdf += exp_t(q[c] - m) / s;
        below += (cdf < threshold) ? 1 : 0;
    }
    return below < C - 1 ? below : C - 1;
}

// Each thread: row b (grid-stride): p[b, c] = exp(q − max) / Σ exp(q − max).
template <typename T>
__device__ __forceinline__ void softmax(const T* __restrict__ q, T* __restrict__ p, int B, int C) {
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < B; b += gridDim.x * blockDim.x) {
        const T* row = q + b * C;
        const T m = row[argmax_row(row, C)];
        T s = T(0);
        for (int c = 0; c < C; ++c) s += exp_t(row[c] - m);
        for (int c = 0; c < C; ++c) p[b * C + c] = exp_t(row[c] - m) / s;
    }
}

// Each thread: row b (grid-stride): actions[b] = select_row(q[b], ...).
template <typename T>
__device__ __forceinline__ void select_actions(const T* __restrict__ q, const T* __restrict__ u_explore,
                                               const T* __restrict__ u_sample, long long* __restrict__ actions,
                                               T epsilon, int B, int C) {
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < B; b += gridDim.x * blockDim.x)
        actions[b] = select_row(q + b * C, C, epsilon, u_explore[b], u_sample[b]);
}

// How brainprop_step finds the actions.
enum { ACTIONS_GIVEN = 0, ACTIONS_EPSILON_GREEDY = 1, ACTIONS_GREEDY = 2 };
#define BP_METRICS 5

// The whole BrainProp output step. Each thread: rows b, b + blockDim.x·gridDim.x, ...:
// the action (mode ACTIONS_EPSILON_GREEDY: select_row with image b's uniforms from
// philox.cuh; ACTIONS_GREEDY: argmax, as at test time; ACTIONS_GIVEN: read from
// actions[b]), reward, delta and the row of fb (zero except −scale·delta at the action).
// An action outside [0, C) gives delta = NaN and a zero fb row instead of an
// out-of-bounds access.
// With `want_sums` (launched as one block of BP_REDUCE_THREADS threads) the block also reduces,
// in a fixed tree in double, sums[0] = ½·Σ delta² / nominal (the trial's loss), sums[1] = Σ reward,
// and adds the epoch's metrics (above) to metrics[0..BP_METRICS).
template <typename T>
__device__ __forceinline__ void brainprop_step(const T* __restrict__ q, const long long* __restrict__ labels,
                                               long long* __restrict__ actions, T* __restrict__ reward,
                                               T* __restrict__ delta, T* __restrict__ fb, T* __restrict__ sums,
                                               double* __restrict__ metrics, T epsilon, T neg_scale, T nominal,
                                               int mode, int want_sums, unsigned int k0, unsigned int k1,
                                               unsigned long long step, int B, int C) {
    if (want_sums && blockDim.x * blockDim.y * blockDim.z != BP_REDUCE_THREADS) __trap();
    __shared__ double s_m[BP_METRICS][BP_REDUCE_THREADS];
    double m[BP_METRICS] = {0.0, 0.0, 0.0, 0.0, 0.0};    // Σ delta², Σ reward, Σ delta, Σ |delta|, explored
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < B; b += gridDim.x * blockDim.x) {
        const T* row = q + b * C;
        const int greedy = argmax_row(row, C);
        long long chosen;
        if (mode == ACTIONS_EPSILON_GREEDY) {
            const bp_philox::Words r = bp_philox::block(b, step, k0, k1);
            chosen = select_row(row, C, epsilon, bp_philox::uniform<T>(r.w[0], r.w[1]),
                                bp_philox::uniform<T>(r.w[2], r.w[3]));
            actions[b] = chosen;
        } else if (mode == ACTIONS_GREEDY) {
            chosen = greedy;
            actions[b] = chosen;
        } else {
            chosen = actions[b];
        }
        const bool valid = (chosen >= 0) && (chosen < C);
        const int a = valid ? (int)chosen : 0;
        const T r = (valid && chosen == labels[b]) ? T(1) : T(0);
        const T d = valid ? r - row[a] : (r - r) / (r - r);      // NaN for a bad action
        reward[b] = r;
        delta[b] = d;
        for (int c = 0; c < C; ++c) fb[b * C + c] = (valid && c == a) ? neg_scale * d : T(0);
        m[0] += (double)d * (double)d;
        m[1] += (double)r;
        m[2] += (double)d;
        m[3] += (double)(d < T(0) ? -d : d);
        m[4] += chosen != greedy ? 1.0 : 0.0;
    }
    if (!want_sums) return;          // uniform across the block: no barrier is skipped by some only
    const int t = threadIdx.x;
    for (int k = 0; k < BP_METRICS; ++k) s_m[k][t] = m[k];
    __syncthreads();
    for (int half = BP_REDUCE_THREADS / 2; half > 0; half /= 2) {
        if (t < half)
            for (int k = 0; k < BP_METRICS; ++k) s_m[k][t] += s_m[k][t + half];
        __syncthreads();
    }
    if (t == 0) {
        const double loss = 0.5 * s_m[0][0] / (double)nominal;
        sums[0] = (T)loss;
        sums[1] = (T)s_m[1][0];
        metrics[0] += (double)B * loss;
        for (int k = 1; k < BP_METRICS; ++k) metrics[k] += s_m[k][0];
    }
}

// Each thread: row b (grid-stride): p = softmax(q[b]); fb[b, c] = (p − [c = label])·scale.
template <typename T>
__device__ __forceinline__ void ebp_output(const T* __restrict__ q, const long long* __restrict__ labels,
                                           T* __restrict__ p, T* __restrict__ fb, T scale, int B, int C) {
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < B; b += gridDim.x * blockDim.x) {
        const T* row = q + b * C;
        const T m = row[argmax_row(row, C)];
        const long long label = labels[b];
        T s = T(0);
        for (int c = 0; c < C; ++c) s += exp_t(row[c] - m);
        for (int c = 0; c < C; ++c) {
            const T pc = exp_t(row[c] - m) / s;
            p[b * C + c] = pc;
            fb[b * C + c] = ((long long)c == label ? pc - T(1) : pc) * scale;
        }
    }
}

}  // namespace bp_output

// ---- entry points: one per dtype (loaded by name from kernels/gpu.py) ----------------

extern "C" __global__ void softmax_f32(const float* __restrict__ q, float* __restrict__ p, int B, int C) {
    bp_output::softmax(q, p, B, C);
}
extern "C" __global__ void softmax_f64(const double* __restrict__ q, double* __restrict__ p, int B, int C) {
    bp_output::softmax(q, p, B, C);
}

extern "C" __global__ void select_actions_f32(const float* __restrict__ q, const float* __restrict__ u_explore,
                                              const float* __restrict__ u_sample, long long* __restrict__ actions,
                                              float epsilon, int B, int C) {
    bp_output::select_actions(q, u_explore, u_sample, actions, epsilon, B, C);
}
extern "C" __global__ void select_actions_f64(const double* __restrict__ q, const double* __restrict__ u_explore,
                                              const double* __restrict__ u_sample, long long* __restrict__ actions,
                                              double epsilon, int B, int C) {
    bp_output::select_actions(q, u_explore, u_sample, actions, epsilon, B, C);
}

extern "C" __global__ void brainprop_step_f32(const float* __restrict__ q, const long long* __restrict__ labels,
                                              long long* __restrict__ actions, float* __restrict__ reward,
                                              float* __restrict__ delta, float* __restrict__ fb,
                                              float* __restrict__ sums, double* __restrict__ metrics, float epsilon,
                                              float neg_scale, float nominal, int mode, int want_sums,
                                              unsigned int k0, unsigned int k1, unsigned long long step,
                                              int B, int C) {
    bp_output::brainprop_step(q, labels, actions, reward, delta, fb, sums, metrics, epsilon, neg_scale, nominal,
                              mode, want_sums, k0, k1, step, B, C);
}
extern "C" __global__ void brainprop_step_f64(const double* __restrict__ q, const long long* __restrict__ labels,
                                              long long* __restrict__ actions, double* __restrict__ reward,
                                              double* __restrict__ delta, double* __restrict__ fb,
                                              double* __restrict__ sums, double* __restrict__ metrics,
                                              double epsilon, double neg_scale, double nominal, int mode,
                                              int want_sums, unsigned int k0, unsigned int k1,
                                              unsigned long long step, int B, int C) {
    bp_output::brainprop_step(q, labels, actions, reward, delta, fb, sums, metrics, epsilon, neg_scale, nominal,
                              mode, want_sums, k0, k1, step, B, C);
}

extern "C" __global__ void ebp_output_f32(const float* __restrict__ q, const long long* __restrict__ labels,
                                          float* __restrict__ p, float* __restrict__ fb, float scale, int B, int C) {
    bp_output::ebp_output(q, labels, p, fb, scale, B, C);
}
extern "C" __global__ void ebp_output_f64(const double* __restrict__ q, const long long* __restrict__ labels,
                                          double* __restrict__ p, double* __restrict__ fb, double scale, int B, int C) {
    bp_output::ebp_output(q, labels, p, fb, scale, B, C);
}
