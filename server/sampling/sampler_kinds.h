// The table of sampler kinds: for each SamplerType its name in the study file, the SamplerSpec
// options it takes, its factory, its defaults-and-checks, and the options a stored spec runs with.
// MakeSampler(), the study validator and the coordinator all read this one table, so a new sampler
// is its own file, one row in sampler_kinds.cc, its enum value in the proto, and the docs
// (docs/contributing.md). Thread-safety: the table is immutable.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hpsearch/v1/study.pb.h"
#include "server/sampling/option_report.h"
#include "server/sampling/sampler.h"

namespace hpsearch::server {

struct SamplerKind {
  v1::SamplerType type;
  // As the study file spells it (`sampler: {type: tpe}`).
  const char* name;
  // The SamplerSpec fields this kind takes; any other kind's option set in a spec is refused.
  std::vector<std::string> options;
  std::unique_ptr<Sampler> (*make)();
  // Fills the defaults of this kind's options into spec->sampler() and checks them (and what the
  // kind needs of the search space), reporting under "sampler.<option>". Null: nothing to do.
  void (*normalize)(v1::StudySpec* spec, OptionReport* report);
  // Sets the options a spec runs with when it lacks them: today's defaults for a new submission
  // (`stored` false), or what a spec stored before the option existed ran with (`stored` true).
  // Null: the kind has no such options.
  void (*fill_run_options)(v1::SamplerSpec* sampler, bool stored);
};

// Every sampler kind, in the proto's order.
const std::vector<SamplerKind>& SamplerKinds();

// The kind of `type` (SAMPLER_TYPE_UNSPECIFIED means random), or nullptr for an unknown type.
const SamplerKind* FindSamplerKind(v1::SamplerType type);

// "random, tpe, grid or sobol".
std::string SamplerKindNames();

// Applies the kind's fill_run_options, if any (see SamplerKind).
void FillRunOptions(v1::SamplerSpec* sampler, bool stored);

}  // namespace hpsearch::server
