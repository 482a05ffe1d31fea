// The learning-rate schedule of Hugging Face's Trainer default ("linear"): linear warmup from 0 to
// the peak over warmup_steps, then linear decay to 0 at total_steps. Step s (0-based) trains with
// peak * LinearScheduleFactor(s, ...), matching torch's LambdaLR as the Trainer drives it.
#pragma once

#include <cstdint>

namespace hpsearch::core {

// REQUIRES: step >= 0, warmup_steps >= 0, total_steps >= 1.
double LinearScheduleFactor(int64_t step, int64_t warmup_steps, int64_t total_steps);

}  // namespace hpsearch::core
