#include "worker/progress_log.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hpsearch::worker {

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string FormatProgressLine(const ProgressSnapshot& p) {
  std::string epoch = p.epochs > 0 ? absl::StrCat(p.epoch, "/", p.epochs) : absl::StrCat(p.epoch);
  const int percent = p.total_steps > 0 ? static_cast<int>(100 * p.step / p.total_steps) : 0;
  return absl::StrFormat("epoch %s step %d/%d (%d%%) loss %.4f %.1f samples/s ETA %s", epoch,
                         p.step, p.total_steps, percent, p.loss, p.samples_per_second,
                         FormatDuration(p.eta_seconds));
}

bool ProgressThrottle::ShouldLog() {
  const auto now = clock_();
  if (started_ && std::chrono::duration<double>(now - last_).count() < interval_) return false;
  started_ = true;
  last_ = now;
  return true;
}

}  // namespace hpsearch::worker
