// ClosestMatch: the likely intended word for a typo ("sumbit" -> "submit"), by edit distance. The
// one home of "did you mean": the study validator (keys, modules, metrics) and the CLI (commands,
// flags) both ask it. Header-only; no library.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace hpsearch {

// Levenshtein distance between `a` and `b`.
inline size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word` when it is close enough to be a likely typo (at most a third of
// the word, and at least 2 edits for short words), else "".
inline std::string ClosestMatch(const std::string& word,
                                const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::string::npos;
  for (const std::string& candidate : candidates) {
    size_t distance = EditDistance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_distance <= limit ? best : "";
}

// What to add to "no study 'x'" so the reader can pick the right one: "; did you mean 'y'? (the
// known ones: a, b, c)", naming at most `shown` of `known` (then "and N more"); "; there are none"
// when `known` is empty. The one wording for an unknown study in the store, the coordinator and
// the CLI.
inline std::string KnownNamesHint(const std::string& word, const std::vector<std::string>& known,
                                  size_t shown = 20) {
  if (known.empty()) return "; there are none";
  std::string hint;
  const std::string closest = ClosestMatch(word, known);
  if (!closest.empty()) hint += "; did you mean '" + closest + "'?";
  hint += hint.empty() ? "; the known ones: " : " (the known ones: ";
  for (size_t i = 0; i < known.size() && i < shown; ++i) {
    if (i > 0) hint += ", ";
    hint += known[i];
  }
  if (known.size() > shown) hint += " and " + std::to_string(known.size() - shown) + " more";
  if (!closest.empty()) hint += ")";
  return hint;
}

}  // namespace hpsearch
