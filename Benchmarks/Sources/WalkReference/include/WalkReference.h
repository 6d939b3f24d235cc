// WalkReference: a plain C SMMU-style translation, the yardstick Doorbell's translator is
// measured against (SMMU.compare.* in SMMUBenchmarks).
//
// Shapes (the same as SMMUBenchmarks' `CompareRig`):
// - 4 KiB granule, 48-bit input, 4-level VMSAv8-64 tables (level 0..3, 9 bits per level).
// - Stage 2 maps the guest IPA window [0x5000_0000, +guest size) page by page onto
//   [0x6000_0000, ...).
// - Nested stage 1: its tables live in guest RAM (IPA) and every table address, then the
//   output IPA, is walked at stage 2: 4 S1 reads + 5 x 4 S2 reads = 24 reads per miss.
//   IOVA page i (0x1_0000_0000 + i * 4 KiB) maps to guest IPA 0x5020_0000 + perm[i] * 4 KiB.
// - Single stage: a separate stage-1 table in PA space mapping IOVA page i to
//   0x7000_0000 + perm[i] * 4 KiB: 4 reads per miss.
// - Memory: sparse 4 KiB frames behind a two-level frame table.
// - TLB: a small direct-mapped cache tagged by (VMID, ASID, page number).
#ifndef WALK_REFERENCE_H
#define WALK_REFERENCE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct walkref walkref;

/// Builds the tables for `pages` pages (at most 65,536) permuted with xorshift64 from `seed`.
walkref *walkref_create(uint32_t pages, uint64_t seed);
void walkref_destroy(walkref *w);

/// The permutation: IOVA page i maps to data page `walkref_permutation(w, i)`.
uint32_t walkref_permutation(const walkref *w, uint32_t i);

/// Nested walk of `iova` (24 reads); returns the PA, or UINT64_MAX on a translation fault.
uint64_t walkref_nested_walk(walkref *w, uint64_t iova);
/// Single-stage walk of `iova` (4 reads); returns the PA, or UINT64_MAX.
uint64_t walkref_stage1_walk(walkref *w, uint64_t iova);
/// TLB lookup, nested walk and fill on a miss; returns the PA, or UINT64_MAX.
uint64_t walkref_translate(walkref *w, uint64_t iova);

/// Descriptor reads so far, TLB hits and misses so far.
uint64_t walkref_reads(const walkref *w);
uint64_t walkref_tlb_hits(const walkref *w);
uint64_t walkref_tlb_misses(const walkref *w);

#ifdef __cplusplus
}
#endif

#endif
