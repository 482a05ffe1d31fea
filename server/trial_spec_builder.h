// Resolves one attempt of a trial into the self-contained TrialSpec a runner needs: the study's
// model, data, training and runner sections with the trial's parameters applied, the lease and its
// deadline, and the artifact folder. Pure function; thread-safe.
//
// Parameters are applied by name: a parameter named like a TrainingSpec field (learning_rate,
// batch_size, epochs, weight_decay, warmup_steps, ...) overrides it; `lora_r`, `lora_alpha`,
// `lora_dropout` override fine_tune.lora. Every parameter is also passed on in TrialSpec.params
// (the command runner uses those).
#pragma once

#include <string>

#include "absl/time/time.h"
#include "hpsearch/v1/service.pb.h"

namespace hpsearch::server {

struct LeaseGrant {
  std::string lease_id;
  absl::Time deadline;
  absl::Duration heartbeat_interval;
};

v1::TrialSpec BuildTrialSpec(const v1::Study& study, const v1::Trial& trial,
                             const LeaseGrant& lease, const std::string& artifacts_root);

// Applies `param` to *training or *lora when its name matches a field there; false when nothing
// matched.
bool ApplyParameter(const v1::ParamAssignment& param, v1::TrainingSpec* training,
                    v1::LoraSpec* lora);

}  // namespace hpsearch::server
