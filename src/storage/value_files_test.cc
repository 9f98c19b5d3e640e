#include "storage/value_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "storage/posix_file_system.h"
#include "storage/temp_directory.h"

namespace cairn {
namespace {

PosixFileSystem posix_fs;

size_t FilesIn(const std::string& directory) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(directory)) ++count;
  return count;
}

TEST(ValueFilesTest, SegmentsAreFilesWrittenByAppendAndRemovedWithTheirStorage) {
  TempDirectory temp;
  const std::string directory = temp.path() + "/values";
  auto files = ValueFiles::Open(posix_fs, directory);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  {
    auto storage = (*files)->NewStorage();
    auto other = (*files)->NewStorage();
    storage->Append(0, "hello ");
    storage->Append(0, "world");
    storage->Append(1, "x");
    other->Append(0, "another store");
    EXPECT_EQ(FilesIn(directory), 3u);
    char out[11];
    storage->Read(0, 0, 11, out);
    EXPECT_EQ(std::string(out, 11), "hello world");
    storage->Read(0, 6, 5, out);
    EXPECT_EQ(std::string(out, 5), "world");
    other->Read(0, 8, 5, out);
    EXPECT_EQ(std::string(out, 5), "store");
    storage->Remove(0);
    EXPECT_EQ(FilesIn(directory), 2u);
    EXPECT_DEATH(storage->Read(0, 0, 1, out), "segment 0");
    EXPECT_DEATH(storage->Read(1, 0, 2, out), "segment 1");
  }
  EXPECT_EQ(FilesIn(directory), 0u) << "a storage deletes its files when destroyed";
}

TEST(ValueFilesTest, OpenClearsAnEarlierProcesssFilesOnly) {
  TempDirectory temp;
  const std::string directory = temp.path() + "/values";
  ASSERT_EQ(::mkdir(directory.c_str(), 0700), 0);
  std::ofstream(directory + "/1-0000000000.values") << "left by a crash";
  std::ofstream(directory + "/notes.txt") << "not ours";
  auto files = ValueFiles::Open(posix_fs, directory);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(directory + "/1-0000000000.values"));
  EXPECT_TRUE(std::filesystem::exists(directory + "/notes.txt"));
}

TEST(ValueFilesTest, OpenReportsAnUnusablePath) {
  TempDirectory temp;
  const std::string file = temp.path() + "/plain";
  std::ofstream(file) << "x";
  auto files = ValueFiles::Open(posix_fs, file + "/values");
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.status().ToString().find("plain"), std::string::npos);
}

// The value log over files: values read back from the head buffer and from the files, across
// sealed and removed segments.
TEST(ValueFilesTest, ValueLogOverFiles) {
  TempDirectory temp;
  auto files = ValueFiles::Open(posix_fs, temp.path() + "/values");
  ASSERT_TRUE(files.ok());
  mvcc::ValueLog log((*files)->NewStorage(), mvcc::ValueLogOptions{64, 16});
  std::vector<mvcc::ValueRef> refs;
  for (int i = 0; i < 40; ++i) {
    refs.push_back(log.Add(std::string(7, static_cast<char>('a' + i % 26))));
  }
  ASSERT_EQ(refs[9].segment, 0u);
  ASSERT_EQ(refs[10].segment, 1u);  // Ten 7-byte values fill a 64-byte segment.
  const size_t files_before = FilesIn(temp.path() + "/values");
  for (int i = 0; i < 10; ++i) log.Release(refs[i]);  // All of segment 0.
  for (int i = 10; i < 40; i += 2) log.Release(refs[i]);
  EXPECT_FALSE(log.Holds(0));
  EXPECT_EQ(FilesIn(temp.path() + "/values"), files_before - 1) << "an emptied segment's file goes";
  for (int i = 11; i < 40; i += 2) {
    std::string value;
    log.Read(refs[i], &value);
    EXPECT_EQ(value, std::string(7, static_cast<char>('a' + i % 26)));
  }
}

// A reader sees the files as they were when opened, on another thread, after they were removed
// and after the storage itself is gone.
TEST(ValueFilesTest, ReaderOutlivesRemovalAndItsStorage) {
  TempDirectory temp;
  auto files = ValueFiles::Open(posix_fs, temp.path() + "/values");
  ASSERT_TRUE(files.ok());
  auto storage = (*files)->NewStorage();
  storage->Append(0, "first segment");
  storage->Append(1, "second");
  std::unique_ptr<mvcc::ValueReader> reader = storage->OpenReader();
  storage->Remove(0);
  storage->Append(1, " and more");
  storage.reset();
  std::string first(13, '?');
  std::string second(6, '?');
  std::thread([&] {
    reader->Read(0, 0, first.size(), first.data());
    reader->Read(1, 0, second.size(), second.data());
  }).join();
  EXPECT_EQ(first, "first segment");
  EXPECT_EQ(second, "second");
  EXPECT_EQ(FilesIn(temp.path() + "/values"), 0u);
  char out;
  EXPECT_DEATH(reader->Read(2, 0, 1, &out), "has segment 2");
}

}  // namespace
}  // namespace cairn
