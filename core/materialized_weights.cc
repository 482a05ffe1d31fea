#include "core/materialized_weights.h"

#include <ATen/ATen.h>

#include <utility>

#include "core/nf4.h"
#include "core/nf4_frozen_weight.h"

namespace hpsearch::core {
namespace {

thread_local MaterializedWeightsScope* t_innermost_materialized_scope = nullptr;

// The batched kernel's output dtypes.
bool BatchableDtype(c10::ScalarType dtype) {
  return dtype == c10::ScalarType::BFloat16 || dtype == c10::ScalarType::Float;
}

}  // namespace

MaterializedWeightsScope::MaterializedWeightsScope(const std::vector<FrozenWeightUse>& uses)
    : previous_(t_innermost_materialized_scope) {
  // Groups of NF4 weights sharing a device and a dtype, in the order of their first use (a block
  // has one group; a linear scan beats a map at this size).
  struct Group {
    c10::Device device;
    c10::ScalarType dtype;
    std::vector<const FrozenWeight*> frozen;
    std::vector<const Nf4Weight*> nf4;
  };
  std::vector<Group> groups;
  for (const FrozenWeightUse& use : uses) {
    const auto* nf4 = dynamic_cast<const Nf4FrozenWeight*>(use.weight);
    if (nf4 == nullptr || !nf4->weight().double_quant || !BatchableDtype(use.dtype)) continue;
    const c10::Device device = nf4->weight().packed.device();
    Group* group = nullptr;
    for (Group& g : groups) {
      if (g.device == device && g.dtype == use.dtype) group = &g;
    }
    if (group == nullptr) group = &groups.emplace_back(Group{device, use.dtype, {}, {}});
    bool listed = false;
    for (const FrozenWeight* w : group->frozen) listed = listed || w == use.weight;
    if (listed) continue;
    group->frozen.push_back(use.weight);
    group->nf4.push_back(&nf4->weight());
  }
  for (const Group& group : groups) {
    std::vector<at::Tensor> dense = DequantizeWeights(group.nf4, group.dtype);
    for (size_t i = 0; i < dense.size(); ++i) {
      entries_.push_back(Entry{group.frozen[i], group.dtype, std::move(dense[i])});
    }
  }
  // Registered last: a constructor that throws leaves no dangling pointer behind.
  t_innermost_materialized_scope = this;
}

MaterializedWeightsScope::~MaterializedWeightsScope() {
  t_innermost_materialized_scope = previous_;
}

at::Tensor ScopedMaterializedWeight(const FrozenWeight& weight, c10::ScalarType dtype) {
  for (const MaterializedWeightsScope* scope = t_innermost_materialized_scope; scope != nullptr;
       scope = scope->previous_) {
    for (const MaterializedWeightsScope::Entry& entry : scope->entries_) {
      if (entry.weight == &weight && entry.dtype == dtype) return entry.dense;
    }
  }
  return at::Tensor();
}

}  // namespace hpsearch::core
