#include "storage/value_files.h"

#include <fmt/format.h>

#include <map>

#include "base/check.h"

namespace cairn {
namespace {

constexpr std::string_view kValueFileSuffix = ".values";

void ReadExactly(const ReadableFile& file, uint32_t segment, uint32_t offset, size_t size,
                 char* out) {
  Result<size_t> read = file.ReadAt(offset, size, out);
  CAIRN_CHECK(read.ok() && *read == size, "value log: segment {} holds [{}, +{}): {}", segment,
              offset, size, read.ok() ? "short file" : read.status().ToString());
}

// Its own open files, opened when it was made: a file removed meanwhile stays readable.
class FileValueReader final : public mvcc::ValueReader {
 public:
  void Add(uint32_t segment, std::unique_ptr<ReadableFile> file) {
    files_.emplace(segment, std::move(file));
  }
  void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const override {
    auto found = files_.find(segment);
    CAIRN_CHECK(found != files_.end(), "value log: a reader has segment {}", segment);
    ReadExactly(*found->second, segment, offset, size, out);
  }

 private:
  std::map<uint32_t, std::unique_ptr<ReadableFile>> files_;
};

class FileValueStorage final : public mvcc::ValueStorage {
 public:
  FileValueStorage(FileSystem& fs, std::string directory, uint64_t instance)
      : fs_(fs), directory_(std::move(directory)), instance_(instance) {}

  ~FileValueStorage() override {
    for (const auto& [segment, file] : files_) (void)fs_.RemoveFile(PathOf(segment));
  }

  void Append(uint32_t segment, std::string_view bytes) override {
    auto found = files_.find(segment);
    if (found == files_.end()) {
      const std::string path = PathOf(segment);
      auto writer = fs_.OpenWritable(path, OpenMode::kCreateOrTruncate);
      CAIRN_CHECK(writer.ok(), "value log: {}", writer.status().ToString());
      auto reader = fs_.OpenReadable(path);
      CAIRN_CHECK(reader.ok(), "value log: {}", reader.status().ToString());
      found = files_.emplace(segment, File{std::move(*writer), std::move(*reader)}).first;
    }
    const Status written = found->second.writer->Append(bytes);
    CAIRN_CHECK(written.ok(), "value log: {}", written.ToString());
  }

  void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const override {
    auto found = files_.find(segment);
    CAIRN_CHECK(found != files_.end(), "value log: segment {} holds [{}, +{})", segment, offset,
                size);
    ReadExactly(*found->second.reader, segment, offset, size, out);
  }

  void Remove(uint32_t segment) override {
    CAIRN_CHECK(files_.erase(segment) == 1, "value log: removed segment {} exists", segment);
    const Status removed = fs_.RemoveFile(PathOf(segment));
    CAIRN_CHECK(removed.ok() || removed.code() == StatusCode::kNotFound, "value log: {}",
                removed.ToString());
  }

  std::unique_ptr<mvcc::ValueReader> OpenReader() const override {
    auto reader = std::make_unique<FileValueReader>();
    for (const auto& [segment, file] : files_) {
      auto opened = fs_.OpenReadable(PathOf(segment));
      CAIRN_CHECK(opened.ok(), "value log: {}", opened.status().ToString());
      reader->Add(segment, std::move(*opened));
    }
    return reader;
  }

 private:
  struct File {
    std::unique_ptr<WritableFile> writer;
    std::unique_ptr<ReadableFile> reader;
  };
  std::string PathOf(uint32_t segment) const {
    return JoinPath(directory_, fmt::format("{}-{:010}{}", instance_, segment, kValueFileSuffix));
  }

  FileSystem& fs_;
  std::string directory_;
  uint64_t instance_;
  std::map<uint32_t, File> files_;
};

}  // namespace

std::atomic<uint64_t> ValueFiles::next_instance_{1};

Result<std::shared_ptr<ValueFiles>> ValueFiles::Open(FileSystem& fs, const std::string& directory) {
  CAIRN_TRY(fs.CreateDirectory(directory));
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDirectory(directory));
  for (const std::string& name : names) {
    if (!name.ends_with(kValueFileSuffix)) continue;  // Only what this module writes.
    CAIRN_TRY(fs.RemoveFile(JoinPath(directory, name)));
  }
  return std::shared_ptr<ValueFiles>(new ValueFiles(fs, directory));
}

std::unique_ptr<mvcc::ValueStorage> ValueFiles::NewStorage() {
  return std::make_unique<FileValueStorage>(fs_, directory_,
                                            next_instance_.fetch_add(1, std::memory_order_relaxed));
}

}  // namespace cairn
