// Pruner: decides, when a search trial reports an epoch, whether it should stop early. Called by
// the coordinator under its lock (no locking needed inside). Final trials are never pruned.
#pragma once

#include <memory>
#include <optional>
#include <string>

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

// Why a trial is to stop: the rule (e.g. "median of 4 complete trials at epoch 2"), the epoch
// judged, the trial's value there (its best so far, for median and percentile) and the bar that
// value missed. Stored with the pruned trial (v1::PruneReason).
struct PruneVerdict {
  std::string rule;
  int epoch = 0;
  double value = 0;
  double threshold = 0;
};

class Pruner {
 public:
  virtual ~Pruner() = default;
  // The verdict when the trial should stop now; nullopt when it continues.
  virtual std::optional<PruneVerdict> Judge(const PruneRequest& request) = 0;
  bool ShouldPrune(const PruneRequest& request) { return Judge(request).has_value(); }
};

// Never prunes.
class NoPruner : public Pruner {
 public:
  std::optional<PruneVerdict> Judge(const PruneRequest&) override { return std::nullopt; }
};

// The pruner a normalised spec asks for; INVALID_ARGUMENT for an unknown type.
absl::StatusOr<std::unique_ptr<Pruner>> MakePruner(const v1::StudySpec& spec);

}  // namespace hpsearch::server
