#include "server/sampling/sampler_kinds.h"

#include "absl/strings/str_cat.h"
#include "server/sampling/grid_sampler.h"
#include "server/sampling/random_sampler.h"
#include "server/sampling/sobol_sampler.h"
#include "server/sampling/tpe_sampler.h"

namespace hpsearch::server {
namespace {

template <typename T>
std::unique_ptr<Sampler> Make() {
  return std::make_unique<T>();
}

}  // namespace

const std::vector<SamplerKind>& SamplerKinds() {
  static const auto* const kinds = new std::vector<SamplerKind>{
      {v1::SAMPLER_TYPE_RANDOM, "random", {}, &Make<RandomSampler>, nullptr, nullptr},
      {v1::SAMPLER_TYPE_TPE, "tpe", TpeOptionNames(), &Make<TpeSampler>, &NormalizeTpeOptions,
       &FillTpeRunOptionsFor},
      {v1::SAMPLER_TYPE_GRID, "grid", {}, &Make<GridSampler>, &NormalizeGridOptions, nullptr},
      {v1::SAMPLER_TYPE_SOBOL,
       "sobol",
       {"scramble"},
       &Make<SobolSampler>,
       &NormalizeSobolOptions,
       nullptr},
  };
  return *kinds;
}

const SamplerKind* FindSamplerKind(v1::SamplerType type) {
  if (type == v1::SAMPLER_TYPE_UNSPECIFIED) type = v1::SAMPLER_TYPE_RANDOM;
  for (const SamplerKind& kind : SamplerKinds()) {
    if (kind.type == type) return &kind;
  }
  return nullptr;
}

std::string SamplerKindNames() {
  std::string names;
  const std::vector<SamplerKind>& kinds = SamplerKinds();
  for (size_t i = 0; i < kinds.size(); ++i) {
    absl::StrAppend(&names, i == 0 ? "" : i + 1 == kinds.size() ? " or " : ", ", kinds[i].name);
  }
  return names;
}

void FillRunOptions(v1::SamplerSpec* sampler, bool stored) {
  const SamplerKind* kind = FindSamplerKind(sampler->type());
  if (kind != nullptr && kind->fill_run_options != nullptr) kind->fill_run_options(sampler, stored);
}

}  // namespace hpsearch::server
