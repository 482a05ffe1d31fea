#include "server/pruner.h"

#include "absl/strings/str_cat.h"

namespace hpsearch::server {

absl::StatusOr<std::unique_ptr<Pruner>> MakePruner(const v1::StudySpec& spec) {
  switch (spec.pruner().type()) {
    case v1::PRUNER_TYPE_UNSPECIFIED:
    case v1::PRUNER_TYPE_NONE:
      return std::unique_ptr<Pruner>(new NoPruner());
    default:
      return absl::UnimplementedError(absl::StrCat("pruner.type ",
                                                   v1::PrunerType_Name(spec.pruner().type()),
                                                   " is not available in this build: use none"));
  }
}

}  // namespace hpsearch::server
