// Where the commands that only read a study (status, trials, best) find it: the results database
// itself (--db FILE: read-only, with no coordinator running, through server::LoadStudyFromDatabase,
// which `report --db` and `importance` use too), or a running coordinator.
// Either way the answer has the same shape: the study with its trial counts, and its trials.
#pragma once

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cli/client.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::cli {

struct StudySource {
  std::string db;              // --db: read this file; empty: ask the coordinator
  ConnectionFlags connection;  // --coordinator, --auth-token-file, --tls-ca
};

// Adds --db and the connection flags (which exclude each other) to a command.
void AddStudySourceOptions(CLI::App* command, StudySource* source);

struct StudyAndTrials {
  v1::Study study;                // trial_counts filled in
  std::vector<v1::Trial> trials;  // by number, without earlier attempts
};

// One study by id or name. NOT_FOUND names the studies there are; a coordinator that cannot be
// reached says so with the hint to pass --db.
absl::StatusOr<StudyAndTrials> LoadStudyFrom(const StudySource& source, const std::string& study);
// Every study, by creation, with its trial counts.
absl::StatusOr<std::vector<v1::Study>> LoadStudiesFrom(const StudySource& source);

// The complete search trial with the best objective among `trials` (what the search would pick if
// it ended now), or nullptr when none has completed.
const v1::Trial* BestTrialSoFar(const v1::StudySpec& spec, const std::vector<v1::Trial>& trials);

// Prints "hpsearch COMMAND: message" and returns the exit code for `status`.
int ReportLoadError(const std::string& command, const absl::Status& status);

}  // namespace hpsearch::cli
