#include "server/sampling/pruner.h"

#include "absl/strings/str_cat.h"
#include "server/sampling/asha_pruner.h"
#include "server/sampling/percentile_pruner.h"

namespace hpsearch::server {

absl::StatusOr<std::unique_ptr<Pruner>> MakePruner(const v1::StudySpec& spec) {
  switch (spec.pruner().type()) {
    case v1::PRUNER_TYPE_UNSPECIFIED:
    case v1::PRUNER_TYPE_NONE:
      return std::unique_ptr<Pruner>(new NoPruner());
    case v1::PRUNER_TYPE_MEDIAN:
    case v1::PRUNER_TYPE_PERCENTILE:
      return std::unique_ptr<Pruner>(new PercentilePruner());
    case v1::PRUNER_TYPE_ASHA:
      return std::unique_ptr<Pruner>(new AshaPruner());
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("pruner.type ", spec.pruner().type(),
                       " is unknown: use none, median, percentile or asha"));
  }
}

}  // namespace hpsearch::server
