#include "member/member_storage.h"

#include <gtest/gtest.h>

#include "storage/sim_file_system.h"

namespace cairn::member {
namespace {

using consensus::Membership;
using consensus::Ready;

wal::Entry E(uint64_t index, uint64_t generation) {
  return wal::Entry{LogIndex(index), Generation(generation), 1, "v" + std::to_string(index)};
}

class MemberStorageTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDirectory("/m").ok()); }
  std::unique_ptr<MemberStorage> Open() {
    auto storage = MemberStorage::Open(fs_, "/m");
    CAIRN_CHECK(storage.ok(), "member storage opens: {}", storage.status().ToString());
    return std::move(storage).value();
  }
  const Membership membership_{{NodeId(1), NodeId(2), NodeId(3)}, {}};
  SimFileSystem fs_{21};
};

TEST_F(MemberStorageTest, EmptyDirectoryRecoversNothing) {
  const consensus::RecoveredState recovered = Open()->TakeRecoveredState();
  EXPECT_EQ(Generation(0), recovered.hard_state.generation);
  EXPECT_EQ(LogIndex(0), recovered.snapshot_index);
  EXPECT_TRUE(recovered.entries.empty());
  EXPECT_FALSE(recovered.snapshot_membership.has_value());
}

TEST_F(MemberStorageTest, PersistedReadySurvivesCrash) {
  {
    auto storage = Open();
    Ready ready;
    ready.hard_state = consensus::HardState{Generation(3), NodeId(2)};
    ready.entries = {E(1, 1), E(2, 3)};
    ASSERT_TRUE(storage->Persist(ready).ok());
    Ready truncating;
    truncating.truncate_after = LogIndex(1);
    truncating.entries = {E(2, 3)};
    ASSERT_TRUE(storage->Persist(truncating).ok());
  }
  fs_.Crash(TearMode::kAnyByte);
  const consensus::RecoveredState recovered = Open()->TakeRecoveredState();
  EXPECT_EQ((consensus::HardState{Generation(3), NodeId(2)}), recovered.hard_state);
  ASSERT_EQ(2u, recovered.entries.size());
  EXPECT_EQ(E(2, 3), recovered.entries[1]);
}

TEST_F(MemberStorageTest, InstalledSnapshotRestartsTheLog) {
  {
    auto storage = Open();
    Ready ready;
    ready.entries = {E(1, 1), E(2, 1)};
    ASSERT_TRUE(storage->Persist(ready).ok());
    Ready install;
    install.snapshot = consensus::Snapshot{LogIndex(10), Generation(2), "state@10", membership_};
    install.entries = {E(11, 2)};
    ASSERT_TRUE(storage->Persist(install).ok());
    EXPECT_EQ(LogIndex(10), storage->snapshot_index());
  }
  fs_.Crash(TearMode::kNone);
  const consensus::RecoveredState recovered = Open()->TakeRecoveredState();
  EXPECT_EQ(LogIndex(10), recovered.snapshot_index);
  EXPECT_EQ("state@10", recovered.snapshot_data);
  EXPECT_EQ(std::optional<Membership>(membership_), recovered.snapshot_membership);
  ASSERT_EQ(1u, recovered.entries.size());
  EXPECT_EQ(LogIndex(11), recovered.entries[0].index);
}

TEST_F(MemberStorageTest, LocalSnapshotReleasesTheLogBehindIt) {
  auto storage = MemberStorage::Open(fs_, "/m",
                                     {.wal = {.segment_bytes_target = 128},
                                      .snapshots = {},
                                      .low_water_mark = {.retained_entries = 2}})
                     .value();
  Ready ready;
  for (uint64_t i = 1; i <= 30; ++i) ready.entries.push_back(E(i, 1));
  ASSERT_TRUE(storage->Persist(ready).ok());
  const size_t segments_before = storage->log().Segments().size();
  ASSERT_TRUE(storage->SaveSnapshot(LogIndex(25), Generation(1), membership_, "state@25").ok());
  EXPECT_LT(storage->log().Segments().size(), segments_before);
  EXPECT_LE(storage->log().first_index(), LogIndex(24));
  storage.reset();
  fs_.Crash(TearMode::kNone);
  auto reopened = MemberStorage::Open(fs_, "/m", {.wal = {.segment_bytes_target = 128},
                                                  .snapshots = {},
                                                  .low_water_mark = {}})
                      .value();
  const consensus::RecoveredState recovered = reopened->TakeRecoveredState();
  EXPECT_EQ(LogIndex(25), recovered.snapshot_index);
  ASSERT_EQ(5u, recovered.entries.size()) << "entries 26..30 follow the snapshot";
  EXPECT_EQ(LogIndex(26), recovered.entries.front().index);
}

TEST_F(MemberStorageTest, LogThatPredatesTheSnapshotIsRestartedAfterIt) {
  {
    auto storage = Open();
    Ready ready;
    ready.entries = {E(1, 1), E(2, 1), E(3, 1)};
    ASSERT_TRUE(storage->Persist(ready).ok());
  }
  // A crash between saving a received snapshot and restarting the log.
  auto snapshots = SnapshotStore::Open(fs_, "/m/snap").value();
  ASSERT_TRUE(snapshots->Save({LogIndex(50), Generation(4)}, EncodeSnapshotBlob(membership_, "s"))
                  .ok());
  auto storage = Open();
  const consensus::RecoveredState recovered = storage->TakeRecoveredState();
  EXPECT_EQ(LogIndex(50), recovered.snapshot_index);
  EXPECT_TRUE(recovered.entries.empty());
  EXPECT_EQ(LogIndex(51), storage->log().first_index());
}

TEST_F(MemberStorageTest, LogStartingBeyondTheSnapshotIsRefused) {
  {
    auto log = wal::WriteAheadLog::Open(fs_, "/m/wal").value();
    ASSERT_TRUE(log->Reset(LogIndex(100)).ok());
  }
  auto snapshots = SnapshotStore::Open(fs_, "/m/snap").value();
  ASSERT_TRUE(snapshots->Save({LogIndex(50), Generation(4)}, EncodeSnapshotBlob(membership_, "s"))
                  .ok());
  Status status = MemberStorage::Open(fs_, "/m").status();
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find("missing")) << status.ToString();
}

TEST(SnapshotBlob, RoundTripAndGarbage) {
  const Membership membership{{NodeId(1)}, {NodeId(2)}};
  auto decoded = DecodeSnapshotBlob(EncodeSnapshotBlob(membership, "data"));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(membership, decoded->first);
  EXPECT_EQ("data", decoded->second);
  EXPECT_FALSE(DecodeSnapshotBlob("xy").ok());
  EXPECT_FALSE(DecodeSnapshotBlob(std::string("\xff\xff\xff\x7f", 4)).ok());
}

TEST_F(MemberStorageTest, SnapshotDataIsReadBackFromItsFile) {
  auto storage = Open();
  std::string data;
  for (int i = 0; i < 1000; ++i) data += std::to_string(i) + ",";
  Ready ready;
  for (uint64_t i = 1; i <= 10; ++i) ready.entries.push_back(E(i, 1));
  ASSERT_TRUE(storage->Persist(ready).ok());
  ASSERT_TRUE(storage->SaveSnapshot(LogIndex(10), Generation(1), membership_, data).ok());
  auto source = storage->OpenSnapshotData(LogIndex(10), Generation(1));
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ASSERT_EQ(data.size(), (*source)->size());
  EXPECT_EQ(data, (*source)->Read(0, data.size()));
  EXPECT_EQ(data.substr(1234, 77), (*source)->Read(1234, 77));
  EXPECT_EQ("", (*source)->Read(data.size(), 0));
  // Later snapshots prune this one from the directory; the open source still reads it.
  for (uint64_t i = 11; i <= 14; ++i) {
    Ready more;
    more.entries = {E(i, 1)};
    ASSERT_TRUE(storage->Persist(more).ok());
    ASSERT_TRUE(storage->SaveSnapshot(LogIndex(i), Generation(1), membership_, "later").ok());
  }
  EXPECT_EQ(data.substr(5, 100), (*source)->Read(5, 100));
  // A snapshot that is not stored cannot be opened.
  EXPECT_FALSE(storage->OpenSnapshotData(LogIndex(10), Generation(2)).ok());
}

TEST_F(MemberStorageTest, DamagedSnapshotFileIsNeverSentWhole) {
  auto storage = Open();
  std::string data(5000, 'x');
  Ready ready;
  for (uint64_t i = 1; i <= 10; ++i) ready.entries.push_back(E(i, 1));
  ASSERT_TRUE(storage->Persist(ready).ok());
  auto source = storage->WriteSnapshot(LogIndex(10), Generation(1), membership_, data);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ(data, (*source)->Read(0, data.size()));  // Whole and checked: fine.
  fs_.FlipBit("/m/snap/" + SnapshotStore::FileName({LogIndex(10), Generation(1)}), 48 + 200 * 8,
              3);
  EXPECT_EQ(std::string(1000, 'x'), (*source)->Read(0, 1000));  // Not checked before the end.
  EXPECT_DEATH((*source)->Read(1000, data.size() - 1000), "fails its data checksum");
}

TEST_F(MemberStorageTest, LocalSnapshotOlderThanAnInstalledOneReleasesNothing) {
  auto storage = Open();
  Ready ready;
  for (uint64_t i = 1; i <= 10; ++i) ready.entries.push_back(E(i, 1));
  ASSERT_TRUE(storage->Persist(ready).ok());
  // A local snapshot at 10 is being written while a leader's snapshot at 50 is installed.
  auto local = storage->WriteSnapshot(LogIndex(10), Generation(1), membership_, "state@10");
  ASSERT_TRUE(local.ok());
  Ready install;
  install.snapshot = consensus::Snapshot{LogIndex(50), Generation(2), "state@50", membership_};
  ASSERT_TRUE(storage->Persist(install).ok());
  EXPECT_TRUE(storage->ReleaseLogThrough(LogIndex(10)).ok());
  EXPECT_EQ(LogIndex(50), storage->snapshot_index());
  EXPECT_EQ(LogIndex(51), storage->log().first_index());
}

}  // namespace
}  // namespace cairn::member
