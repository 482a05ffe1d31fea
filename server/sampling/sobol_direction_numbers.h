// The direction-number table of the Sobol sequence (Joe and Kuo, 2008): published data, one entry
// per dimension, read by server/sobol_sampler.cc. Immutable; safe from any thread.
#pragma once

#include <cstdint>

namespace hpsearch::server {

// The most dimensions (search-space parameters) the Sobol sampler supports.
inline constexpr int kSobolMaxDimensions = 256;

struct SobolDimension {
  // Primitive polynomial over GF(2), its leading and constant terms included as bits: degree s is
  // its bit length - 1 (dimension 1: poly 1, degree 0).
  uint32_t poly;
  // Initial direction integers m_1 .. m_s (odd, m_k < 2^k); unused entries are 0.
  uint32_t m[12];
};

extern const SobolDimension kSobolDimensions[kSobolMaxDimensions];

}  // namespace hpsearch::server
