// The fixed benchmark of bench/sampler_quality: standard optimisation test functions written from
// their published formulas (Surjanovic and Bingham's Virtual Library of Simulation Experiments,
// sfu.ca/~ssurjano, and the original papers), each with its search space, plus mixed int /
// stepped / categorical variants of three of them. All are minimised. The list and the seeds
// (kQualitySeeds) were fixed before the benchmark first ran.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "hpsearch/v1/study.pb.h"

namespace hpsearch::bench {

struct TestFunction {
  std::string name;
  std::vector<v1::ParameterSpec> space;
  // The value at a point; categorical choices are the decimal spelling of their number.
  std::function<double(const std::vector<double>&)> f;
  double optimum;  // the global minimum, for the table
};

// Branin, Hartmann6, Rosenbrock-4, Ackley-5, Styblinski-Tang-5, Rastrigin-5 (continuous), then
// mixed Branin, mixed Hartmann6, mixed Styblinski-Tang-5.
const std::vector<TestFunction>& QualityFunctions();

// Seeds 1..20.
const std::vector<uint64_t>& QualitySeeds();

// The point of `params` (in the order of `space`): numbers as they are, categorical strings parsed.
std::vector<double> PointOf(const TestFunction& fn, const std::vector<v1::ParamAssignment>& params);

}  // namespace hpsearch::bench
