// MetadataStore: the durable record of the current generation and the vote cast in it.
//
// Pattern: Generation Clock. A member must never vote twice in one generation, nor forget a
// generation it has seen, even across crashes; so both are made durable before a vote is granted
// or a message of a new generation is sent.
//
// On disk: one 36-byte file `meta` (docs/data-directory.md), replaced atomically on every Save
// (write meta.tmp, fdatasync, rename over meta, fsync the directory). A crash leaves the old record
// or the new one. A missing file means a member that never saw a generation: generation 0, no vote.
// A damaged file refuses to open: guessing a generation could allow a second vote.
//
// A failed Save is final: the store then refuses every later call (as the write-ahead log does),
// because after a failed fsync the record's state on disk is unknown.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "base/strong_types.h"
#include "storage/file_system.h"

namespace cairn {

struct DurableMetadata {
  Generation generation;
  NodeId voted_for;  // NodeId(0): no vote cast in `generation`.

  bool operator==(const DurableMetadata&) const = default;
};

class MetadataStore {
 public:
  static constexpr const char* kFileName = "meta";

  static Result<std::unique_ptr<MetadataStore>> Open(FileSystem& fs, std::string directory);

  const DurableMetadata& current() const { return current_; }

  // Durably replaces the record. The caller promises that the generation never goes back and that
  // a vote, once cast in a generation, is never changed in it (a broken promise crashes).
  Status Save(const DurableMetadata& metadata);

  static std::string Encode(const DurableMetadata& metadata);
  static Result<DurableMetadata> Decode(std::string_view bytes);

 private:
  MetadataStore(FileSystem& fs, std::string directory, DurableMetadata current)
      : fs_(fs), directory_(std::move(directory)), current_(current) {}

  FileSystem& fs_;
  std::string directory_;
  DurableMetadata current_;
  bool failed_ = false;
};

}  // namespace cairn
