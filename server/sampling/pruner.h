// Pruner: decides, when a search trial reports an epoch, whether it should stop early. Called by
// the coordinator under its lock (no locking needed inside). Final trials are never pruned.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "hpsearch/v1/study.pb.h"
#include "server/sampling/trial_history.h"

namespace hpsearch::server {

struct PruneRequest {
  const v1::StudySpec* spec = nullptr;  // pruner options and the objective's direction
  int trial_number = 0;                 // the trial that just reported
  int epoch = 0;                        // the epoch it reported (1-based)
  // Every search trial with its per-epoch objective values, the reporting trial included.
  const TrialHistory* history = nullptr;
};

class Pruner {
 public:
  virtual ~Pruner() = default;
  virtual bool ShouldPrune(const PruneRequest& request) = 0;
};

// Never prunes.
class NoPruner : public Pruner {
 public:
  bool ShouldPrune(const PruneRequest&) override { return false; }
};

// The pruner a normalised spec asks for; INVALID_ARGUMENT for an unknown type.
absl::StatusOr<std::unique_ptr<Pruner>> MakePruner(const v1::StudySpec& spec);

}  // namespace hpsearch::server
