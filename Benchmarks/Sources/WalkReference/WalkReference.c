// WalkReference: see include/WalkReference.h for the shapes. Plain C, no checks beyond what a
// hardware walker does (valid bit, table/page type), so it is the floor a model's walk can
// approach.
#include "WalkReference.h"

#include <stdlib.h>
#include <string.h>

enum {
    kFrameShift = 12,
    kFrameSize = 1 << kFrameShift,
    kLowBits = 20,            // frame number = (high << 20) | low
    kTLBSlots = 256,          // direct-mapped, as small as Doorbell's 256-entry TLB
};

static const uint64_t kOutputMask = 0x0000FFFFFFFFF000ull;   // descriptor bits [47:12]
static const uint64_t kIOVABase = 0x100000000ull;
static const uint64_t kGuestIPABase = 0x50000000ull;
static const uint64_t kGuestPABase = 0x60000000ull;
static const uint64_t kGuestDataIPA = 0x50200000ull;          // after 2 MiB of guest tables
static const uint64_t kSingleDataPA = 0x70000000ull;
static const uint64_t kHostTablePA = 0x40100000ull;
static const uint64_t kFault = UINT64_MAX;

typedef struct {
    uint64_t vpn;      // page number + 1 (0 = empty)
    uint32_t ids;      // VMID << 16 | ASID
    uint32_t perms;
    uint64_t output;   // PA of the page
} tlb_entry;

struct walkref {
    uint8_t **level1[1u << (36 - kLowBits)];   // 48-bit PA: 36-bit frame number
    uint64_t reads, hits, misses;
    uint64_t s2_root, s1_root_ipa, single_root;
    uint64_t next_host, next_guest;
    uint32_t vmid, asid;
    uint32_t pages;
    uint32_t *perm;
    tlb_entry tlb[kTLBSlots];
};

static uint8_t *frame(walkref *w, uint64_t pa, int allocate) {
    uint64_t number = (pa >> kFrameShift) & ((1ull << 36) - 1);
    uint8_t **second = w->level1[number >> kLowBits];
    if (!second) {
        if (!allocate) return NULL;
        second = calloc(1u << kLowBits, sizeof(uint8_t *));
        w->level1[number >> kLowBits] = second;
    }
    uint8_t *f = second[number & ((1u << kLowBits) - 1)];
    if (!f && allocate) {
        f = calloc(1, kFrameSize);
        second[number & ((1u << kLowBits) - 1)] = f;
    }
    return f;
}

static inline uint64_t read64(walkref *w, uint64_t pa) {
    w->reads++;
    uint8_t *f = frame(w, pa, 0);
    if (!f) return 0;
    uint64_t v;
    memcpy(&v, f + (pa & (kFrameSize - 1) & ~7ull), 8);
    return v;
}

static void write64(walkref *w, uint64_t pa, uint64_t v) {
    memcpy(frame(w, pa, 1) + (pa & (kFrameSize - 1) & ~7ull), &v, 8);
}

/// A 4-level walk from `root`; `nested` walks each table address at stage 2 first.
static uint64_t walk(walkref *w, uint64_t root, uint64_t address, int nested);

static inline uint64_t stage2(walkref *w, uint64_t ipa) { return walk(w, w->s2_root, ipa, 0); }

static uint64_t walk(walkref *w, uint64_t root, uint64_t address, int nested) {
    uint64_t table = root;
    for (int level = 0; level < 4; level++) {
        uint64_t pa = table;
        if (nested) {
            pa = stage2(w, table);
            if (pa == kFault) return kFault;
        }
        uint64_t index = (address >> (39 - 9 * level)) & 511;
        uint64_t d = read64(w, pa + index * 8);
        if ((d & 3) != 3) return kFault;   // invalid, or a block (none are mapped here)
        table = d & kOutputMask;
    }
    return table | (address & (kFrameSize - 1));
}

/// Maps one 4 KiB page, allocating tables; `nested` tables are addressed by IPA.
static void map(walkref *w, uint64_t root, uint64_t input, uint64_t output, int nested) {
    uint64_t table = root;
    for (int level = 0; level < 3; level++) {
        uint64_t pa = nested ? stage2(w, table) : table;
        uint64_t entry = pa + ((input >> (39 - 9 * level)) & 511) * 8;
        uint64_t d = read64(w, entry);
        if (!(d & 1)) {
            uint64_t fresh = nested ? w->next_guest : w->next_host;
            if (nested) w->next_guest += kFrameSize; else w->next_host += kFrameSize;
            d = (fresh & kOutputMask) | 3;
            write64(w, entry, d);
        }
        table = d & kOutputMask;
    }
    uint64_t pa = nested ? stage2(w, table) : table;
    // Page descriptor: valid, page, AF, AP/S2AP read-write.
    write64(w, pa + ((input >> 12) & 511) * 8, (output & kOutputMask) | 3 | (1u << 10) | (3u << 6));
}

walkref *walkref_create(uint32_t pages, uint64_t seed) {
    if (pages == 0 || pages > 65536) return NULL;
    walkref *w = calloc(1, sizeof(walkref));
    if (!w) return NULL;
    w->pages = pages;
    w->vmid = 1;
    w->asid = 1;
    w->next_host = kHostTablePA;
    w->next_guest = kGuestIPABase;
    w->perm = malloc(sizeof(uint32_t) * pages);
    for (uint32_t i = 0; i < pages; i++) w->perm[i] = i;
    uint64_t s = seed ? seed : 1;
    for (uint32_t i = pages - 1; i > 0; i--) {   // Fisher-Yates with xorshift64
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        uint32_t j = (uint32_t)(s % ((uint64_t)i + 1));
        uint32_t t = w->perm[i]; w->perm[i] = w->perm[j]; w->perm[j] = t;
    }
    // Stage 2: guest RAM = 2 MiB of tables + one page per mapped page.
    w->s2_root = w->next_host; w->next_host += kFrameSize;
    uint64_t guestSize = 0x200000ull + (uint64_t)pages * kFrameSize;
    for (uint64_t off = 0; off < guestSize; off += kFrameSize)
        map(w, w->s2_root, kGuestIPABase + off, kGuestPABase + off, 0);
    // Nested stage 1 in guest RAM.
    w->s1_root_ipa = w->next_guest; w->next_guest += kFrameSize;
    for (uint32_t i = 0; i < pages; i++)
        map(w, w->s1_root_ipa, kIOVABase + (uint64_t)i * kFrameSize, kGuestDataIPA + (uint64_t)w->perm[i] * kFrameSize, 1);
    // Single stage in PA space.
    w->single_root = w->next_host; w->next_host += kFrameSize;
    for (uint32_t i = 0; i < pages; i++)
        map(w, w->single_root, kIOVABase + (uint64_t)i * kFrameSize, kSingleDataPA + (uint64_t)w->perm[i] * kFrameSize, 0);
    w->reads = 0;
    return w;
}

void walkref_destroy(walkref *w) {
    if (!w) return;
    for (size_t hi = 0; hi < sizeof(w->level1) / sizeof(w->level1[0]); hi++) {
        uint8_t **second = w->level1[hi];
        if (!second) continue;
        for (size_t lo = 0; lo < (1u << kLowBits); lo++) free(second[lo]);
        free(second);
    }
    free(w->perm);
    free(w);
}

uint32_t walkref_permutation(const walkref *w, uint32_t i) { return i < w->pages ? w->perm[i] : 0; }

uint64_t walkref_nested_walk(walkref *w, uint64_t iova) {
    uint64_t ipa = walk(w, w->s1_root_ipa, iova, 1);
    return ipa == kFault ? kFault : stage2(w, ipa);
}

uint64_t walkref_stage1_walk(walkref *w, uint64_t iova) { return walk(w, w->single_root, iova, 0); }

uint64_t walkref_translate(walkref *w, uint64_t iova) {
    uint64_t vpn = iova >> kFrameShift;
    uint32_t ids = (w->vmid << 16) | w->asid;
    tlb_entry *e = &w->tlb[vpn & (kTLBSlots - 1)];
    if (e->vpn == vpn + 1 && e->ids == ids && (e->perms & 2)) {
        w->hits++;
        return e->output | (iova & (kFrameSize - 1));
    }
    w->misses++;
    uint64_t pa = walkref_nested_walk(w, iova);
    if (pa == kFault) return kFault;
    e->vpn = vpn + 1;
    e->ids = ids;
    e->perms = 3;
    e->output = pa & ~(uint64_t)(kFrameSize - 1);
    return pa;
}

uint64_t walkref_reads(const walkref *w) { return w->reads; }
uint64_t walkref_tlb_hits(const walkref *w) { return w->hits; }
uint64_t walkref_tlb_misses(const walkref *w) { return w->misses; }
