// HeldTrial: one trial's v1::Trial as the coordinator keeps it in memory for the life of a study.
//
// A study keeps every trial in memory (the samplers, the pruners and ListTrials read them there),
// so memory grows with the trials a study has run. A trial that may still change is kept parsed;
// one that has ended is kept serialised, beside a header of its scalar fields (number, kind, state,
// attempt, seed, objective value, times), which is all that the coordinator's scans read. A parsed
// soak trial holds ~0.8 KiB of heap (a string, a repeated field and a message each allocate); its
// serialised form is about a quarter of that. See docs/reliability.md, "Soak".
//
// Not thread-safe: the coordinator holds it under its mutex.
#pragma once

#include <string>

#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::server {

class HeldTrial {
 public:
  HeldTrial() = default;
  explicit HeldTrial(v1::Trial trial) : trial_(std::move(trial)) {}

  // The scalar fields, always; the whole trial only while !packed(). The strings, repeated fields
  // and messages of a packed trial read as empty here: read them through Full().
  const v1::Trial& head() const { return trial_; }
  // The whole trial (parsed from the packed form when packed).
  v1::Trial Full() const;
  // The whole trial to change: unpacks it first when packed. It stays unpacked until Pack().
  v1::Trial& Mutable();
  // Keeps the trial serialised, its scalar fields in head(). Call it when the trial has ended
  // (PackIfEnded); packing a trial that will change costs a parse at its next Mutable().
  void Pack();
  // Pack() when the trial is in an end state (TrialStateEnded: complete, pruned, failed).
  void PackIfEnded();
  bool packed() const { return packed_; }

 private:
  v1::Trial trial_;      // whole, or the scalar fields only when packed_
  std::string encoded_;  // the whole trial, serialised, when packed_
  bool packed_ = false;
};

}  // namespace hpsearch::server
