#include "server/sampling/sobol_sampler.h"

#include <bitset>

#include "absl/strings/str_cat.h"
#include "server/sampling/distributions.h"
#include "server/sampling/sampling_rng.h"
#include "server/sampling/sobol_direction_numbers.h"

namespace hpsearch::server {
namespace {

constexpr int kBits = 32;  // resolution 2^-32; 2^32 points

// V_1 .. V_32 of one dimension as 32-bit binary fractions (bit 31 is 1/2), from its polynomial
// and initial m_k by the recurrence
//   m_k = 2 a_1 m_{k-1} ^ 4 a_2 m_{k-2} ^ ... ^ 2^(s-1) a_(s-1) m_(k-s+1) ^ 2^s m_(k-s) ^ m_(k-s).
void DirectionNumbers(int dim, uint32_t v[kBits]) {
  const SobolDimension& entry = kSobolDimensions[dim];
  uint32_t m[kBits + 1] = {0};
  int s = 0;
  while ((entry.poly >> (s + 1)) != 0) ++s;  // degree
  if (s == 0) {
    for (int k = 1; k <= kBits; ++k) m[k] = 1;
  } else {
    for (int k = 1; k <= s; ++k) m[k] = entry.m[k - 1];
    for (int k = s + 1; k <= kBits; ++k) {
      uint32_t value = m[k - s] ^ (m[k - s] << s);
      for (int i = 1; i < s; ++i) {
        const uint32_t a_i = (entry.poly >> (s - i)) & 1u;
        if (a_i) value ^= m[k - i] << i;
      }
      m[k] = value;
    }
  }
  for (int k = 1; k <= kBits; ++k) v[k - 1] = m[k] << (kBits - k);
}

// Linear matrix scramble: digit i (i = 0 the most significant) of the result is digit i of `x`
// plus a seeded random combination of the digits above it, over GF(2).
uint32_t Scramble(uint32_t x, const uint32_t rows[kBits]) {
  uint32_t out = 0;
  for (int i = 0; i < kBits; ++i) {
    const uint32_t bit = std::bitset<32>(rows[i] & x).count() & 1u;
    out |= bit << (kBits - 1 - i);
  }
  return out;
}

}  // namespace

std::vector<double> SobolPoint(int dims, uint64_t index, bool scramble, uint64_t seed) {
  std::vector<double> point(dims);
  const uint64_t gray = index ^ (index >> 1);
  for (int j = 0; j < dims; ++j) {
    uint32_t v[kBits];
    DirectionNumbers(j, v);
    uint32_t shift = 0;
    if (scramble) {
      SamplingRng rng(seed ^ (0x736f626f6cULL + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(j)));
      uint32_t rows[kBits];
      for (int i = 0; i < kBits; ++i) {
        // Row i: the diagonal digit, and random digits above it (more significant).
        const uint32_t diagonal = 1u << (kBits - 1 - i);
        const uint32_t above = i == 0 ? 0u : ~((diagonal << 1) - 1u);
        rows[i] = diagonal | (static_cast<uint32_t>(rng.Next()) & above);
      }
      for (int k = 0; k < kBits; ++k) v[k] = Scramble(v[k], rows);
      shift = static_cast<uint32_t>(rng.Next() >> 32);
    }
    uint32_t x = shift;
    for (int k = 0; k < kBits; ++k) {
      if ((gray >> k) & 1u) x ^= v[k];
    }
    point[j] = static_cast<double>(x) * 0x1.0p-32;
  }
  return point;
}

absl::StatusOr<std::vector<v1::ParamAssignment>> SobolSampler::Sample(
    const SampleRequest& request) {
  const v1::StudySpec& spec = *request.spec;
  const int dims = spec.search_space_size();
  if (dims > kSobolMaxDimensions) {
    return absl::InvalidArgumentError(absl::StrCat("sampler: the sobol sampler supports at most ",
                                                   kSobolMaxDimensions, " parameters, not ", dims,
                                                   ": use tpe or random"));
  }
  std::vector<v1::ParamAssignment> params;
  if (dims == 0) return params;
  const bool scramble = !spec.sampler().has_scramble() || spec.sampler().scramble();
  const std::vector<double> point =
      SobolPoint(dims, static_cast<uint64_t>(request.trial_number), scramble, spec.seed());
  for (int j = 0; j < dims; ++j) {
    const v1::ParameterSpec& param = spec.search_space(j);
    bool fixed = false;
    for (const v1::ParamAssignment& a : request.fixed) fixed = fixed || a.name() == param.name();
    if (fixed) continue;
    absl::StatusOr<Distribution> dist = ToDistribution(param);
    if (!dist.ok()) return dist.status();
    v1::ParamAssignment assignment;
    assignment.set_name(param.name());
    *assignment.mutable_value() = FromUnitInterval(param, *dist, point[j]);
    params.push_back(std::move(assignment));
  }
  return params;
}

void NormalizeSobolOptions(v1::StudySpec* spec, OptionReport* report) {
  if (!spec->sampler().has_scramble()) spec->mutable_sampler()->set_scramble(true);
  if (spec->search_space_size() > kSobolMaxDimensions) {
    report->Error("search_space", absl::StrCat("has ", spec->search_space_size(),
                                               " parameters; the sobol sampler supports at most ",
                                               kSobolMaxDimensions, ": use tpe or random"));
  }
}

}  // namespace hpsearch::server
