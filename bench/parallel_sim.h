// The simulated-parallel study of sampler_quality --parallel: 8 workers whose trials take
// different times, driven event by event against hpsearch's samplers and pruners in-process
// (no clock is read: time is simulated, so the figures are exact and repeatable).
#pragma once

namespace hpsearch::bench {

// Prints two tables: constant liar on/off (duplicate proposals, best value) and no pruner /
// median / ASHA (epochs trained, best value). Returns the process exit code.
int ParallelSimulation(bool quick);

}  // namespace hpsearch::bench
